"""Calling a service as a named user, the way an entry point sets the actor."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from modelyard.domain.actors import Actor, acting_as

T = TypeVar("T")


def as_user(user: str, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``call(*args, **kwargs)`` with ``user`` as the current actor."""
    with acting_as(Actor(user)):
        return call(*args, **kwargs)
