"""A whole Svix flow, driven by the official svix SDK from PyPI against Tern's /api/v1, with deliveries received on
a loopback HTTP server and verified there with svix.Webhook. Every check is an assert; the last line printed is a
JSON summary of what was seen.

Usage: svix_flow.py BASE_URL TOKEN"""
import asyncio
import json
import sys
import time
from urllib.parse import urlparse
from datetime import datetime, timedelta, timezone

import httpx
import loopback
from loopback import lock, received
from svix.api import (
    ApplicationIn, ApplicationPatch, AppPortalAccessIn, EndpointHeadersIn, EndpointHeadersPatchIn, EndpointIn,
    EndpointPatch, EndpointSecretRotateIn, EndpointUpsertIn, EventTypeIn, EventTypePatch, EventTypeUpsertIn, MessageIn,
    RecoverIn, Svix, SvixAsync, SvixOptions,
)
from svix.api.application import ApplicationCreateOptions, ApplicationListOptions
from svix.api.event_type import EventTypeDeleteOptions, EventTypeListOptions
from svix.api.message import MessageCreateOptions, MessageGetOptions, MessageListOptions
from svix.api.message_attempt import MessageAttemptListByMsgOptions
from svix.exceptions import HTTPValidationError, HttpError
from svix.webhooks import Webhook

base, token = sys.argv[1], sys.argv[2]
svix = Svix(token, SvixOptions(server_url=base))
seen = {}

hook = loopback.start()


def wait_for(predicate, what, timeout=30):
    deadline = time.time() + timeout
    with lock:
        while True:
            found = [r for r in received if predicate(r)]
            if found:
                return found
            left = deadline - time.time()
            assert left > 0, f"timed out waiting for {what}"
            lock.wait(left)


def eventually(read, check, what, timeout=30):
    """Reads until check(value) holds: a worker records an attempt just after its receiver answered."""
    deadline = time.time() + timeout
    while True:
        value = read()
        if check(value):
            return value
        assert time.time() < deadline, f"timed out waiting for {what}: {value}"
        time.sleep(0.1)


def expect_error(call, status, code=None):
    try:
        call()
    except HttpError as error:
        assert error.status_code == status, (error.status_code, error.code, error.detail)
        assert code is None or error.code == code, (error.code, error.detail)
        return error
    except HTTPValidationError as error:
        assert status == 422, error
        return error
    raise AssertionError(f"expected {status}")


svix.health.get()

# Applications: create, get-or-create, get by id and uid, list pages, patch, upsert, delete.
app = svix.application.create(ApplicationIn(name="Acme", uid="acme", metadata={"plan": "pro"}))
assert app.id.startswith("app_") and app.uid == "acme" and app.metadata == {"plan": "pro"}
same = svix.application.get_or_create(ApplicationIn(name="Ignored", uid="acme"))
assert same.id == app.id and same.name == "Acme"
assert svix.application.get("acme").id == app.id and svix.application.get(app.id).uid == "acme"
expect_error(lambda: svix.application.create(ApplicationIn(name="Again", uid="acme")), 409, "conflict")
error = expect_error(lambda: svix.application.create(ApplicationIn(name="Bad", uid="app_x")), 422)
assert error.detail[0].loc == ["body", "uid"], error.detail
no_uid = svix.application.create(ApplicationIn(name="No uid"))
assert no_uid.uid is None and svix.application.get(no_uid.id).name == "No uid"
for n in range(3):
    svix.application.create(ApplicationIn(name=f"Extra {n}", uid=f"extra-{n}"))
first = svix.application.list(ApplicationListOptions(limit=2))
assert len(first.data) == 2 and not first.done and first.iterator == first.data[-1].id
ids = [a.id for a in first.data]
page = first
while not page.done:
    page = svix.application.list(ApplicationListOptions(limit=2, iterator=page.iterator))
    ids += [a.id for a in page.data]
assert ids == sorted(ids) and len(ids) == len(set(ids)) and app.id in ids and len(ids) >= 5
back = svix.application.list(ApplicationListOptions(limit=2, iterator=page.prev_iterator))
assert [a.id for a in back.data] == ids[-len(page.data) - 2:-len(page.data)] if len(page.data) else True
seen["applications_listed"] = len(ids)
patched = svix.application.patch("acme", ApplicationPatch(name="Acme Inc"))
assert patched.name == "Acme Inc" and patched.uid == "acme" and patched.metadata == {"plan": "pro"}
replaced = svix.application.upsert("acme", ApplicationIn(name="Acme Corp"))
assert replaced.id == app.id and replaced.metadata == {} and replaced.name == "Acme Corp"
created = svix.application.upsert("made-by-put", ApplicationIn(name="Put"))
assert created.uid == "made-by-put"
svix.application.delete("made-by-put")
expect_error(lambda: svix.application.get("made-by-put"), 404, "not_found")
assert svix.application.create(ApplicationIn(name="Reused", uid="made-by-put")).uid == "made-by-put"

# Event types: create, conflict, get, list, patch, upsert, archive, expunge.
svix.event_type.create(EventTypeIn(name="user.signup", description="A user signed up",
                                   schemas={"1": {"type": "object", "examples": [{"id": 1}]}}))
expect_error(lambda: svix.event_type.create(EventTypeIn(name="user.signup", description="again")), 409, "event_type_exists")
svix.event_type.create(EventTypeIn(name="invoice.paid", description="Paid"))
got = svix.event_type.get("user.signup")
assert got.schemas["1"]["type"] == "object" and got.deprecated is False
listed = svix.event_type.list(EventTypeListOptions(with_content=True))
names = [t.name for t in listed.data]
assert names == sorted(names) and "user.signup" in names
assert svix.event_type.patch("invoice.paid", EventTypePatch(deprecated=True)).deprecated is True
assert svix.event_type.upsert("invoice.paid", EventTypeUpsertIn(description="Paid again")).deprecated is False
svix.event_type.create(EventTypeIn(name="to.archive", description="x"))
svix.event_type.delete("to.archive")
assert "to.archive" not in [t.name for t in svix.event_type.list().data]
assert "to.archive" in [t.name for t in svix.event_type.list(EventTypeListOptions(include_archived=True)).data]
assert svix.event_type.get("to.archive").archived is True
svix.event_type.delete("to.archive", EventTypeDeleteOptions(expunge=True))
expect_error(lambda: svix.event_type.get("to.archive"), 404)

# Endpoints: create, uid lookup, validation, list, patch, upsert, secret, headers, rotation.
endpoint = svix.endpoint.create("acme", EndpointIn(url=hook + "/all", uid="main", description="All", metadata={"k": "v"}))
assert endpoint.id.startswith("ep_") and endpoint.uid == "main" and endpoint.description == "All" and endpoint.event_types is None
assert svix.endpoint.get("acme", "main").id == endpoint.id
error = expect_error(lambda: svix.endpoint.create("acme", EndpointIn(url="ftp://x")), 422)
assert error.detail[0].loc == ["body", "url"], error.detail
error = expect_error(lambda: svix.endpoint.create("acme", EndpointIn(url=hook, event_types=["no.such.type"])), 422)
assert error.detail[0].loc == ["body", "eventTypes"], error.detail
expect_error(lambda: svix.endpoint.create("acme", EndpointIn(url=hook, uid="main")), 409)
signups = svix.endpoint.create("acme", EndpointIn(url=hook + "/signups", event_types=["user.signup"], uid="signups"))
channel = svix.endpoint.create("acme", EndpointIn(url=hook + "/channel", channels=["eu"], uid="eu-only"))
listed = svix.endpoint.list("acme")
assert [e.id for e in listed.data] == sorted([e.id for e in listed.data], reverse=True) and len(listed.data) == 3
patched = svix.endpoint.patch("acme", "signups", EndpointPatch(description="Signups"))
assert patched.event_types == ["user.signup"] and patched.description == "Signups"
cleared = svix.endpoint.patch("acme", "signups", EndpointPatch(event_types=None))
assert cleared.event_types is None
svix.endpoint.patch("acme", "signups", EndpointPatch(event_types=["user.signup"]))
upserted = svix.endpoint.upsert("acme", "by-put", EndpointUpsertIn(url=hook + "/put"))
assert upserted.uid == "by-put"
svix.endpoint.delete("acme", "by-put")
expect_error(lambda: svix.endpoint.get("acme", "by-put"), 404)
secret = svix.endpoint.get_secret("acme", "main").key
assert secret.startswith("whsec_")
svix.endpoint.set_headers("acme", "main", EndpointHeadersIn(headers={"X-Team": "core", "Authorization": "Bearer t"}))
headers = svix.endpoint.get_headers("acme", "main")
assert headers.headers == {"X-Team": "core"} and headers.sensitive == ["Authorization"], headers
svix.endpoint.patch_headers("acme", "main", EndpointHeadersPatchIn(headers={"X-Extra": "1"}, delete_headers=["Authorization"]))
headers = svix.endpoint.get_headers("acme", "main")
assert headers.headers == {"X-Team": "core", "X-Extra": "1"} and headers.sensitive == []

# Messages: fan-out by type and channel, signatures verified with svix.Webhook, idempotent retries.
message = svix.message.create("acme", MessageIn(event_type="user.signup", payload={"user": "ada"}, event_id="evt-1",
                                                tags=["t1"]))
assert message.id.startswith("msg_") and message.payload == {} and message.tags == ["t1"]
deliveries = wait_for(lambda r: r["headers"].get("svix-id") == message.id or r["headers"].get("webhook-id") == message.id, "delivery")
by_path = {}
for path in ("/all", "/signups"):
    by_path[path] = wait_for(lambda r: (r["headers"].get("webhook-id") or r["headers"].get("svix-id")) == message.id and r["path"] == path,
                             f"the delivery to {path}")[0]
time.sleep(0.5)
paths = sorted({r["path"] for r in received if (r["headers"].get("webhook-id") or r["headers"].get("svix-id")) == message.id})
assert paths == ["/all", "/signups"], paths  # the endpoint with channels did not get a message without channels
delivered = by_path["/all"]
Webhook(secret).verify(delivered["body"], delivered["headers"])
assert json.loads(delivered["body"]) == {"user": "ada"}
assert delivered["headers"]["x-team"] == "core"
seen["headers"] = sorted(h for h in delivered["headers"] if h.startswith(("svix-", "webhook-")))
in_channel = svix.message.create("acme", MessageIn(event_type="invoice.paid", payload={"n": 2}, channels=["eu"]))
wait_for(lambda r: r["path"] == "/channel", "the channel's delivery")
expect_error(lambda: svix.message.create("acme", MessageIn(event_type="user.signup", payload={}, event_id="evt-1")), 409)
options = MessageCreateOptions(idempotency_key="retry-key-1")
once = svix.message.create("acme", MessageIn(event_type="invoice.paid", payload={"n": 3}), options)
again = svix.message.create("acme", MessageIn(event_type="invoice.paid", payload={"n": 3}), options)
assert once.id == again.id and once.timestamp == again.timestamp
assert svix.message.get("acme", "evt-1").id == message.id
full = svix.message.get("acme", message.id, MessageGetOptions(with_content=True))
assert full.payload == {"user": "ada"} and full.event_id == "evt-1"
listed = svix.message.list("acme", MessageListOptions(event_types=["user.signup", "invoice.paid"]))
assert [m.id for m in listed.data] == sorted([m.id for m in listed.data], reverse=True) and len(listed.data) == 3
assert [m.id for m in svix.message.list("acme", MessageListOptions(channel="eu")).data] == [in_channel.id]
assert [m.id for m in svix.message.list("acme", MessageListOptions(tag="t1")).data] == [message.id]
later = datetime.now(timezone.utc) + timedelta(minutes=5)
assert svix.message.list("acme", MessageListOptions(after=later)).data == []
assert len(svix.message.list("acme", MessageListOptions(before=datetime.now() + timedelta(hours=1))).data) >= 0

# Attempts: by message, by endpoint, attempted messages and destinations, one attempt, resend.
attempts = eventually(lambda: svix.message_attempt.list_by_msg("acme", message.id), lambda a: len(a.data) == 2, "two attempts")
assert len(attempts.data) == 2 and all(a.status == 0 and a.response_status_code == 200 for a in attempts.data), attempts
one = svix.message_attempt.list_by_msg("acme", message.id, MessageAttemptListByMsgOptions(endpoint_id="main")).data
assert [a.endpoint_id for a in one] == [endpoint.id]
attempt = svix.message_attempt.get("acme", message.id, one[0].id)
assert attempt.msg_id == message.id and attempt.trigger_type == 0 and attempt.status_text == "success"
by_endpoint = svix.message_attempt.list_by_endpoint("acme", "main")
assert {a.msg_id for a in by_endpoint.data} >= {message.id}
sent = svix.message_attempt.list_attempted_messages("acme", "main")
assert message.id in [m.id for m in sent.data] and all(m.status == 0 for m in sent.data)
destinations = svix.message_attempt.list_attempted_destinations("acme", message.id)
assert sorted(d.id for d in destinations.data) == sorted([endpoint.id, signups.id])
count = len(received)
svix.message_attempt.resend("acme", message.id, "eu-only")
resent = wait_for(lambda r: r["path"] == "/channel" and (r["headers"].get("webhook-id") or r["headers"].get("svix-id")) == message.id, "resend")
manual = eventually(lambda: [a for a in svix.message_attempt.list_by_endpoint("acme", "eu-only").data if a.msg_id == message.id],
                    lambda found: len(found) == 1, "the manual attempt")
assert manual[0].trigger_type == 1

# Rotation: both secrets verify during the grace period; the new one is returned.
rotated = svix.endpoint.rotate_secret("acme", "main", EndpointSecretRotateIn())
assert rotated.key != secret and svix.endpoint.get_secret("acme", "main").key == rotated.key
after_rotation = svix.message.create("acme", MessageIn(event_type="invoice.paid", payload={"n": 4}))
r = wait_for(lambda r: r["path"] == "/all" and (r["headers"].get("webhook-id") or r["headers"].get("svix-id")) == after_rotation.id, "rotated")[0]
Webhook(secret).verify(r["body"], r["headers"])
Webhook(rotated.key).verify(r["body"], r["headers"])

# Stats, recover (a background task), portal access.
stats = eventually(lambda: svix.endpoint.get_stats("acme", "main"), lambda s: s.success >= 3, "stats")
assert stats.fail == 0, stats
failing = svix.endpoint.create("acme", EndpointIn(url=hook + "/fail", uid="failing"))
task = svix.endpoint.recover("acme", "failing", RecoverIn(since=datetime.now() - timedelta(days=1)))
assert task.id.startswith("qtask_") and task.task == "endpoint.recover"
assert svix.background_task.get(task.id).id == task.id
expect_error(lambda: svix.endpoint.recover("acme", "failing", RecoverIn(since=datetime(2020, 1, 1))), 422)
expect_error(lambda: svix.endpoint.get_stats("acme", "missing-endpoint"), 404)
portal = svix.authentication.app_portal_access("acme", AppPortalAccessIn(expiry=3600))
link = urlparse(portal.url)
assert link.path == "/portal" and portal.token in link.query
# The link names TERN_PUBLIC_URL; the test server's port is its own, so the path and query are opened on it.
page = httpx.get(f"{base}{link.path}?{link.query}", follow_redirects=True)
assert page.status_code == 200 and hook + "/all" in page.text, (page.status_code, page.text[:300])
seen["portal"] = "ok"

# send-example: the event type's schema example to one endpoint; expunging a message's and an attempt's content.
from svix.api import EventExampleIn
example = svix.endpoint.send_example("acme", "main", EventExampleIn(event_type="user.signup"))
r = wait_for(lambda r: r["path"] == "/all" and (r["headers"].get("webhook-id") or r["headers"].get("svix-id")) == example.id, "example")[0]
assert json.loads(r["body"]) == {"id": 1}
expect_error(lambda: svix.endpoint.send_example("acme", "main", EventExampleIn(event_type="invoice.paid")), 400, "invalid_scheme")
first_attempt = svix.message_attempt.list_by_msg("acme", message.id).data[0]
svix.message_attempt.expunge_content("acme", message.id, first_attempt.id)
assert svix.message_attempt.get("acme", message.id, first_attempt.id).response == "EXPUNGED"
svix.message.expunge_content("acme", message.id)
assert svix.message.get("acme", message.id, MessageGetOptions(with_content=True)).payload == {}
expect_error(lambda: svix.message_attempt.resend("acme", message.id, "main"), 400, "missing_payload")
seen["expunged"] = "ok"

# Errors come in the Svix shapes: a bad limit is 422 with its loc, an unknown app 404, a bad token 401.
error = expect_error(lambda: svix.application.list(ApplicationListOptions(limit=300)), 422)
assert error.detail[0].loc == ["query", "limit"], error.detail
expect_error(lambda: svix.endpoint.list("no-such-app"), 404, "not_found")
expect_error(lambda: Svix("tern_bad_token", SvixOptions(server_url=base)).application.list(), 401, "authentication_failed")


# The async client drives the same calls.
async def run_async():
    client = SvixAsync(token, SvixOptions(server_url=base))
    app = await client.application.create(ApplicationIn(name="Async", uid="async-app"))
    endpoint = await client.endpoint.create(app.id, EndpointIn(url=hook + "/async"))
    msg = await client.message.create("async-app", MessageIn(event_type="invoice.paid", payload={"a": 1}))
    listed = await client.message.list("async-app")
    assert [m.id for m in listed.data] == [msg.id]
    secret = (await client.endpoint.get_secret(app.id, endpoint.id)).key
    r = await asyncio.to_thread(wait_for, lambda r: r["path"] == "/async", "async delivery")
    Webhook(secret).verify(r[0]["body"], r[0]["headers"])
    for _ in range(300):
        attempts = await client.message_attempt.list_by_msg("async-app", msg.id)
        if attempts.data:
            return len(attempts.data)
        await asyncio.sleep(0.1)
    return 0


seen["async_attempts"] = asyncio.run(run_async())
seen["deliveries"] = len(received)
# Payload retention as the SDK sends it: hours or days; more than the plan keeps gets the plan's retention.
assert svix.message.create("acme", MessageIn(event_type="invoice.paid", payload={"n": 4}, payload_retention_hours=1)).id
assert svix.message.create("acme", MessageIn(event_type="invoice.paid", payload={"n": 5}, payload_retention_period=90)).id
expect_error(lambda: svix.message.create("acme", MessageIn(event_type="invoice.paid", payload={}, payload_retention_hours=0)), 422)
print(json.dumps(seen))
