"""Who is acting: set once where a request or a command enters, read by the services.

The API sets the actor from the authenticated key for the rest of the request; the
embedded backend and the command line act as the OS user, which is the default.
Services never take the actor as an argument a caller could fill in: they read
``current_actor()`` when they record who did something.

>>> with acting_as(Actor("ana", key_id="k1", client="10.0.0.7")):
...     current_actor().user
'ana'
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, field

EMBEDDED = "embedded"


@dataclass(frozen=True)
class Actor:
    """A user acting through a key (``key_id``) from ``client``, or embedded (no key).

    ``recorded`` collects the ids of the audit events written while it acts, so the
    entry point can tell a write that some service recorded from one none did.
    """

    user: str
    key_id: str | None = None
    client: str = EMBEDDED
    recorded: list[int] = field(default_factory=list, compare=False, repr=False)


_ACTOR: ContextVar[Actor | None] = ContextVar("modelyard_actor", default=None)


def os_user() -> str:
    """The user this process runs as: the actor of embedded mode."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid()) if hasattr(os, "getuid") else "unknown"


def current_actor() -> Actor:
    """The actor of this request or command; the OS user when none was set."""
    return _ACTOR.get() or Actor(os_user())


def act_as(actor: Actor) -> Token[Actor | None]:
    """Make ``actor`` current for the rest of this context (an async task, a thread)."""
    return _ACTOR.set(actor)


@contextmanager
def acting_as(actor: Actor) -> Iterator[Actor]:
    """Make ``actor`` current inside the block."""
    token = _ACTOR.set(actor)
    try:
        yield actor
    finally:
        _ACTOR.reset(token)
