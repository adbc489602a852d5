"""An HTTP server on fd 3 that boots for argv[1] seconds, then says READY=1 (``never``: it never does).

Each answer names the pid. On SIGTERM it stops accepting, finishes the request in hand and exits,
so connections still queued on the shared socket go to the incarnation that keeps accepting.
"""

import os
import signal
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

from supervisor.host.notify import ready

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
        self.socket.close()
        self.socket = socket.socket(fileno=3)
        self.server_address = self.socket.getsockname()

    def server_activate(self) -> None:
        pass


signal.signal(signal.SIGTERM, stop)
boot = sys.argv[1] if len(sys.argv) > 1 else "0"
if boot == "never":
    while not stopping:
        time.sleep(0.05)
    sys.exit(0)
time.sleep(float(boot))  # the app's own start-up: nothing accepts meanwhile
server = Server(("127.0.0.1", 0), Handler)
server.timeout = 0.05
ready(status=f"serving as {os.getpid()}")
print(f"ready {os.getpid()}", flush=True)
while not stopping:
    server.handle_request()
sys.exit(0)
