"""Facts the services publish after they commit, for the parts that react to them.

Subscribers are wired in ``bootstrap``: monitoring profiles a version when it is
registered and gives a new endpoint its default monitor. A subscriber's failure
is its own: it is logged and never undoes the fact.

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
