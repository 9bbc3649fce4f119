"""Verifies deliveries captured by the Swift tests with the official Standard Webhooks and Svix libraries.

Input (argv[1]): JSON {"deliveries": [{"body_b64", "headers", "secrets": [...]}]}. Every secret must verify every
delivery with both libraries, and a tampered body or a wrong secret must be rejected. Prints one JSON line; exit 0
when all checks pass, 1 when one fails, 3 when a library is missing.
"""
import base64
import json
import sys

try:
    import standardwebhooks
    import svix.webhooks
except ImportError as error:
    print(json.dumps({"error": f"missing Python library ({error}); run: python3 -m pip install standardwebhooks svix"}))
    sys.exit(3)


def verifies(verify, body, headers):
    try:
        verify(body, headers)
        return True
    except Exception:
        return False


def main():
    data = json.load(open(sys.argv[1]))
    results = []
    for delivery in data["deliveries"]:
        body = base64.b64decode(delivery["body_b64"])
        headers = delivery["headers"]
        tampered = body + b" "
        for secret in delivery["secrets"]:
            for name, hook in (("standardwebhooks", standardwebhooks.Webhook(secret)), ("svix", svix.webhooks.Webhook(secret))):
                results.append({"library": name, "check": "valid", "ok": verifies(hook.verify, body, headers)})
                results.append({"library": name, "check": "tampered body rejected", "ok": not verifies(hook.verify, tampered, headers)})
        wrong = "whsec_" + base64.b64encode(b"w" * 32).decode()
        for name, hook in (("standardwebhooks", standardwebhooks.Webhook(wrong)), ("svix", svix.webhooks.Webhook(wrong))):
            results.append({"library": name, "check": "wrong secret rejected", "ok": not verifies(hook.verify, body, headers)})
    print(json.dumps({"checks": len(results), "failed": [r for r in results if not r["ok"]]}))
    sys.exit(0 if all(r["ok"] for r in results) else 1)


main()
