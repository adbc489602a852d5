"""Serve 200 on every GET, on fd 3 when LISTEN_FDS=1, else on the port in argv[1].

On SIGTERM it stops accepting and finishes the request in hand, as a real server does.
"""

import os
import signal
import socket
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

stopping = False


def stop(*_: object) -> None:
    global stopping
    stopping = True


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def do_GET(self) -> None:
        body = f"ok {os.getpid()}\n".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class Server(HTTPServer):
    def server_bind(self) -> None:
        if os.environ.get("LISTEN_FDS") == "1" and os.environ.get("LISTEN_PID") == str(os.getpid()):
            self.socket.close()
            self.socket = socket.socket(fileno=3)
            self.server_address = self.socket.getsockname()
        else:
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            super().server_bind()

    def server_activate(self) -> None:
        if os.environ.get("LISTEN_FDS") != "1":
            super().server_activate()


signal.signal(signal.SIGTERM, stop)
server = Server(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0), Handler)
server.timeout = 0.1
print(f"serving on {server.server_address}", flush=True)
while not stopping:
    server.handle_request()
sys.exit(0)
