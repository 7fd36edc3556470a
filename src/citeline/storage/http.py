"""Serving a stored object over HTTP: streamed from the store, always as an attachment, and
sandboxed should a browser render it anyway (it then runs no script and reads nothing of the
app's origin)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import quote

import anyio
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.responses import StreamingResponse

from citeline.storage.base import ObjectStream


def download(stream: ObjectStream, media_type: str, filename: str) -> StreamingResponse:
    return StreamingResponse(
        _streamed(stream),
        media_type=media_type,
        headers={
            "Content-Disposition": attachment(filename),
            "Content-Length": str(stream.size),
            "Content-Security-Policy": "sandbox; default-src 'none'",
        },
    )


def attachment(filename: str) -> str:
    """Content-Disposition as Starlette's FileResponse writes it."""
    quoted = quote(filename)
    if quoted != filename:
        return f"attachment; filename*=utf-8''{quoted}"
    return f'attachment; filename="{filename}"'


async def _streamed(stream: ObjectStream) -> AsyncIterator[bytes]:
    try:
        async for chunk in iterate_in_threadpool(stream):
            yield chunk
    finally:
        # Also when the client went away and this generator is being cancelled.
        with anyio.CancelScope(shield=True):
            await run_in_threadpool(stream.close)
