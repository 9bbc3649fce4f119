"""The create, list and get paths driven by the last 1.x Svix SDK (svix<2), which sends no with_content and reads
version, filterTypes and rateLimit. Usage: svix_v1.py BASE_URL TOKEN (with svix<2 on PYTHONPATH)."""
import json
import sys

import svix
from svix.api import ApplicationIn, EndpointIn, EventTypeIn, MessageIn, Svix, SvixOptions

base, token = sys.argv[1], sys.argv[2]
assert svix.__version__.startswith("1."), svix.__version__
client = Svix(token, SvixOptions(server_url=base))
app = client.application.create(ApplicationIn(name="Old SDK", uid="old-sdk"))
assert client.application.get("old-sdk").id == app.id
assert app.id in [a.id for a in client.application.list().data]
client.event_type.create(EventTypeIn(name="old.type", description="Old"))
endpoint = client.endpoint.create(app.id, EndpointIn(url="http://127.0.0.1:9/old", filter_types=["old.type"], version=1))
assert endpoint.filter_types == ["old.type"] and endpoint.version == 1
assert client.endpoint.get(app.id, endpoint.id).url == "http://127.0.0.1:9/old"
assert [e.id for e in client.endpoint.list(app.id).data] == [endpoint.id]
message = client.message.create("old-sdk", MessageIn(event_type="old.type", payload={"v": 1}))
assert message.payload == {"v": 1}  # SDK 1.x sends no with_content: the server's default (true)
assert client.message.get(app.id, message.id).payload == {"v": 1}
assert [m.id for m in client.message.list(app.id).data] == [message.id]
print(json.dumps({"sdk": svix.__version__, "ok": True}))
