"""Endpoints: named entry points that route traffic to model versions.

An endpoint's configuration is a ``Spec``: weighted ``routes`` (the versions that
answer), ``shadows`` (versions that get a copy of every request; their answers
are logged, never returned) and the micro-batching settings. Every change makes
a new numbered revision; the data plane serves the endpoint's current one.

Routes are written ``REF=WEIGHT[,follow]`` on the command line::

    churn/3=90                 version 3, 90% of traffic
    churn@challenger=10        the version the alias names *now*, pinned
    churn@champion=100,follow  the alias, re-resolved whenever it moves
    churn/3=100,onnx           version 3's ONNX twin (``package twin churn/3``), by onnxruntime
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from modelyard.domain.models import ModelRef, check_alias, check_model_name
from modelyard.errors import InvalidInput

_NAME = re.compile(r"^[a-z0-9][a-z0-9\-]{0,62}$")
MAX_BATCH_LIMIT = 4096
MAX_REPLICAS = 256
SCALING = (
    "min_replicas",
    "max_replicas",
    "target_ongoing_requests",
    "upscale_delay_s",
    "downscale_delay_s",
)
MAX_SCALING_DELAY = 3600.0
NATIVE, ONNX = "native", "onnx"
RUNTIMES = (NATIVE, ONNX)
# the version tags that pair a version with its ONNX twin (a version of the same model)
TWIN_TAG, TWIN_OF_TAG = "onnx_twin", "onnx_twin_of"


def check_runtime(runtime: Any, what: str) -> str:
    if runtime not in RUNTIMES:
        raise InvalidInput(f"invalid {what}: runtime must be one of {', '.join(RUNTIMES)}")
    return str(runtime)


def check_endpoint_name(name: str) -> str:
    if not _NAME.match(name or ""):
        raise InvalidInput(
            f"invalid endpoint name {name!r}: use lower-case letters, digits and '-', "
            "starting with a letter or digit, at most 63 characters"
        )
    return name


@dataclass(frozen=True)
class Target:
    """One model version an endpoint sends requests to.

    ``version`` is always the concrete number; ``alias`` records how it was
    chosen, and ``follow`` makes the data plane re-resolve the alias when it moves.
    A route with ``runtime`` onnx serves the ONNX twin (``version``) of version
    ``twin_of``: the twin is a version of the same model, so it loads, logs and is
    monitored as any version.
    """

    model: str
    version: int
    alias: str | None = None
    follow: bool = False
    weight: int = 0
    runtime: str = NATIVE
    twin_of: int | None = None

    @property
    def ref(self) -> str:
        return f"{self.model}/{self.version}"

    def describe(self) -> str:
        via = f" (via @{self.alias}{', following' if self.follow else ''})" if self.alias else ""
        twin = f" (onnx twin of {self.model}/{self.twin_of})" if self.twin_of is not None else ""
        return f"{self.ref}{twin}{via}"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        if self.runtime == NATIVE:  # a native route is stored as it always was
            del data["runtime"], data["twin_of"]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Target:
        twin_of = data.get("twin_of")
        return cls(
            model=str(data["model"]),
            version=int(data["version"]),
            alias=data.get("alias"),
            follow=bool(data.get("follow", False)),
            weight=int(data.get("weight", 0)),
            runtime=str(data.get("runtime", NATIVE)),
            twin_of=None if twin_of is None else int(twin_of),
        )


@dataclass(frozen=True)
class TargetRequest:
    """A route or shadow as the user asks for it, before aliases are resolved."""

    ref: ModelRef
    weight: int = 0
    follow: bool = False
    runtime: str = NATIVE

    def __post_init__(self) -> None:
        if self.runtime == ONNX and self.follow:
            raise InvalidInput(
                f"invalid route for {self.ref}: an onnx route serves the twin of the version "
                "the alias names now, and cannot follow it"
            )

    @classmethod
    def parse(cls, text: str, *, shadow: bool = False) -> TargetRequest:
        """``REF=WEIGHT[,follow|,onnx]`` for a route, ``REF[,follow]`` for a shadow."""
        body, _, flags = text.partition(",")
        follow, runtime = False, NATIVE
        if flags:
            if flags.strip() not in ("follow", ONNX) or (shadow and flags.strip() == ONNX):
                options = "',follow'" if shadow else "',follow' or ',onnx'"
                raise InvalidInput(f"invalid route {text!r}: the options are {options}")
            follow = flags.strip() == "follow"
            runtime = ONNX if flags.strip() == ONNX else NATIVE
        if shadow:
            if "=" in body:
                raise InvalidInput(f"invalid shadow {text!r}: a shadow has no weight")
            ref_text, weight = body, 0
        else:
            ref_text, sep, weight_text = body.rpartition("=")
            if not sep or not weight_text.strip().isdigit():
                raise InvalidInput(
                    f"invalid route {text!r}: expected MODEL/VERSION=WEIGHT or "
                    "MODEL@ALIAS=WEIGHT[,follow]"
                )
            weight = int(weight_text)
        ref = ModelRef.parse(ref_text.strip())
        if ref.alias is None and ref.version is None:
            raise InvalidInput(
                f"invalid route {text!r}: name a version (MODEL/3) or an alias (MODEL@champion)"
            )
        if follow and ref.alias is None:
            raise InvalidInput(f"invalid route {text!r}: only an alias route can follow")
        return cls(ref=ref, weight=weight, follow=follow, runtime=runtime)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, shadow: bool = False) -> TargetRequest:
        """From ``{"model", "version" | "alias", "weight", "follow"}`` (the API body)."""
        if not isinstance(data, dict) or "model" not in data:
            raise InvalidInput(f"invalid route {data!r}: expected an object with 'model'")
        model = check_model_name(str(data["model"]))
        alias, version = data.get("alias"), data.get("version")
        if (alias is None) == (version is None):
            raise InvalidInput(
                f"invalid route for model '{model}': give exactly one of 'version' or 'alias'"
            )
        if version is not None and (not isinstance(version, int) or version < 1):
            raise InvalidInput(f"invalid route for model '{model}': version must be a number >= 1")
        weight = data.get("weight", 0 if shadow else None)
        if not isinstance(weight, int) or isinstance(weight, bool):
            raise InvalidInput(f"invalid route for model '{model}': weight must be an integer")
        follow = bool(data.get("follow", False))
        if follow and alias is None:
            raise InvalidInput(f"invalid route for model '{model}': only an alias route can follow")
        ref = ModelRef(model, alias=check_alias(str(alias))) if alias else ModelRef(model, version)
        runtime = check_runtime(data.get("runtime", NATIVE), f"route for model '{model}'")
        if shadow and runtime != NATIVE:
            raise InvalidInput(f"invalid shadow for model '{model}': a shadow runs natively")
        return cls(ref=ref, weight=0 if shadow else weight, follow=follow, runtime=runtime)


@dataclass(frozen=True)
class Batching:
    """Adaptive micro-batching per version.

    The batcher never waits for an idle queue: a lone request runs at once, and
    requests that arrive while a batch is computing form the next batch (up to
    ``max_batch_size`` rows). ``max_wait_ms`` > 0 additionally holds a batch open
    that long for more rows when requests are already queueing.

    The scaling settings apply when the endpoint is served on Ray Serve
    (``modelyard serve --backend ray``): between ``min_replicas`` and ``max_replicas``
    replicas, scaled so each has about ``target_ongoing_requests`` requests in flight.
    A change of replica count must be wanted for ``upscale_delay_s`` (adding) or
    ``downscale_delay_s`` (removing) seconds in a row before it happens, so a short
    burst or lull moves nothing. A spec stored before they existed reads with their
    defaults (one replica, 3 s up, 60 s down).
    """

    max_batch_size: int = 64
    max_wait_ms: float = 0.0
    min_replicas: int = 1
    max_replicas: int = 1
    target_ongoing_requests: float = 2.0
    upscale_delay_s: float = 3.0
    downscale_delay_s: float = 60.0

    def __post_init__(self) -> None:
        if not 1 <= self.max_batch_size <= MAX_BATCH_LIMIT:
            raise InvalidInput(
                f"max_batch_size must be between 1 and {MAX_BATCH_LIMIT}, got {self.max_batch_size}"
            )
        if not 0 <= self.max_wait_ms <= 1000:
            raise InvalidInput(f"max_wait_ms must be between 0 and 1000, got {self.max_wait_ms}")
        if not 1 <= self.min_replicas <= MAX_REPLICAS:
            raise InvalidInput(
                f"min_replicas must be between 1 and {MAX_REPLICAS}, got {self.min_replicas}"
            )
        if not self.min_replicas <= self.max_replicas <= MAX_REPLICAS:
            raise InvalidInput(
                f"max_replicas must be between min_replicas ({self.min_replicas}) and "
                f"{MAX_REPLICAS}, got {self.max_replicas}"
            )
        if not 0 < self.target_ongoing_requests <= 1000:
            raise InvalidInput(
                "target_ongoing_requests must be above 0 and at most 1000, "
                f"got {self.target_ongoing_requests}"
            )
        for name in ("upscale_delay_s", "downscale_delay_s"):
            delay = getattr(self, name)
            if not 0 <= delay <= MAX_SCALING_DELAY:
                raise InvalidInput(
                    f"{name} must be between 0 and {MAX_SCALING_DELAY:g} seconds, got {delay}"
                )


@dataclass(frozen=True)
class Spec:
    """What an endpoint serves in one revision."""

    routes: list[Target]
    shadows: list[Target] = field(default_factory=list)
    batching: Batching = field(default_factory=Batching)

    def to_dict(self) -> dict[str, Any]:
        return {
            "routes": [r.to_dict() for r in self.routes],
            "shadows": [s.to_dict() for s in self.shadows],
            "batching": asdict(self.batching),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Spec:
        return cls(
            routes=[Target.from_dict(r) for r in data["routes"]],
            shadows=[Target.from_dict(s) for s in data.get("shadows", [])],
            batching=Batching(**data.get("batching", {})),
        )

    def targets(self) -> list[tuple[str, Target]]:
        return [("primary", r) for r in self.routes] + [("shadow", s) for s in self.shadows]

    def with_versions(self, resolved: dict[tuple[str, str], int]) -> Spec:
        """This spec with followed aliases re-pointed at ``resolved[(model, alias)]``."""

        def moved(target: Target) -> Target:
            if target.follow and target.alias is not None:
                version = resolved.get((target.model, target.alias), target.version)
                return replace(target, version=version)
            return target

        return replace(
            self, routes=[moved(r) for r in self.routes], shadows=[moved(s) for s in self.shadows]
        )


def check_weights(routes: list[TargetRequest] | list[Target]) -> None:
    if not routes:
        raise InvalidInput("an endpoint needs at least one route")
    for route in routes:
        if not 0 <= route.weight <= 100:
            raise InvalidInput(f"route weight must be between 0 and 100, got {route.weight}")
    total = sum(r.weight for r in routes)
    if total != 100:
        shown = " + ".join(str(r.weight) for r in routes)
        raise InvalidInput(f"route weights must add up to 100, got {shown} = {total}")


def spec_summary(spec: Spec | None) -> dict[str, Any]:
    """What a spec serves, in short: ``{"routes": {"churn/3": 90, ...}, "shadows", "batching"}``."""
    if spec is None:
        return {"routes": {}, "shadows": [], "batching": None}
    return {
        "routes": {r.describe(): r.weight for r in spec.routes},
        "shadows": sorted(s.describe() for s in spec.shadows),
        "batching": asdict(spec.batching),
    }


def diff_specs(before: Spec | None, after: Spec) -> dict[str, Any]:
    """A short summary of what changed, stored with each revision and audited."""
    old, new = spec_summary(before), spec_summary(after)
    changes: dict[str, Any] = {}
    for key in ("routes", "shadows", "batching"):
        if old[key] != new[key]:
            changes[key] = {"before": old[key], "after": new[key]}
    return changes


@dataclass(frozen=True)
class Revision:
    endpoint: str
    revision: int
    spec: Spec
    changes: dict[str, Any]
    comment: str
    created_by: str
    created_at: int


@dataclass(frozen=True)
class Endpoint:
    name: str
    description: str
    revision: int
    spec: Spec
    created_by: str
    created_at: int
    updated_at: int
    retention_days: int | None = None  # None: the prediction log is kept forever
    subject_column: str | None = None  # the input field erasure requests match
    workspace: str = "default"


def endpoint_from_dict(data: dict[str, Any]) -> Endpoint:
    return Endpoint(
        name=data["name"],
        description=data["description"],
        revision=int(data["revision"]),
        spec=Spec.from_dict(data["spec"]),
        created_by=data["created_by"],
        created_at=int(data["created_at"]),
        updated_at=int(data["updated_at"]),
        retention_days=data.get("retention_days"),
        subject_column=data.get("subject_column"),
        workspace=data.get("workspace", "default"),
    )


def revision_from_dict(data: dict[str, Any]) -> Revision:
    return Revision(
        endpoint=data["endpoint"],
        revision=int(data["revision"]),
        spec=Spec.from_dict(data["spec"]),
        changes=data["changes"],
        comment=data["comment"],
        created_by=data["created_by"],
        created_at=int(data["created_at"]),
    )


def target_to_request(target: str | dict[str, Any], *, shadow: bool) -> dict[str, Any]:
    """``"churn/3=90"`` or a dict, as the dict the API takes (checked either way)."""
    request = (
        TargetRequest.parse(target, shadow=shadow)
        if isinstance(target, str)
        else TargetRequest.from_dict(target, shadow=shadow)
    )
    body: dict[str, Any] = {"model": request.ref.name, "follow": request.follow}
    if request.ref.alias is not None:
        body["alias"] = request.ref.alias
    else:
        body["version"] = request.ref.version
    if not shadow:
        body["weight"] = request.weight
    if request.runtime != NATIVE:
        body["runtime"] = request.runtime
    return body


def requests_from(items: list[Any] | None, *, shadow: bool) -> list[TargetRequest] | None:
    """Routes or shadows from API dicts or ``REF=WEIGHT`` strings (None stays None)."""
    if items is None:
        return None
    if not isinstance(items, list):
        raise InvalidInput(f"{'shadows' if shadow else 'routes'} must be a list")
    return [
        TargetRequest.parse(item, shadow=shadow)
        if isinstance(item, str)
        else TargetRequest.from_dict(item, shadow=shadow)
        for item in items
    ]


def batching_from(data: dict[str, Any] | None, base: Batching | None = None) -> Batching | None:
    """``base`` (default: the defaults) with the settings ``data`` gives changed."""
    if data is None:
        return None
    if not isinstance(data, dict):
        raise InvalidInput("batching must be an object of settings")
    unknown = set(data) - {"max_batch_size", "max_wait_ms", *SCALING}
    if unknown:
        raise InvalidInput(f"unknown batching setting(s): {', '.join(sorted(unknown))}")
    base = base or Batching()
    try:
        return Batching(
            max_batch_size=int(data.get("max_batch_size", base.max_batch_size)),
            max_wait_ms=float(data.get("max_wait_ms", base.max_wait_ms)),
            min_replicas=int(data.get("min_replicas", base.min_replicas)),
            max_replicas=int(data.get("max_replicas", base.max_replicas)),
            target_ongoing_requests=float(
                data.get("target_ongoing_requests", base.target_ongoing_requests)
            ),
            upscale_delay_s=float(data.get("upscale_delay_s", base.upscale_delay_s)),
            downscale_delay_s=float(data.get("downscale_delay_s", base.downscale_delay_s)),
        )
    except (TypeError, ValueError):
        raise InvalidInput("batching settings must be numbers") from None


_SUBJECT = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_ .\-]{0,127}$")


def check_subject_column(column: str) -> str:
    if not isinstance(column, str) or not _SUBJECT.match(column):
        raise InvalidInput(
            f"invalid subject column {column!r}: an input field name of letters, digits, "
            "spaces, '_', '.' or '-' (at most 128)"
        )
    return column


def check_compatible(spec: Spec, signatures: dict[str, dict[str, Any]]) -> None:
    """Every route and shadow must accept what the first route accepts.

    The endpoint's request contract is the first route's input columns; another
    version may need fewer columns, but every column it needs must be in the
    contract with the same type.
    """
    first = spec.routes[0]
    contract = {c["name"]: c["type"] for c in signatures[first.ref]["inputs"]}
    for role, target in spec.targets()[1:]:
        if target.ref == first.ref:
            continue
        for column in signatures[target.ref]["inputs"]:
            name, kind = column["name"], column["type"]
            if name not in contract:
                raise InvalidInput(
                    f"{role} {target.ref} needs column '{name}', which requests for "
                    f"{first.ref} do not carry: signatures are not compatible"
                )
            if contract[name] != kind:
                raise InvalidInput(
                    f"{role} {target.ref} reads column '{name}' as {kind}, but {first.ref} "
                    f"reads it as {contract[name]}: signatures are not compatible"
                )
