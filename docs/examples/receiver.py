"""A webhook receiver for trying Tern locally: prints every delivery and checks its Standard Webhooks signature.

    WEBHOOK_SECRET=whsec_... python3 docs/examples/receiver.py 9000

Answers 204; a path ending in a status code (/hook/500, /hook/410) answers that code instead, to watch retries,
the dead-letter queue and the circuit breaker. Tern must run with TERN_ALLOW_PRIVATE_ENDPOINTS=true to deliver
to 127.0.0.1.
"""
import base64
import hashlib
import hmac
import http.server
import os
import sys


def verified(headers, body):
    secret = os.environ.get("WEBHOOK_SECRET", "")
    if not secret:
        return "not checked (set WEBHOOK_SECRET)"
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    sent = [part.split(",", 1)[1] for part in headers.get("webhook-signature", "").split() if part.startswith("v1,")]
    return "valid" if any(hmac.compare_digest(expected, s) for s in sent) else "INVALID"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        last = self.path.rstrip("/").rsplit("/", 1)[-1]
        status = int(last) if last.isdigit() else 204
        print(f"{self.path} {self.headers.get('webhook-id')} signature {verified(self.headers, body)} -> {status}\n  {body.decode()}",
              flush=True)
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


port = int(sys.argv[1]) if len(sys.argv) > 1 else 9000
print(f"listening on http://127.0.0.1:{port}", flush=True)
http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
