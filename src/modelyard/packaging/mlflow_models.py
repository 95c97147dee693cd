"""MLflow model folders (an ``MLmodel`` file and its flavor's files) as modelyard packages.

    >>> manifest = package_mlflow_model("mlruns/models/m-1/artifacts", "out/model")
    >>> manifest.flavor, manifest.signature["inputs"][0]
    ('sklearn', {'name': 'age', 'type': 'integer', 'nullable': False})

The model is loaded with MLflow's own loader for its flavor (scikit-learn, XGBoost,
LightGBM, or a python function), so MLflow must be installed; nothing here imports it
until a folder is converted. MLflow's signature becomes ours (``long`` and ``integer``
are integers, ``float`` and ``double`` floats, an optional column is nullable); its
input example is kept as ours.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from modelyard.errors import InvalidInput, NotFound
from modelyard.packaging.package import Manifest, write_package
from modelyard.packaging.signature import ColumnSpec, Signature

MLMODEL = "MLmodel"
# MLflow flavors we convert, most specific first: (flavor, loader module)
NATIVE_FLAVORS = (
    ("sklearn", "mlflow.sklearn"),
    ("xgboost", "mlflow.xgboost"),
    ("lightgbm", "mlflow.lightgbm"),
)
PYFUNC = "python_function"
SUPPORTED = (*(name for name, _ in NATIVE_FLAVORS), PYFUNC)
_TYPES = {
    "integer": "integer",
    "long": "integer",
    "float": "float",
    "double": "float",
    "boolean": "boolean",
    "string": "string",
    "datetime": "datetime",
}


class MlflowPythonModel:
    """An MLflow python-function model (a ``PythonModel``) with modelyard's ``predict(frame)``.

    MLflow calls ``predict(context, model_input)`` (or, for newer models,
    ``predict(model_input)``); the context's artifacts are not carried over.
    """

    def __init__(self, python_model: Any) -> None:
        self.python_model = python_model

    def predict(self, frame: Any) -> Any:
        predict = self.python_model.predict
        names = list(inspect.signature(predict).parameters)
        if names and names[0] == "context":
            return predict(None, frame)
        return predict(frame)


def read_mlmodel(directory: str | Path) -> Any:
    """MLflow's ``Model`` for the folder; ``NotFound`` if it has no ``MLmodel`` file."""
    folder = Path(directory)
    if not (folder / MLMODEL).is_file():
        raise NotFound(f"'{folder}' is not an MLflow model folder: it has no {MLMODEL} file")
    from mlflow.models import Model

    return Model.load(str(folder / MLMODEL))


def convert_signature(mlflow_signature: Any) -> Signature | None:
    """MLflow's ``ModelSignature`` as ours; a column type we cannot enforce is refused."""
    if mlflow_signature is None or mlflow_signature.inputs is None:
        return None
    inputs = _columns(mlflow_signature.inputs, "input", unnamed=None)
    outputs = None
    if mlflow_signature.outputs is not None:
        outputs = _columns(mlflow_signature.outputs, "output", unnamed="prediction")
    return Signature(inputs=inputs, outputs=outputs)


def _columns(schema: Any, side: str, unnamed: str | None) -> list[ColumnSpec]:
    if schema.is_tensor_spec():
        raise InvalidInput(
            f"MLflow signature {side}s are tensors; modelyard enforces named columns only"
        )
    columns = []
    for index, spec in enumerate(schema.inputs):
        name = spec.name
        if name is None:
            if unnamed is None:
                raise InvalidInput(f"MLflow signature {side} {index} has no column name")
            name = unnamed if len(schema.inputs) == 1 else f"{unnamed}_{index}"
        kind = getattr(spec.type, "name", str(spec.type))
        if kind not in _TYPES:
            raise InvalidInput(
                f"MLflow signature {side} '{name}' has type {kind!r}; supported: "
                f"{', '.join(sorted(_TYPES))}"
            )
        columns.append(ColumnSpec(name, _TYPES[kind], nullable=not spec.required))
    return columns


def load_mlflow_model(directory: str | Path) -> tuple[Any, str]:
    """The model object in an MLflow model folder and the MLflow flavor it was read as."""
    model = read_mlmodel(directory)
    flavors = dict(model.flavors)
    for flavor, module in NATIVE_FLAVORS:
        if flavor in flavors:
            loader = __import__(module, fromlist=["load_model"])
            return loader.load_model(str(directory)), flavor
    if PYFUNC in flavors:
        import mlflow.pyfunc

        loaded = mlflow.pyfunc.load_model(str(directory))
        try:
            return MlflowPythonModel(loaded.unwrap_python_model()), PYFUNC
        except Exception as exc:  # MLflow raises a bare MlflowException for other loaders
            loader_module = flavors[PYFUNC].get("loader_module", "?")
            raise InvalidInput(
                f"MLflow model '{directory}' is a python function served by {loader_module}, "
                f"not a PythonModel: {exc}"
            ) from None
    raise InvalidInput(
        f"MLflow model '{directory}' has flavors {', '.join(sorted(flavors)) or 'none'}; "
        f"modelyard converts {', '.join(SUPPORTED)}"
    )


def package_mlflow_model(
    directory: str | Path, target: str | Path, *, run_id: str | None = None
) -> Manifest:
    """Write the MLflow model in ``directory`` as a modelyard package in ``target``."""
    mlmodel = read_mlmodel(directory)
    signature = convert_signature(mlmodel.signature)
    model, flavor = load_mlflow_model(directory)
    example = mlmodel.load_input_example(str(directory))
    columns = list(getattr(example, "columns", []))
    if signature is not None and set(signature.input_names) <= set(columns):
        example = example[signature.input_names]  # in the signature's order, inputs only
    metadata = {
        "mlflow": {
            "flavor": flavor,
            "model_uuid": mlmodel.model_uuid,
            "run_id": mlmodel.run_id,
            "model_id": getattr(mlmodel, "model_id", None),
            "mlflow_version": mlmodel.mlflow_version,
        }
    }
    return write_package(
        model,
        target,
        input_example=example,
        signature=signature,
        run_id=run_id,
        metadata=metadata,
    )
