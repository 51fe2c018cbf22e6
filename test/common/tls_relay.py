"""A TLS relay in front of the emulator for tests that play a broken or
hostile server: it forwards every request upstream and hands the answer
back, letting the caller change the request body on the way in and the
answer on the way out. It serves the emulator's own server certificate
(beside its CA file), so a client trusting that CA trusts the relay too.

serve(upstream, ca_file, port_file, change_request, change_answer) listens
on an ephemeral loopback port, writes the port to port_file, and serves
forever:
  change_request(path, body) -> the body sent upstream (None: no body)
  change_answer(method, path, status, payload) -> the payload sent back
path is the request path without its query."""
import os
import ssl
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOP_HEADERS = ("host", "connection", "content-length", "expect")


def serve(upstream, ca_file, port_file, change_request, change_answer):
    tls = ssl.create_default_context(cafile=ca_file)

    class Relay(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def relay(self):
            path = self.path.split("?")[0]
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            body = change_request(path, body)
            headers = {name: value for name, value in self.headers.items()
                       if name.lower() not in HOP_HEADERS}
            request = urllib.request.Request(upstream + self.path, data=body,
                                             headers=headers,
                                             method=self.command)
            try:
                with urllib.request.urlopen(request, context=tls) as answer:
                    status, payload = answer.status, answer.read()
                    kind = answer.headers.get("Content-Type", "")
            except urllib.error.HTTPError as error:
                status, payload = error.code, error.read()
                kind = error.headers.get("Content-Type", "")
            payload = change_answer(self.command, path, status, payload)
            self.send_response(status)
            if kind:
                self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = relay

    server = ThreadingHTTPServer(("127.0.0.1", 0), Relay)
    # The handshake runs in the handler's thread, not in accept().
    listener = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    certs = os.path.dirname(ca_file)
    listener.load_cert_chain(os.path.join(certs, "server.pem"),
                             os.path.join(certs, "server-key.pem"))
    server.socket = listener.wrap_socket(server.socket, server_side=True,
                                         do_handshake_on_connect=False)
    with open(port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(port_file + ".tmp", port_file)
    server.serve_forever()
