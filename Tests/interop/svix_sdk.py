"""Drives Tern's Svix-compatible API (/api/v1) with the official svix SDK from PyPI, sync and async clients.

Usage: svix_sdk.py BASE_URL TOKEN. Prints one JSON object: what each call returned or raised."""
import asyncio
import json
import sys

from svix.api import Svix, SvixAsync, SvixOptions

base, token = sys.argv[1], sys.argv[2]
options = SvixOptions(server_url=base, retry_schedule=[])
result = {}

Svix(token, options).health.get()
result["health_sync"] = "ok"


async def main():
    await SvixAsync(token, options).health.get()


asyncio.run(main())
result["health_async"] = "ok"
print(json.dumps(result))
