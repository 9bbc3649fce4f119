"""An HTTPS webhook receiver for the enterprise delivery test: TLS with its own certificate, optionally demanding a
client certificate signed by a given CA (mutual TLS), a bearer token, and a Standard Webhooks `v1a` (Ed25519)
signature checked with the `cryptography` package against the `whpk_` key in a file (read at each request).

Usage: tls_receiver.py PORT_FILE LOG_FILE CERT KEY [--client-ca CA] [--bearer TOKEN] [--public-key-file FILE]
Writes its port to PORT_FILE, and one JSON line per request to LOG_FILE:
{"path", "client" (the client certificate's CN or null), "status", "reason"}. Answers 204, or 401/403 with the reason."""
import argparse
import base64
import json
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

parser = argparse.ArgumentParser()
parser.add_argument("port_file")
parser.add_argument("log_file")
parser.add_argument("cert")
parser.add_argument("key")
parser.add_argument("--client-ca")
parser.add_argument("--bearer")
parser.add_argument("--public-key-file")
args = parser.parse_args()
lock = threading.Lock()


def verified(headers, body):
    with open(args.public_key_file) as file:
        public_key = file.read().strip()
    key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key[len("whpk_"):]))
    content = f"{headers.get('webhook-id')}.{headers.get('webhook-timestamp')}.".encode() + body
    for candidate in (headers.get("webhook-signature") or "").split(" "):
        version, _, signature = candidate.partition(",")
        if version == "v1a":
            try:
                key.verify(base64.b64decode(signature), content)
                return True
            except InvalidSignature:
                pass
    return False


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        peer = self.connection.getpeercert()
        client = dict(item[0] for item in peer["subject"]).get("commonName") if peer else None
        status, reason = 204, "ok"
        if args.bearer and self.headers.get("authorization") != f"Bearer {args.bearer}":
            status, reason = 401, "bearer token missing or wrong"
        elif args.public_key_file and not verified(self.headers, body):
            status, reason = 403, "no v1a signature verified"
        with lock, open(args.log_file, "a") as log:
            log.write(json.dumps({"path": self.path, "client": client, "status": status, "reason": reason}) + "\n")
        self.send_response(status)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *arguments):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(args.cert, args.key)
if args.client_ca:
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(args.client_ca)
server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=True)
with open(args.port_file, "w") as file:
    file.write(str(server.server_address[1]))
server.serve_forever()
