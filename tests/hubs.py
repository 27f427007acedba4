"""Stand-in Hugging Face hubs on 127.0.0.1 (real sockets): one that never answers, one that
answers 404 to everything."""

from __future__ import annotations

import http.server
import socket
import threading


class Silent:
    """Accepts connections, reads nothing, answers nothing; counts the connections."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.held: list[socket.socket] = []
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def connections(self) -> int:
        return len(self.held)

    def _accept(self) -> None:
        while not self.closed:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.held.append(conn)

    def close(self) -> None:
        self.closed = True
        self.sock.close()
        for conn in self.held:
            conn.close()


class NotFound(http.server.BaseHTTPRequestHandler):
    """A hub that answers every request with 404 (reachable, without the file)."""

    requests: list[str] = []

    def do_HEAD(self) -> None:
        type(self).requests.append(self.path)
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD

    def log_message(self, *args: object) -> None:
        pass
