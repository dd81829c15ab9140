#!/usr/bin/env python3
"""A fault-injecting HTTP proxy in front of an S3-compatible server, for the
lake's fault tests: it forwards each request unchanged (the Host header too,
so SigV4 signatures stay valid) and, on demand, answers the first requests
with 503 SlowDown, closes the connection of the first PUTs without an
answer (before or after forwarding them), holds each PUT a while, or
stalls the PUTs whose path holds a string in the middle of their upload:
half the body goes on to the server, then nothing more until the client
goes away, when the upstream connection is dropped mid-body too.

    python3 tests/env/s3_faults.py --port P --upstream http://127.0.0.1:58333 \
        [--slowdown N] [--reset-before N] [--reset-after N] [--put-delay-ms MS] \
        [--stall-put TEXT]

GET /_faults/stats answers {"requests": n, "slowdown": n, "reset_before": n,
"reset_after": n, "stalled": n} (counts of faults served; "stalled"
counts the uploads held in the middle so far). It prints "ready" once it
listens and serves until killed.
"""

from __future__ import annotations

import argparse
import http.client
import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

SLOWDOWN_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code>'
    b"<Message>Please reduce your request rate.</Message></Error>"
)


class State:
    def __init__(self, args: argparse.Namespace) -> None:
        self.lock = threading.Lock()
        self.left = {"slowdown": args.slowdown, "reset_before": args.reset_before, "reset_after": args.reset_after}
        self.served = {"requests": 0, "slowdown": 0, "reset_before": 0, "reset_after": 0, "stalled": 0}
        self.put_delay = args.put_delay_ms / 1000.0
        self.stall_put = args.stall_put
        up = urlsplit(args.upstream)
        self.host, self.port = up.hostname or "127.0.0.1", up.port or 80

    def draw(self, kind: str) -> bool:
        with self.lock:
            if self.left[kind] > 0:
                self.left[kind] -= 1
                self.served[kind] += 1
                return True
            return False


def handler(state: State) -> type[BaseHTTPRequestHandler]:
    class Proxy(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, fmt: str, *args: object) -> None:  # quiet
            pass

        def reset(self) -> None:
            self.close_connection = True
            try:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                self.connection.close()
            except OSError:
                pass

        def stall(self, length: int) -> None:
            """Sends the headers and half the body upstream, then waits for the
            client to go away and drops the upstream connection mid-body."""
            with state.lock:
                state.served["requests"] += 1
            half = self.rfile.read(length // 2)
            up = socket.create_connection((state.host, state.port), timeout=120)
            head = f"{self.command} {self.path} HTTP/1.1\r\n"
            head += "".join(f"{k}: {v}\r\n" for k, v in self.headers.items() if k.lower() != "connection")
            up.sendall((head + "\r\n").encode("latin-1") + half)
            with state.lock:
                state.served["stalled"] += 1
            self.close_connection = True
            self.connection.settimeout(None)
            try:
                while self.connection.recv(65536):
                    pass
            except OSError:
                pass
            up.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            up.close()

        def forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if self.command == "PUT" and state.stall_put and state.stall_put in self.path and length > 1:
                self.stall(length)
                return
            body = self.rfile.read(length) if length else b""
            if self.path == "/_faults/stats":
                data = json.dumps(state.served).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                return
            with state.lock:
                state.served["requests"] += 1
            if state.draw("slowdown"):
                self.send_response(503)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(SLOWDOWN_BODY)))
                self.end_headers()
                self.wfile.write(SLOWDOWN_BODY)
                return
            if self.command == "PUT":
                if state.put_delay:
                    time.sleep(state.put_delay)
                if state.draw("reset_before"):
                    self.reset()
                    return
            conn = http.client.HTTPConnection(state.host, state.port, timeout=120)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection",)}
            try:
                conn.request(self.command, self.path, body=body if length else None, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except OSError:
                self.reset()
                return
            finally:
                conn.close()
            if self.command == "PUT" and state.draw("reset_after"):
                self.reset()
                return
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = forward

    return Proxy


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--upstream", required=True)
    p.add_argument("--slowdown", type=int, default=0)
    p.add_argument("--reset-before", type=int, default=0)
    p.add_argument("--reset-after", type=int, default=0)
    p.add_argument("--put-delay-ms", type=int, default=0)
    p.add_argument("--stall-put", default="")
    args = p.parse_args()
    state = State(args)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), handler(state))
    server.daemon_threads = True
    print("ready", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
