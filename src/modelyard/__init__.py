"""modelyard: one governed lifecycle for production machine learning.

>>> import modelyard as my
>>> yard = my.connect()                      # embedded: ./.modelyard
>>> with yard.start_run(experiment="churn", params={"C": 0.5}) as run:
...     run.log_metric("loss", 0.3)
...     version = run.log_model(model, name="churn", input_example=frame.head())
>>> yard.models.set_alias("churn", "champion", version.version)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from modelyard.client.active_run import ActiveRun
    from modelyard.client.yard import Yard, connect
    from modelyard.domain.datasets import Dataset
    from modelyard.domain.models import ModelVersion, RegisteredModel, Stage
    from modelyard.domain.runs import Experiment, MetricPoint, Run, RunPage, RunStatus
    from modelyard.errors import (
        Conflict,
        IntegrityError,
        InvalidInput,
        ModelyardError,
        NotFound,
        NotMigrated,
        PermissionDenied,
        SignatureError,
    )

_EXPORTS = {
    "ActiveRun": "modelyard.client.active_run",
    "Yard": "modelyard.client.yard",
    "connect": "modelyard.client.yard",
    "Dataset": "modelyard.domain.datasets",
    "ModelVersion": "modelyard.domain.models",
    "RegisteredModel": "modelyard.domain.models",
    "Stage": "modelyard.domain.models",
    "Experiment": "modelyard.domain.runs",
    "MetricPoint": "modelyard.domain.runs",
    "Run": "modelyard.domain.runs",
    "RunPage": "modelyard.domain.runs",
    "RunStatus": "modelyard.domain.runs",
    **{
        name: "modelyard.errors"
        for name in (
            "Conflict",
            "IntegrityError",
            "InvalidInput",
            "ModelyardError",
            "NotFound",
            "NotMigrated",
            "PermissionDenied",
            "SignatureError",
        )
    },
}


def __getattr__(name: str) -> Any:
    """Import public names on first use, so ``import modelyard`` stays cheap."""
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'modelyard' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    """The public names too, though imported lazily: tab completion offers ``connect``."""
    return sorted(set(globals()) | set(__all__))


__version__ = "0.1.0"

__all__ = [
    "ActiveRun",
    "Conflict",
    "Dataset",
    "Experiment",
    "IntegrityError",
    "InvalidInput",
    "MetricPoint",
    "ModelVersion",
    "ModelyardError",
    "NotFound",
    "NotMigrated",
    "PermissionDenied",
    "RegisteredModel",
    "Run",
    "RunPage",
    "RunStatus",
    "SignatureError",
    "Stage",
    "Yard",
    "__version__",
    "connect",
]
