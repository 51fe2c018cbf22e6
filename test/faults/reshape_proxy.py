#!/usr/bin/env python3
"""Plain-HTTP relay in front of the emulator that changes the LENGTH of the
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
  over-pkcs1  the result is 246 bytes (one more than RSA-2048 PKCS#1 v1.5
              can carry)
The fields changed: signature (sign), plain (decrypt), wrapped_key
(wrapkey). The port is written to PORT_FILE once listening."""
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
}


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
    if shape == "over-pkcs1":
        return os.urandom(246)
    return value


class Relay(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def relay(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
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
        field = RESULT_FIELD.get(self.path.split("?")[0])
        with open(SHAPE_FILE) as f:
            shape = f.read().strip()
        if status == 200 and field is not None and shape != "as-is":
            answer_json = json.loads(payload)
            value = base64.b64decode(answer_json[field])
            answer_json[field] = base64.b64encode(
                reshape(value, shape)).decode()
            payload = json.dumps(answer_json).encode()
        self.send_response(status)
        if kind:
            self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = relay


server = ThreadingHTTPServer(("127.0.0.1", 0), Relay)
with open(PORT_FILE + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(PORT_FILE + ".tmp", PORT_FILE)
server.serve_forever()
