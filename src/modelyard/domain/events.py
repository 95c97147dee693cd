"""Facts the services publish, for the parts that react to them.

Two moments:

- ``Changed``: every write a service makes, published *inside* its write transaction
  (``store.database.publish``). The audit log subscribes and writes its event in the
  same transaction, with the actor of ``domain.actors.current_actor()``: a change is
  committed with its audit event or not at all, described once, whoever called.
- ``VersionRegistered``, ``EndpointCreated``: published *after* commit for slower work
  (monitoring profiles a new version and gives a new endpoint its default monitor).
  Such a subscriber's failure is its own: it is logged and never undoes the fact.

>>> catalog.subscribe(lambda event: print(event))
>>> catalog.register_version("churn", source=...)
VersionRegistered(model='churn', version=4, actor='ana')
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("modelyard.events")


@dataclass(frozen=True)
class Changed:
    """A write a service made: ``action`` on ``resource``, with small summaries of the
    state before and after (ids, names, versions, stages, counts; never a secret value,
    a key or the data itself) and the workspace that owns the resource.

    >>> Changed("set alias", "models/churn@champion", "default", {"version": 3}, {"version": 4})
    """

    action: str
    resource: str
    workspace: str | None = None
    before: dict[str, Any] | None = None
    after: dict[str, Any] | None = None


@dataclass(frozen=True)
class VersionRegistered:
    model: str
    version: int
    actor: str


@dataclass(frozen=True)
class EndpointCreated:
    endpoint: str
    actor: str


Event = VersionRegistered | EndpointCreated
Subscriber = Callable[[Any], None]


class Publisher:
    """Mixin: ``subscribe`` a callable, ``publish`` an event to every subscriber."""

    _subscribers: list[Subscriber]

    def subscribe(self, subscriber: Subscriber) -> None:
        if not hasattr(self, "_subscribers"):
            self._subscribers = []
        self._subscribers.append(subscriber)

    def publish(self, event: Event) -> None:
        for subscriber in getattr(self, "_subscribers", []):
            try:
                subscriber(event)
            except Exception:
                log.exception("a subscriber to %s failed", type(event).__name__)
