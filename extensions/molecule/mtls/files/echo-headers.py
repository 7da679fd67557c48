#!/usr/bin/env python3
"""Test upstream behind NGINX: answers every GET with the request headers it received, as JSON,
so a test can see the client identity NGINX passes on. Listens on 127.0.0.1 only."""

import json
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer


class EchoHeaders(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"path": self.path, "headers": dict(self.headers.items())}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # noqa: A002 - keep the journal quiet
        pass


if __name__ == "__main__":
    HTTPServer(("127.0.0.1", int(sys.argv[1])), EchoHeaders).serve_forever()
