"""Operational webhooks as code written for Svix uses them: the official svix SDK from PyPI manages the operational
endpoint (/api/v1/operational-webhook/endpoint…), a loopback receiver gets the events, svix.Webhook verifies each,
and the payloads are checked against Svix's operational-webhook shapes. Every check is an assert; the last line
printed is a JSON summary.

The application behind TOKEN must have no retries and a breaker threshold of 4 (the Swift test sets it), so that four
failed messages are four `message.attempt.exhausted`, one `message.attempt.failing` (at 2 failures in a row) and one
automatic `endpoint.disabled`.

Usage: svix_operational.py BASE_URL TOKEN"""
import json
import sys
import time

import loopback
from loopback import lock, received
from svix.api import (
    ApplicationIn, EndpointIn, EndpointPatch, MessageIn, OperationalWebhookEndpointHeadersIn, OperationalWebhookEndpointIn,
    OperationalWebhookEndpointSecretIn, OperationalWebhookEndpointUpsertIn, Svix, SvixOptions,
)
from svix.exceptions import HttpError
from svix.webhooks import Webhook

base, token = sys.argv[1], sys.argv[2]
svix = Svix(token, SvixOptions(server_url=base))

hook = loopback.start()


def operational_events(count, timeout=30):
    """Waits for `count` operational webhooks; returns them as (type, data), each verified with svix.Webhook."""
    deadline = time.time() + timeout
    with lock:
        while len([r for r in received if r["path"] == "/ops"]) < count:
            left = deadline - time.time()
            assert left > 0, f"timed out waiting for {count} operational webhooks: {[r['body'] for r in received]}"
            lock.wait(left)
        hooks = [r for r in received if r["path"] == "/ops"]
    events = []
    for request in hooks:
        Webhook(secret).verify(request["body"], request["headers"])
        payload = json.loads(request["body"])
        assert set(payload) == {"type", "timestamp", "data"}, payload
        events.append((payload["type"], payload["data"]))
    return events


# The operational endpoint: create, get, list, upsert, headers, rotate, secret.
created = svix.operational_webhook.endpoint.create(
    OperationalWebhookEndpointIn(url=hook + "/ops", uid="ops", description="Platform alerts", metadata={"team": "sre"})
)
assert created.id.startswith("ep_") and created.uid == "ops" and created.disabled is False and created.metadata == {"team": "sre"}
assert svix.operational_webhook.endpoint.get("ops").id == created.id
listed = svix.operational_webhook.endpoint.list()
assert [e.id for e in listed.data] == [created.id] and listed.done
upserted = svix.operational_webhook.endpoint.upsert(
    "ops",
    OperationalWebhookEndpointUpsertIn(
        url=hook + "/ops", uid="ops", description="Alerts",
        event_types=[
            "endpoint.created", "endpoint.updated", "endpoint.deleted", "endpoint.disabled", "endpoint.enabled",
            "message.attempt.exhausted", "message.attempt.failing", "message.attempt.recovered",
        ],
    ),
)
assert upserted.description == "Alerts" and len(upserted.event_types) == 8, upserted
svix.operational_webhook.endpoint.set_headers("ops", OperationalWebhookEndpointHeadersIn(headers={"x-team": "sre"}))
assert svix.operational_webhook.endpoint.get_headers("ops").headers == {"x-team": "sre"}
svix.operational_webhook.endpoint.rotate_secret("ops", OperationalWebhookEndpointSecretIn())
secret = svix.operational_webhook.endpoint.get_secret("ops").key
assert secret.startswith("whsec_")
try:
    svix.operational_webhook.endpoint.create(OperationalWebhookEndpointIn(url=hook, event_types=["order.created"]))
    raise AssertionError("an unknown operational event type was accepted")
except Exception as error:  # the SDK raises HTTPValidationError for 422
    assert "422" in str(type(error)) or getattr(error, "status_code", 422) == 422 or "Validation" in type(error).__name__, error

# A customer endpoint that fails: created, failing, exhausted four times, disabled; then enabled and deleted.
app = svix.application.create(ApplicationIn(name="Customer", uid="customer-1"))
endpoint = svix.endpoint.create(app.id, EndpointIn(url=hook + "/fail", uid="orders"))
for n in range(4):
    svix.message.create(app.id, MessageIn(event_type="order.created", payload={"n": n}))
events = operational_events(1 + 4 + 1 + 1)
svix.endpoint.patch(app.id, endpoint.id, EndpointPatch(disabled=False))
svix.endpoint.delete(app.id, endpoint.id)
events = operational_events(9)
types = [t for t, _ in events]
counts = {t: types.count(t) for t in set(types)}
assert counts == {
    "endpoint.created": 1, "message.attempt.failing": 1, "message.attempt.exhausted": 4, "endpoint.disabled": 1,
    "endpoint.enabled": 1, "endpoint.deleted": 1,
}, counts
by_type = {t: d for t, d in events}
for data in by_type.values():
    assert data["appId"] == app.id and data["appUid"] == "customer-1" and data["endpointId"] == endpoint.id, data
assert by_type["endpoint.created"]["endpointUid"] == "orders"
disabled = by_type["endpoint.disabled"]
assert disabled["trigger"] == "automatic" and disabled["failSince"].endswith("Z"), disabled
exhausted = by_type["message.attempt.exhausted"]
assert exhausted["msgId"].startswith("msg_") and exhausted["lastAttempt"]["responseStatusCode"] == 500, exhausted
assert exhausted["lastAttempt"]["id"].startswith("atmpt_") and exhausted["lastAttempt"]["timestamp"].endswith("Z")
failing = by_type["message.attempt.failing"]
assert failing["msgId"].startswith("msg_") and failing["lastAttempt"]["responseStatusCode"] == 500, failing
custom = [r for r in received if r["path"] == "/ops"][0]["headers"]
assert custom.get("x-team") == "sre" and "svix-signature" in custom and "webhook-signature" in custom, custom

svix.operational_webhook.endpoint.delete("ops")
try:
    svix.operational_webhook.endpoint.get("ops")
    raise AssertionError("deleted operational endpoint still found")
except HttpError as error:
    assert error.status_code == 404 and error.code == "not_found", error

print(json.dumps({"operational_webhooks": len(events), "types": sorted(counts)}))
