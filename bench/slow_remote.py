#!/usr/bin/env python3
"""A remote cache for bench/run.sh: Bazel's HTTP protocol (GET, HEAD, PUT
of /<path>) kept in memory, answering every request after DELAY seconds as
a server across a network would. GET /reset forgets everything.

usage: slow_remote.py PORT DELAY
"""
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

store = {}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def answer(self, code, body=b""):
        time.sleep(DELAY)
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        if self.path == "/reset":
            store.clear()
            return self.answer(200)
        body = store.get(self.path)
        self.answer(404) if body is None else self.answer(200, body)

    def do_HEAD(self):
        self.answer(200 if self.path in store else 404)

    def do_PUT(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().strip(), 16)
                chunk = self.rfile.read(size + 2)[:size]
                if size == 0:
                    break
                body += chunk
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        store[self.path] = body
        self.answer(201)


PORT, DELAY = int(sys.argv[1]), float(sys.argv[2])
ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
