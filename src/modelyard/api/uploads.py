"""Request bodies streamed to a spooled temporary file, then handed to a service."""

from __future__ import annotations

import logging
import tempfile
from typing import Any, BinaryIO, cast

from fastapi import Request

from modelyard.errors import STORAGE_ERRNOS, StorageUnavailable, os_reason

log = logging.getLogger(__name__)

SPOOL_IN_MEMORY = 8 << 20
CHUNK = 1 << 20

RAW_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}
"""OpenAPI for a route whose body is a raw file (FastAPI cannot infer it)."""


def with_request_body(route: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    """Route decorator keywords (e.g. ``guard(...)``) plus an OpenAPI request body."""
    return {**route, "openapi_extra": {**route.get("openapi_extra", {}), **body}}


async def spooled_body(request: Request) -> BinaryIO:
    """The request body as a rewound file object (in memory up to 8 MiB, then on disk).

    The caller closes it: ``with await spooled_body(request) as body: ...``.
    """
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 - caller closes
    try:
        async for chunk in request.stream():
            spool.write(chunk)
    except OSError as exc:
        spool.close()
        if exc.errno not in STORAGE_ERRNOS:
            raise
        log.error("a request body could not be spooled in %s: %s", tempfile.gettempdir(), exc)
        raise StorageUnavailable(
            f"the server's temporary folder cannot hold the request body: {os_reason(exc)} "
            "(nothing was stored)"
        ) from None
    spool.seek(0)
    return cast(BinaryIO, spool)
