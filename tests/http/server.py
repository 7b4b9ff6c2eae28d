#!/usr/bin/env python3
"""tests/http/server.py - the HTTP server check_http and `make http-demo` talk to.

Python 3's standard library only (http.server, threaded). Listens on 127.0.0.1 on a free
port chosen by the kernel (port 0) and announces it: "PORT <n>" on stdout, and in
--port-file (written atomically) when given. With --exit-on-stdin-eof it exits when its
stdin reaches end of file, so it never outlives the test program that started it with a
pipe.

Routes (key=K names a per-key counter, so concurrent tests do not share one):
  GET  /json[?id=N]                 200 {"hello": "world", "id": N, "items": [1, 2, 3]}
  GET  /404                         404
  GET  /429?key=K[&n=N][&ra=S]      429 with "Retry-After: S" (default 1) for the first N
                                    hits of K (without n: always), then 200 {"attempts"}
  GET  /500-then-200?key=K&n=N      500 for the first N hits of K, then 200 {"attempts"}
  GET  /slow?key=K&ms=M             answers after M ms (default 5000); notes when the
                                    client closes the connection before that
  POST /echo                        200 {"echo": the JSON body, "authorization",
                                    "content_type"}
  GET  /bytes?n=N                   N bytes 0, 1, ..., 255, 0, 1, ... (octet-stream)
  GET  /bad-json                    200 with a body that is not JSON
  GET  /close                       closes the connection without answering
  GET  /stats?key=K                 {"hits": n, "started": bool, "disconnected": bool}
"""
import argparse
import json
import os
import select
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

LOCK = threading.Lock()
HITS = {}           # (route, key) -> hits
SLOW = {}           # key -> {"started": bool, "disconnected": bool}


def hit(route, key):
    with LOCK:
        HITS[(route, key)] = HITS.get((route, key), 0) + 1
        return HITS[(route, key)]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every answer has a Content-Length

    def log_message(self, fmt, *args):  # quiet
        pass

    def send(self, status, body=b"", ctype="application/json", headers=None):
        if not isinstance(body, (bytes, bytearray)):
            body = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def client_gone(self, timeout):
        """Waits up to `timeout` s; True when the client closed the connection."""
        r, _, _ = select.select([self.connection], [], [], timeout)
        if not r:
            return False
        try:
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def do_GET(self):
        url = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        key = q.get("key", "")
        route = url.path
        if route == "/json":
            self.send(200, {"hello": "world", "id": int(q.get("id", 0)), "items": [1, 2, 3]})
        elif route == "/404":
            self.send(404, {"error": "no such thing"})
        elif route == "/429":
            n = hit(route, key)
            if "n" not in q or n <= int(q["n"]):
                self.send(429, {"error": "slow down"}, headers={"Retry-After": q.get("ra", "1")})
            else:
                self.send(200, {"attempts": n})
        elif route == "/500-then-200":
            n = hit(route, key)
            if n <= int(q.get("n", 1)):
                self.send(500, {"error": "try again"})
            else:
                self.send(200, {"attempts": n})
        elif route == "/slow":
            hit(route, key)
            with LOCK:
                SLOW[key] = {"started": True, "disconnected": False}
            deadline = time.monotonic() + int(q.get("ms", 5000)) / 1000.0
            while time.monotonic() < deadline:
                if self.client_gone(min(0.05, max(0.0, deadline - time.monotonic()))):
                    with LOCK:
                        SLOW[key]["disconnected"] = True
                    self.close_connection = True
                    return
            self.send(200, {"slept_ms": int(q.get("ms", 5000))})
        elif route == "/bytes":
            n = int(q.get("n", 256))
            self.send(200, bytes(i & 0xFF for i in range(n)), ctype="application/octet-stream")
        elif route == "/bad-json":
            self.send(200, b"{not json", ctype="application/json")
        elif route == "/close":
            self.close_connection = True
        elif route == "/stats":
            with LOCK:
                slow = SLOW.get(key, {"started": False, "disconnected": False})
                hits = sum(v for (r, k), v in HITS.items() if k == key)
            self.send(200, {"hits": hits, **slow})
        else:
            self.send(404, {"error": "unknown route " + route})

    def do_POST(self):
        url = urlsplit(self.path)
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if url.path != "/echo":
            self.send(404, {"error": "unknown route " + url.path})
            return
        try:
            doc = json.loads(body)
        except ValueError as e:
            self.send(400, {"error": str(e)})
            return
        self.send(200, {"echo": doc, "authorization": self.headers.get("Authorization"),
                        "content_type": self.headers.get("Content-Type")})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    ap.add_argument("--exit-on-stdin-eof", action="store_true")
    args = ap.parse_args()
    srv = Server(("127.0.0.1", args.port), Handler)
    port = srv.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, args.port_file)
    print("PORT %d" % port, flush=True)
    if args.exit_on_stdin_eof:
        def watch():
            while sys.stdin.buffer.read(4096):
                pass
            os._exit(0)
        threading.Thread(target=watch, daemon=True).start()
    try:
        srv.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
