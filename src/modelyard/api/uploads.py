"""Request bodies streamed to a spooled temporary file, then handed to a service."""

from __future__ import annotations

import tempfile
from typing import Any

from fastapi import Request

SPOOL_IN_MEMORY = 8 << 20


async def spooled_body(request: Request) -> Any:
    """The request body as a rewound file object (in memory up to 8 MiB, then on disk)."""
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 - caller closes
    async for chunk in request.stream():
        spool.write(chunk)
    spool.seek(0)
    return spool
