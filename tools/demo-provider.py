#!/usr/bin/env python3
"""A stand-in payments provider for `make run`: answers every call with JSON
echoing what it received (minus the credential), and prints one line per call
so you can watch Countersign execute approved requests.

Usage: tools/demo-provider.py PORT
"""
import http.server
import json
import sys
import time


class Handler(http.server.BaseHTTPRequestHandler):
    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        auth = self.headers.get("Authorization", "")
        print(json.dumps({"at": time.strftime("%H:%M:%S"), "method": self.command, "path": self.path,
                          "idempotency_key": self.headers.get("Idempotency-Key"),
                          "credential_present": bool(auth)}), flush=True)
        out = json.dumps({"ok": True, "method": self.command, "path": self.path,
                          "received": body.decode(errors="replace")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _answer

    def log_message(self, *args: object) -> None:
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 18080
    http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
