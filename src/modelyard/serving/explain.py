"""The explanation route of the data plane: ``POST /endpoints/{name}/explain``::

    POST /endpoints/churn/explain
    {"records": [{"age": 41, "income": 52000.0}], "top": 3}

    {"endpoint": "churn", "revision": 3, "model": "churn", "version": 4,
     "method": "tree", "features": ["age", "income"],
     "rows": [{"values": {"age": 0.12, "income": -0.03}, "base_value": 0.31,
               "output": 0.40, "explained": "probability of class '1'",
               "top": [{"feature": "age", "value": 41, "contribution": 0.12}, ...],
               "text": "probability of class '1' is 0.4 (baseline 0.31): age = 41 raised ..."}]}

Rows come as for ``predict`` (``records`` or ``columns``). They are explained with
the version that would answer them (by weight, or the sticky key as for ``predict``),
or the route or shadow the body's ``version`` names (``N`` or ``MODEL/N``); ``top``
(default 5) is how many contributions each row lists. Nothing is logged: an
explanation is not a prediction. Explanations are computed one at a time on their own
thread, so they never hold more than one core the predictions need; ``shap`` is
imported by the first one.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from modelyard.errors import InvalidInput
from modelyard.serving.explanations import choose_target, top_of
from modelyard.serving.predict import rows_of, sticky_key
from modelyard.serving.runtime import EndpointState, Lane
from modelyard.serving.wire import json_body, respond, runtime_of


async def explain(request: Request) -> Response:
    """Explain rows with the version that answers them (or the one the body names)."""
    runtime = runtime_of(request)
    state = runtime.endpoint(request.path_params["name"])
    body = await json_body(request)
    rows = rows_of(body)
    lane = _lane(state, body, sticky_key(request, body))
    explanation = await runtime.explain(lane.model, rows, top_of(body.get("top")))
    answer: dict[str, Any] = {"endpoint": state.name, "revision": state.revision}
    answer.update(explanation.to_dict())
    answer["endpoint"] = state.name
    return respond(answer, headers={"x-modelyard-version": lane.model.ref})


def _lane(state: EndpointState, body: dict[str, Any], sticky: str | None) -> Lane:
    version = body.get("version")
    if version is not None and not isinstance(version, int | str):
        raise InvalidInput(f"'version' must be N or MODEL/N, got {version!r}")
    if version is None:
        return state.pick(sticky)
    target = choose_target(state.name, state.spec, version, None)
    return next(lane for lane in state.routes + state.shadows if lane.target.ref == target.ref)
