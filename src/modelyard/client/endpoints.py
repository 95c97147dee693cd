"""``yard.endpoints``: deploy versions behind endpoints, read their predictions, post labels."""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

from modelyard.client.replay import DEFAULT_REPLAY_TOLERANCE, Replay, replay
from modelyard.domain.endpoints import Endpoint, Revision, target_to_request
from modelyard.domain.explanations import Explanation
from modelyard.errors import InvalidInput
from modelyard.serving.evidence import COMPARE_COLUMNS as STAT_COLUMNS
from modelyard.serving.predictlog import LabelResult

if TYPE_CHECKING:
    from modelyard.client.backend import Backend
    from modelyard.client.yard import Yard

Targets = Sequence[str | dict[str, Any]]
When = int | datetime | None
ACCURACY_COLUMNS = ["model", "version", "role", "predictions", "labelled", "accuracy"]
COMPARE_COLUMNS = [*STAT_COLUMNS, "outputs"]


def epoch_ms(value: When) -> int | None:
    """Epoch milliseconds from an int (already ms) or a datetime (naive means local time)."""
    if value is None or isinstance(value, int):
        return value
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    raise InvalidInput(f"expected epoch milliseconds or a datetime, got {value!r}")


class EndpointsAPI:
    """Endpoints, their revisions, and the evidence they keep.

    Tabular evidence (``predictions``, ``accuracy``, ``compare``) comes back as a
    pandas DataFrame, empty with the same columns when there is none.

    >>> yard.endpoints.create("churn", routes=["churn@champion=90", "churn/4=10"],
    ...                       shadows=["churn/5"])
    >>> yard.endpoints.update("churn", routes=["churn/4=100"], comment="promote canary")
    >>> yard.endpoints.rollback("churn")
    >>> yard.endpoints.label("churn", {"a1b2-00000001": 1})
    >>> yard.endpoints.accuracy("churn", since=datetime(2026, 11, 1))
    """

    def __init__(self, yard: Yard) -> None:
        self._yard = yard

    @property
    def _backend(self) -> Backend:
        return self._yard.backend

    def create(
        self,
        name: str,
        *,
        routes: Targets,
        shadows: Targets = (),
        batching: Mapping[str, Any] | None = None,
        description: str = "",
        comment: str = "",
    ) -> Endpoint:
        """Routes are ``"MODEL/VERSION=WEIGHT"``, ``"MODEL@ALIAS=WEIGHT[,follow]"`` or dicts."""
        return self._backend.create_endpoint(
            name,
            routes=[target_to_request(r, shadow=False) for r in routes],
            shadows=[target_to_request(s, shadow=True) for s in shadows],
            batching=dict(batching) if batching is not None else None,
            description=description,
            comment=comment,
        )

    def update(
        self,
        name: str,
        *,
        routes: Targets | None = None,
        shadows: Targets | None = None,
        batching: Mapping[str, Any] | None = None,
        description: str | None = None,
        comment: str = "",
    ) -> Endpoint:
        """A new revision; what is left out is kept from the current one."""
        return self._backend.update_endpoint(
            name,
            routes=None if routes is None else [target_to_request(r, shadow=False) for r in routes],
            shadows=None
            if shadows is None
            else [target_to_request(s, shadow=True) for s in shadows],
            batching=dict(batching) if batching is not None else None,
            description=description,
            comment=comment,
        )

    def rollback(self, name: str, to: int | None = None, *, comment: str = "") -> Endpoint:
        """A new revision with the routes of revision ``to`` (default: the previous one)."""
        return self._backend.rollback_endpoint(name, to=to, comment=comment)

    def set_retention(self, name: str, days: int | None) -> Endpoint:
        """Keep ``name``'s predictions and labels ``days`` days (None: forever); serving
        processes delete older ones hourly."""
        return self._backend.set_retention(name, days)

    def prune(self, name: str) -> int:
        """Apply the retention policy now; the number of predictions deleted."""
        return self._backend.prune_predictions(name)

    def set_subject_column(self, name: str, column: str | None) -> Endpoint:
        """The input field that identifies a data subject (e.g. ``customer_id``)."""
        return self._backend.set_subject_column(name, column)

    def erase(self, name: str, subject: Any) -> int:
        """Delete every prediction and label of ``subject``; the number of predictions."""
        return self._backend.erase_subject(name, subject)

    def get(self, name: str) -> Endpoint:
        return self._backend.get_endpoint(name)

    def list(self) -> builtins.list[Endpoint]:
        return self._backend.list_endpoints()

    def revisions(self, name: str) -> builtins.list[Revision]:
        return self._backend.endpoint_revisions(name)

    def at(self, name: str, when: When) -> Revision | None:
        """The revision that served ``name`` at ``when`` (None before it existed)."""
        moment = epoch_ms(when)
        earlier = [r for r in self.revisions(name) if moment is None or r.created_at <= moment]
        return earlier[-1] if earlier else None

    def predictions(
        self,
        name: str,
        *,
        version: int | None = None,
        model: str | None = None,
        role: str | None = None,
        since: When = None,
        until: When = None,
        ids: Sequence[str] | None = None,
        limit: int | None = 10_000,
        newest_first: bool = False,
    ) -> pd.DataFrame:
        """Logged predictions, oldest first (``newest_first``: the latest ``limit``
        rows, newest first), each with its newest label (missing: NA).

        ``output``, ``scores``, ``input`` and ``label`` are JSON text; ``limit=None``
        returns every matching row.
        """
        table = self._backend.predictions(
            name,
            version=version,
            model=model,
            role=role,
            since=epoch_ms(since),
            until=epoch_ms(until),
            ids=list(ids) if ids is not None else None,
            limit=limit,
            **({"newest_first": True} if newest_first else {}),
        )
        return table.to_pandas()

    def label(
        self, name: str, labels: Mapping[str, Any] | Iterable[tuple[str, Any]] | pd.DataFrame
    ) -> LabelResult:
        """Post ground truth by prediction id: a mapping, pairs, or a frame with
        ``id`` and ``label`` columns. Unknown ids come back in ``result.unknown``."""
        if isinstance(labels, pd.DataFrame):
            missing = {"id", "label"} - set(labels.columns)
            if missing:
                shown = ", ".join(sorted(missing))
                raise InvalidInput(f"labels frame needs the columns id and label; missing: {shown}")
            pairs = list(zip(labels["id"].astype(str), labels["label"].tolist(), strict=True))
        elif isinstance(labels, Mapping):
            pairs = list(labels.items())
        else:
            pairs = [(str(i), value) for i, value in labels]
        return self._backend.record_labels(name, pairs)

    def accuracy(self, name: str, *, since: When = None, until: When = None) -> pd.DataFrame:
        """Per version and role: predictions, labelled predictions and accuracy."""
        rows = self._backend.endpoint_accuracy(name, epoch_ms(since), epoch_ms(until))
        return pd.DataFrame(rows, columns=ACCURACY_COLUMNS)

    def replay(
        self, name: str, prediction_id: str, *, tolerance: float = DEFAULT_REPLAY_TOLERANCE
    ) -> Replay:
        """Score the logged input of prediction ``prediction_id`` again with the exact
        version that answered it (its package verified against the recorded digest), and
        compare with the logged answer and scores: numbers within ``tolerance``
        (relative), anything else exactly.

        >>> found = yard.endpoints.replay("churn", "3f9c0a1b2c3d-0000002a")
        >>> found.ok, found.logged_output, found.replayed_output
        (True, 1, 1)
        """
        return replay(self._yard, name, prediction_id, tolerance)

    def explain(
        self,
        name: str,
        rows: pd.DataFrame | Sequence[Mapping[str, Any]] | None = None,
        *,
        id: str | None = None,
        version: int | str | None = None,
        sticky_key: str | None = None,
        top: int | None = None,
    ) -> Explanation:
        """Why endpoint ``name`` answers ``rows`` as it does: per row, a SHAP value per
        feature, the base value, the explained output (base value plus the values: a
        probability, log-odds or the prediction), the ``top`` (default 5) contributions
        and a sentence in plain words.

        Rows are explained with the version the endpoint would answer them with (by
        weight, or ``sticky_key``), or ``version`` (``N`` or ``MODEL/N``, a route or a
        shadow). With ``id`` instead, the logged prediction is explained with the
        exact version that answered it; that explanation is stored, so asking again
        gives the same answer.

        >>> yard.endpoints.explain("churn", frame.head(2)).rows[0].text
        >>> yard.endpoints.explain("churn", id="3f9c0a1b2c3d-0000002a").ref
        """
        if id is not None:
            if rows is not None or version is not None or sticky_key is not None:
                raise InvalidInput("explain either rows or a logged prediction's id, not both")
            return self._backend.explain_prediction(name, id, top=top)
        if rows is None:
            raise InvalidInput("give rows to explain, or the id of a logged prediction")
        records = (
            rows.to_dict(orient="records")
            if isinstance(rows, pd.DataFrame)
            else [dict(r) for r in rows]
        )
        return self._backend.explain(name, records, version=version, sticky_key=sticky_key, top=top)

    def compare(self, name: str, *, since: When = None, until: When = None) -> pd.DataFrame:
        """The primary and each shadow side by side on the same requests: one row per
        model, version and role with requests, errors, agreement with the primary's
        answer (NaN for the primary itself), latency p50/p99, labelled, accuracy and
        ``outputs`` (the most common answers and their shares)."""
        rows = self._backend.endpoint_compare(name, epoch_ms(since), epoch_ms(until))
        return pd.DataFrame(rows, columns=COMPARE_COLUMNS)
