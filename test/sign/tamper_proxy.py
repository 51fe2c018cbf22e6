#!/usr/bin/env python3
"""A TLS proxy in front of the emulator that damages the signature
in answers to POST /crypto/v1/sign, so tests can prove the provider never
hands on a signature of the wrong shape.

Usage: tamper_proxy.py UPSTREAM_URL CA_FILE MODE_FILE PORT_FILE
MODE_FILE holds one word, re-read per request: none, short, long,
above-modulus, not-der, trailing, zero-r (wrong shapes), and two modes
whose signatures have the right shape but are wrong:
  wrong-message  the digest in the sign request is changed before it goes
                 on, so SmartKey signs another message: a genuine RSA
                 PKCS#1 / PSS signature below the modulus, or strict-DER
                 ECDSA, that does not verify for the digest the client sent
  bit-flip       the last bit of the signature is flipped (an RSA value
                 still below the modulus, an ECDSA s still in range)
Both the single (/crypto/v1/sign) and the batch (/crypto/v1/keys/batch/sign)
endpoints are damaged. The chosen port is written to PORT_FILE once the
proxy listens."""
import base64
import json
import os
import ssl
import sys
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

upstream, ca_file, mode_file, port_file = sys.argv[1:5]
context = ssl.create_default_context(cafile=ca_file)


def damage(signature, mode):
    if mode == "short":
        return signature[:-1]
    if mode == "long":
        return signature + b"\0"
    if mode == "above-modulus":
        return b"\xff" * len(signature)
    if mode == "not-der":
        return b"\x00" * len(signature)
    if mode == "trailing":
        return signature + b"\0"
    if mode == "zero-r":
        return bytes([0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x01])
    if mode == "bit-flip":
        return signature[:-1] + bytes([signature[-1] ^ 0x01])
    return signature


SIGN_PATHS = ("/crypto/v1/sign", "/crypto/v1/keys/batch/sign")


def read_mode():
    with open(mode_file) as f:
        return f.read().strip()


def other_digest(request):
    """wrong-message: the sign request asks for a signature of another
    digest (first byte changed)."""
    digest = bytearray(base64.b64decode(request["hash"]))
    digest[0] ^= 0x80
    request["hash"] = base64.b64encode(bytes(digest)).decode()


def tamper_request(path, body, mode):
    if mode != "wrong-message" or path not in SIGN_PATHS or not body:
        return body
    request = json.loads(body)
    for item in request if isinstance(request, list) else [request]:
        other_digest(item)
    return json.dumps(request).encode()


def tamper_answer(path, payload, mode):
    answer = json.loads(payload)
    if path == "/crypto/v1/sign":
        signed = [answer]
    else:
        signed = [item["body"] for item in answer
                  if isinstance(item, dict) and
                  isinstance(item.get("body"), dict)]
    for result in signed:
        signature = base64.b64decode(result["signature"])
        result["signature"] = base64.b64encode(
            damage(signature, mode)).decode()
    return json.dumps(answer).encode()


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        body = tamper_request(self.path, body, read_mode())
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("host", "connection",
                                        "content-length")}
        request = urllib.request.Request(upstream + self.path, data=body,
                                         headers=headers,
                                         method=self.command)
        try:
            with urllib.request.urlopen(request, context=context) as answer:
                status, payload = answer.status, answer.read()
                content_type = answer.headers.get("Content-Type", "")
        except urllib.error.HTTPError as error:
            status, payload = error.code, error.read()
            content_type = error.headers.get("Content-Type", "")
        mode = read_mode()
        if (self.command == "POST" and self.path in SIGN_PATHS
                and status == 200 and mode not in ("none", "wrong-message")):
            payload = tamper_answer(self.path, payload, mode)
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = forward


server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
# The provider speaks HTTPS only: the proxy serves the emulator's own server
# certificate (beside its CA file), so the test's ca_file trusts it as well.
# The handshake runs in the handler's thread, not in accept().
listener = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
listener.load_cert_chain(os.path.join(os.path.dirname(ca_file), "server.pem"),
                         os.path.join(os.path.dirname(ca_file), "server-key.pem"))
server.socket = listener.wrap_socket(server.socket, server_side=True,
                                     do_handshake_on_connect=False)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
