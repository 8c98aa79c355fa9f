"""The server the midstream-fail app's HTTP Request node calls (GET <fault url>/<query>): it misbehaves
by path, so a test causes a real failure after Dify has streamed the first answer.

  /close        closes the connection without an answer
  /truncate     promises 1,000 bytes, sends 10, closes
  /hang         never answers (the node's read timeout is 30 s)
  /slow[/N]     answers 200 after N seconds (default 3)
  /<3 digits>   answers that status (500, 502, 404, ...)
  anything else behaves as the default: 200 "ok" until `PUT /_default/<behaviour>` names another
                (e.g. `/_default/500`, so a fixed query such as the watchdog's canary fails too;
                `/_default/ok` restores it); `GET /_default` tells the current one

Dify's ssrf_proxy.make_request (core/helper/ssrf_proxy.py) retries 429/500/502/503/504 and transport
errors with backoff before the node fails, so a 5xx or /close query fails after a few seconds.
Run: python -m upstreams.fault PORT (from scripts/).
"""

from __future__ import annotations

import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HANG_SECONDS = 600.0


BEHAVIOURS = ("ok", "close", "truncate", "hang", "slow")


def _known(head: str) -> bool:
    return head in BEHAVIOURS or (len(head) == 3 and head.isdigit() and 200 <= int(head) <= 599)


class FaultHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "upstreams-fault/1"
    default = "ok"  # what a path naming no behaviour does; set with PUT /_default/<behaviour>

    def do_PUT(self) -> None:
        head, _, rest = self.path.split("?", 1)[0].lstrip("/").partition("/")
        if head != "_default" or not _known(rest.partition("/")[0]):
            self._answer(404, f"unknown behaviour {rest!r}; one of {', '.join(BEHAVIOURS)} or a status")
            return
        FaultHandler.default = rest
        self._answer(200, rest)

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].lstrip("/")
        if path == "_default":
            self._answer(200, FaultHandler.default)
            return
        head, _, rest = path.partition("/")
        if not _known(head):
            head, _, rest = FaultHandler.default.partition("/")
        if head == "close":
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if head == "truncate":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            self.wfile.write(b"truncated!")
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if head == "hang":
            time.sleep(HANG_SECONDS)
            self.close_connection = True
            return
        if head == "slow":
            time.sleep(float(rest) if rest.replace(".", "", 1).isdigit() else 3.0)
            self._answer(200, "slow ok")
            return
        if len(head) == 3 and head.isdigit() and 200 <= int(head) <= 599:
            self._answer(int(head), f"fault {head}")
            return
        self._answer(200, "ok")

    do_POST = do_GET

    def _answer(self, status: int, text: str) -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        sys.stderr.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} fault {format % args}\n")
        sys.stderr.flush()


def main(argv: list[str]) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", int(argv[0])), FaultHandler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main(sys.argv[1:])
