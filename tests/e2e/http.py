"""httpx's one-shot requests with a timeout for a loaded machine.

httpx waits 5 s by default. While the whole suite runs on 2 cores, `serve` may still be loading
the model server when a test asks for its first page, and a first `/openapi.json` then took
longer than that; a test waits here for a slow answer, and fails on a missing one."""

from __future__ import annotations

from functools import partial

import httpx

TIMEOUT = 60.0

get = partial(httpx.get, timeout=TIMEOUT)
post = partial(httpx.post, timeout=TIMEOUT)
put = partial(httpx.put, timeout=TIMEOUT)
client = partial(httpx.Client, timeout=TIMEOUT)
