#!/usr/bin/env python3
"""TLS relay in front of the emulator that changes the LENGTH of the
result a crypto answer carries, the way a broken or hostile server (or a
proxy) could: the fault matrix proves the provider refuses such results
instead of handing them to the application.

Usage: reshape_proxy.py UPSTREAM_URL CA_FILE SHAPE_FILE PORT_FILE
SHAPE_FILE holds one word, read for every request:
  as-is       forward unchanged
  drop-last   the result loses its last byte
  extra-byte  the result gains a byte
  empty       the result is empty
  oversized   the result is 600 bytes (more than any RSA-2048 result)
  over-oaep   the result is 191 bytes (one more than RSA-2048 OAEP-SHA256
              can carry)
  one-byte    the result is 1 byte (two wraps: a 2-byte rsa-aes-key-wrap)
  over-pkcs1  the result is 246 bytes (one more than RSA-2048 PKCS#1 v1.5
              can carry)
The fields changed: signature (sign), plain (decrypt), wrapped_key
(wrapkey), digest (keys/digest). Hostile answers of the right form:
  aes-128-cek a transient AES key is asked for as 128 bits instead of 256
              (the request is changed, so SmartKey really makes one)
  other-iv    a GCM wrap answer states another IV than the one sent
  other-name  key info names another key
  other-kid   key info carries another kid
The port is written to PORT_FILE once listening."""
import base64
import json
import os
import ssl
import sys
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

UPSTREAM, CA_FILE, SHAPE_FILE, PORT_FILE = sys.argv[1:5]
TLS = ssl.create_default_context(cafile=CA_FILE)
RESULT_FIELD = {
    "/crypto/v1/sign": "signature",
    "/crypto/v1/decrypt": "plain",
    "/crypto/v1/wrapkey": "wrapped_key",
    "/crypto/v1/keys/digest": "digest",
}
OTHER_KID = "00000000-0000-4000-8000-000000000bad"


def reshape(value, shape):
    if shape == "drop-last":
        return value[:-1]
    if shape == "extra-byte":
        return value + b"\x01"
    if shape == "empty":
        return b""
    if shape == "oversized":
        return os.urandom(600)
    if shape == "over-oaep":
        return os.urandom(191)
    if shape == "one-byte":
        return b"\x01"
    if shape == "over-pkcs1":
        return os.urandom(246)
    return value


def reshape_request(path, body, shape):
    """aes-128-cek: the transient AES key is made with 128 bits."""
    if shape != "aes-128-cek" or path != "/crypto/v1/keys" or not body:
        return body
    request = json.loads(body)
    if request.get("obj_type") == "AES" and request.get("transient"):
        request["key_size"] = 128
    return json.dumps(request).encode()


def hostile_answer(path, answer, shape):
    """Answers of the right form that say something wrong."""
    if shape == "other-iv" and path == "/crypto/v1/wrapkey" and "iv" in answer:
        iv = bytearray(base64.b64decode(answer["iv"]))
        iv[0] ^= 0x01
        answer["iv"] = base64.b64encode(bytes(iv)).decode()
    elif shape == "other-name" and path == "/crypto/v1/keys/info":
        answer["name"] = "someone-else"
    elif shape == "other-kid" and path == "/crypto/v1/keys/info":
        answer["kid"] = OTHER_KID
    return answer


def read_shape():
    with open(SHAPE_FILE) as f:
        return f.read().strip()


class Relay(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def relay(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        body = reshape_request(self.path.split("?")[0], body, read_shape())
        headers = {name: value for name, value in self.headers.items()
                   if name.lower() not in ("host", "connection",
                                           "content-length", "expect")}
        upstream = urllib.request.Request(UPSTREAM + self.path, data=body,
                                          headers=headers,
                                          method=self.command)
        try:
            with urllib.request.urlopen(upstream, context=TLS) as answer:
                status, payload = answer.status, answer.read()
                kind = answer.headers.get("Content-Type", "")
        except urllib.error.HTTPError as error:
            status, payload = error.code, error.read()
            kind = error.headers.get("Content-Type", "")
        path = self.path.split("?")[0]
        field = RESULT_FIELD.get(path)
        shape = read_shape()
        if status // 100 == 2 and shape != "as-is" and payload:
            answer_json = json.loads(payload)
            if isinstance(answer_json, dict):
                if field is not None and field in answer_json:
                    value = base64.b64decode(answer_json[field])
                    answer_json[field] = base64.b64encode(
                        reshape(value, shape)).decode()
                answer_json = hostile_answer(path, answer_json, shape)
                payload = json.dumps(answer_json).encode()
        self.send_response(status)
        if kind:
            self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = relay


server = ThreadingHTTPServer(("127.0.0.1", 0), Relay)
# The provider speaks HTTPS only: the proxy serves the emulator's own server
# certificate (beside its CA file), so the test's ca_file trusts it as well.
# The handshake runs in the handler's thread, not in accept().
listener = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
listener.load_cert_chain(os.path.join(os.path.dirname(CA_FILE), "server.pem"),
                         os.path.join(os.path.dirname(CA_FILE), "server-key.pem"))
server.socket = listener.wrap_socket(server.socket, server_side=True,
                                     do_handshake_on_connect=False)
with open(PORT_FILE + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(PORT_FILE + ".tmp", PORT_FILE)
server.serve_forever()
