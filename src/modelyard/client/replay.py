"""``yard.endpoints.replay``: score a logged prediction's input again with the version
that answered it, and check the answer is the same.

The work happens in the caller's process, embedded or remote: the prediction comes
from the log (an audited read over the API), the version's package is fetched and
verified against the digest the catalog recorded at registration (a changed file is
refused before anything is unpickled), and the row goes through the serving path's
own ``Model.prepare`` and ``Model.predict``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from modelyard.errors import InvalidInput, ModelFailed, NotFound
from modelyard.packaging import load_package
from modelyard.serving.journal import canonical
from modelyard.serving.models import Model

if TYPE_CHECKING:
    from modelyard.client.yard import Yard

DEFAULT_REPLAY_TOLERANCE = (
    1e-9  # relative: a row scored in another batch may differ in the last bits
)


@dataclass(frozen=True)
class Replay:
    """A logged prediction and the same input scored again by the version that answered;
    ``differences`` names each value that differs beyond ``tolerance`` (relative)."""

    endpoint: str
    prediction_id: str
    model: str
    version: int
    package_digest: str
    input: dict[str, Any]
    logged_output: Any
    replayed_output: Any
    logged_scores: Any
    replayed_scores: Any
    tolerance: float
    differences: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences


def _as_logged(output: Any, scores: Any) -> tuple[Any, Any]:
    """An answer as the log keeps it (``serving.models.journal_lines``), read back."""
    plain_scores = None
    if scores is not None:
        plain_scores = orjson.loads(orjson.dumps(scores, option=orjson.OPT_SERIALIZE_NUMPY))
    return json.loads(canonical(output)), plain_scores


def differences(logged: Any, replayed: Any, tolerance: float, where: str) -> list[str]:
    """Where ``replayed`` differs from ``logged``: numbers beyond ``tolerance`` (relative),
    anything else when not equal."""
    if isinstance(logged, list) and isinstance(replayed, list):
        if len(logged) != len(replayed):
            return [f"{where}: {len(replayed)} values, the log has {len(logged)}"]
        found = []
        for index, (a, b) in enumerate(zip(logged, replayed, strict=True)):
            found += differences(a, b, tolerance, f"{where}[{index}]")
        return found
    numbers = (int, float)
    if (
        isinstance(logged, numbers)
        and isinstance(replayed, numbers)
        and not isinstance(logged, bool)
        and not isinstance(replayed, bool)
    ):
        a, b = float(logged), float(replayed)
        if a == b or (math.isnan(a) and math.isnan(b)):
            return []
        if abs(b - a) <= tolerance * max(abs(a), abs(b)):
            return []
        return [f"{where}: {replayed!r}, the log has {logged!r}"]
    same = logged == replayed and isinstance(logged, bool) == isinstance(replayed, bool)
    return [] if same else [f"{where}: {replayed!r}, the log has {logged!r}"]


def _logged_row(yard: Yard, endpoint: str, prediction_id: str) -> dict[str, Any]:
    frame = yard.endpoints.predictions(endpoint, ids=[prediction_id], limit=None)
    if frame.empty:
        raise NotFound(f"endpoint '{endpoint}' logged no prediction '{prediction_id}'")
    rows: list[dict[str, Any]] = frame.to_dict(orient="records")  # type: ignore[assignment]
    primary = [r for r in rows if r["role"] != "shadow"]
    row = (primary or rows)[0]
    if isinstance(row.get("error"), str) and row["error"]:
        raise InvalidInput(
            f"prediction '{prediction_id}' of endpoint '{endpoint}' failed when it was made "
            f"({row['error']}): there is no answer to replay"
        )
    return row


def _json(text: Any) -> Any:
    return (
        None
        if text is None or (isinstance(text, float) and math.isnan(text))
        else (json.loads(text))
    )


def replay(yard: Yard, endpoint: str, prediction_id: str, tolerance: float) -> Replay:
    """See ``EndpointsAPI.replay``."""
    if not tolerance >= 0:
        raise InvalidInput(f"tolerance must be 0 or more (relative), got {tolerance}")
    row = _logged_row(yard, endpoint, prediction_id)
    version = yard.backend.get_version(f"{row['model']}/{int(row['version'])}")
    directory = yard.backend.fetch_package(version)
    loaded = load_package(directory, version.package_digest)  # every file against the digest
    model = Model(version.model, version.version, version.package_digest, loaded)
    features = _json(row["input"])
    answer = model.predict([model.prepare([features])])[0]
    if isinstance(answer, ModelFailed):
        raise answer
    outputs, scores = answer
    replayed_output, replayed_scores = _as_logged(outputs[0], None if scores is None else scores[0])
    logged_output, logged_scores = _json(row["output"]), _json(row["scores"])
    found = differences(logged_output, replayed_output, tolerance, "output")
    found += differences(logged_scores, replayed_scores, tolerance, "scores")
    return Replay(
        endpoint=endpoint,
        prediction_id=prediction_id,
        model=version.model,
        version=version.version,
        package_digest=version.package_digest,
        input=features,
        logged_output=logged_output,
        replayed_output=replayed_output,
        logged_scores=logged_scores,
        replayed_scores=replayed_scores,
        tolerance=tolerance,
        differences=found,
    )
