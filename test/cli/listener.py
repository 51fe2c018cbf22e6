#!/usr/bin/env python3
"""A loopback listener that records every request it receives, for tests
proving what the provider does NOT send (or sends through a proxy).

Usage: listener.py MODE PORT_FILE LOG_FILE [CERT KEY]
  record   plain HTTP: logs each request line, answers 503
  tunnel   an HTTP proxy: logs each request line; CONNECT host:port is
           tunnelled (only to 127.0.0.1/localhost), anything else gets 403
  echo     HTTPS (CERT, KEY): answers 400 with the request's headers in the
           text, as a proxy or server echoing them would
  rename   HTTPS (CERT, KEY) relay to UPSTREAM (trusting CA_FILE) that
           gives every key in a key-info answer the name NAME:
           listener.py rename PORT_FILE LOG_FILE CERT KEY UPSTREAM CA_FILE NAME
The port is written to PORT_FILE once listening; LOG_FILE gets one line
per request."""
import json
import os
import select
import socket
import ssl
import sys
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

mode, port_file, log_file = sys.argv[1:4]
lock = threading.Lock()


def record(line):
    with lock, open(log_file, "a") as f:
        f.write(line + "\n")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def answer(self, status, text):
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def relay(self, body):
        upstream, ca_file, name = sys.argv[6:9]
        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("host", "connection",
                                        "content-length", "expect")}
        request = urllib.request.Request(upstream + self.path, data=body,
                                         headers=headers,
                                         method=self.command)
        context = ssl.create_default_context(cafile=ca_file)
        try:
            with urllib.request.urlopen(request, context=context) as answer:
                status, payload = answer.status, answer.read()
        except urllib.error.HTTPError as error:
            status, payload = error.code, error.read()
        if status == 200 and self.path.startswith("/crypto/v1/keys/info"):
            info = json.loads(payload)
            info["name"] = name
            payload = json.dumps(info).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def handle_any(self):
        record(self.requestline)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        if mode == "rename":
            self.relay(body)
        elif mode == "echo":
            self.answer(400, "bad request; you sent:\n" + str(self.headers))
        elif mode == "tunnel":
            self.answer(403, "only CONNECT")
        else:
            self.answer(503, "recorded")

    def do_CONNECT(self):
        record(self.requestline)
        host, _, port = self.path.rpartition(":")
        if mode != "tunnel" or host not in ("127.0.0.1", "localhost"):
            self.answer(403, "no")
            return
        upstream = socket.create_connection((host, int(port)), timeout=30)
        self.send_response(200, "Connection established")
        self.end_headers()
        peers = [self.connection, upstream]
        while True:
            ready, _, _ = select.select(peers, [], [], 30)
            if not ready:
                break
            for s in ready:
                data = s.recv(65536)
                if not data:
                    upstream.close()
                    self.close_connection = True
                    return
                (upstream if s is self.connection else
                 self.connection).sendall(data)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
if mode in ("echo", "rename"):
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(sys.argv[4], sys.argv[5])
    server.socket = tls.wrap_socket(server.socket, server_side=True,
                                    do_handshake_on_connect=False)
open(log_file, "a").close()
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
