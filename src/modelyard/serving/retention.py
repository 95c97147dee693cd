"""Prediction-log retention: delete what an endpoint's policy no longer keeps.

Erasure deletes every prediction of one data subject, matched on the endpoint's
subject column. Serving processes apply every hosted endpoint's policy on a schedule
(``PRUNE_EVERY``); ``modelyard endpoint prune NAME`` applies it now. Each prune
that deletes anything is an audit event recording how many predictions went and
the cutoff, never the data.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from modelyard.clock import now_ms
from modelyard.errors import InvalidInput
from modelyard.serving.journal import subject_digest

if TYPE_CHECKING:
    from modelyard.bootstrap import Services

PRUNE_EVERY = 3600.0
DAY_MS = 86_400_000


def prune_endpoint(services: Services, name: str, *, actor: str, client: str = "") -> int:
    """Apply ``name``'s retention policy now; the number of predictions deleted."""
    endpoint = services.endpoints.get(name)
    if endpoint.retention_days is None:
        raise InvalidInput(
            f"endpoint '{name}' keeps its predictions forever: set a retention first "
            f"(modelyard endpoint retention {name} --days N)"
        )
    cutoff = now_ms() - endpoint.retention_days * DAY_MS
    deleted = services.predictions.prune(name, cutoff)
    if deleted:
        services.audit.record(
            actor=actor,
            action="prune predictions",
            resource=f"endpoints/{name}/predictions",
            outcome="ok",
            status=200,
            client=client,
            summary={
                "deleted": deleted,
                "before": cutoff,
                "retention_days": endpoint.retention_days,
            },
        )
    return deleted


def erase_subject(
    services: Services, name: str, subject: Any, *, actor: str, client: str = ""
) -> int:
    """Delete every prediction (and label) of ``subject`` on endpoint ``name``.

    Matched on the endpoint's subject column; audited with the column, a digest of
    the subject and the count, never the subject or the data.
    """
    endpoint = services.endpoints.get(name)
    if endpoint.subject_column is None:
        raise InvalidInput(
            f"endpoint '{name}' has no subject column: set the input field that identifies a "
            f"subject first (modelyard endpoint subject {name} COLUMN)"
        )
    if subject is None or subject == "":
        raise InvalidInput("name the subject to erase")
    deleted = services.predictions.erase(name, endpoint.subject_column, subject)
    services.audit.record(
        actor=actor,
        action="erase subject",
        resource=f"endpoints/{name}/predictions",
        outcome="ok",
        status=200,
        client=client,
        summary={
            "column": endpoint.subject_column,
            "subject_sha256": subject_digest(subject),
            "deleted": deleted,
        },
    )
    return deleted
