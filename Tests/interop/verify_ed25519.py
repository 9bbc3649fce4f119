"""Verifies a Standard Webhooks `v1a` (Ed25519) signature with the `cryptography` package, by the spec's algorithm:
the signed content is "{webhook-id}.{webhook-timestamp}.{body}", the header holds space-separated "v1a,<base64>"
signatures, and the `whpk_` key is base64 of the raw 32-byte public key.

Usage: verify_ed25519.py whpk_KEY MSG_ID TIMESTAMP SIGNATURE_HEADER BODY; prints "verified" and exits 0 when one
signature verifies, exits 1 otherwise."""
import base64
import sys

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

public_key, msg_id, timestamp, header, body = sys.argv[1:6]
assert public_key.startswith("whpk_"), "not a whpk_ key"
key = Ed25519PublicKey.from_public_bytes(base64.b64decode(public_key[len("whpk_"):]))
content = f"{msg_id}.{timestamp}.{body}".encode()
for candidate in header.split(" "):
    version, _, signature = candidate.partition(",")
    if version != "v1a":
        continue
    try:
        key.verify(base64.b64decode(signature), content)
    except InvalidSignature:
        continue
    print("verified")
    sys.exit(0)
print("no v1a signature verified")
sys.exit(1)
