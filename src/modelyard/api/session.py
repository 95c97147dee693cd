"""The browser's session: the API key in an HttpOnly cookie, and its CSRF token.

The web UI signs a person in with an API key and keeps it in the ``modelyard_session``
cookie (HttpOnly, so page scripts never read it; SameSite=Strict, so another site's
page never sends it). The API accepts that cookie where a client would send a bearer
key; a write authenticated by the cookie must also carry the key's CSRF token in the
``X-CSRF-Token`` header (the UI's forms carry it as a hidden field), which only a page
served to the key's holder knows.

>>> csrf_token("my_key") == csrf_token("my_key")
True
"""

from __future__ import annotations

import hashlib
import hmac

SESSION_COOKIE = "modelyard_session"
WORKSPACE_COOKIE = "modelyard_workspace"
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"


def csrf_token(key: str) -> str:
    """The CSRF token of a session: derived from its key, so it needs no server state and
    survives a restart; a page from another site cannot compute it without the key."""
    return hmac.new(key.encode(), b"modelyard csrf", hashlib.sha256).hexdigest()


def csrf_matches(key: str, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(csrf_token(key), token or "")
