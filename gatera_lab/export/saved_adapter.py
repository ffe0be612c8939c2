"""`SavedAdapter`: the description of a trained adapter that checkpoints and gatera-format exports share.

The fields are those of ``checkpoint["gatera"]`` (see `gatera_lab.export.checkpoint_metadata`, the one place
that builds them): ``method_name`` (registry name), ``method_class_path`` (``module.Class``),
``method_hparams`` (``method.hparams()``, every ``__init__`` argument), ``base_model`` (name or folder) and
``fingerprint`` (`gatera_lab.export.fingerprint.base_model_fingerprint` of the adapted model), and where
recorded ``base_dtype`` (the base's storage dtype in training). `SavedAdapter.attach` turns them
back into a working adapter on a fresh base model.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import asdict, dataclass
from typing import Any

from torch import Tensor, nn

from gatera_lab.adapters.adapter_method import AdapterMethod, adapter_layers
from gatera_lab.adapters.precision_policy import DTYPES
from gatera_lab.errors import CheckpointMismatchError, ConfigError, UnknownMethodError
from gatera_lab.export.adapter_tensors import load_adapter_tensors
from gatera_lab.export.checkpoint_metadata import checkpoint_metadata
from gatera_lab.export.fingerprint import base_model_fingerprint, describe_difference
from gatera_lab.registry import get_entry

FIELD_TYPES: dict[str, type] = {
    "method_name": str,
    "method_class_path": str,
    "method_hparams": dict,
    "base_model": str,
    "fingerprint": dict,
}


@dataclass(frozen=True)
class SavedAdapter:
    """Which method, with which hyper-parameters, was trained on which base model."""

    method_name: str
    method_class_path: str
    method_hparams: dict[str, Any]
    base_model: str
    fingerprint: dict[str, Any]
    base_dtype: str | None = (
        None  # the base's storage dtype in training (``model.dtype``); None: not recorded
    )

    @classmethod
    def from_model(cls, model: nn.Module, method: AdapterMethod, base_model: str) -> SavedAdapter:
        """Describe ``method`` as applied to ``model`` (trained on ``base_model``)."""
        return cls(**checkpoint_metadata(method, base_model, base_model_fingerprint(model)))

    def to_json(self, method: AdapterMethod, header: dict[str, Any], trailer: dict[str, Any]) -> str:
        """``header``, these fields and ``trailer`` as indented JSON; hyper-parameters that JSON cannot store
        are a `ConfigError` naming the method."""
        try:
            return json.dumps({**header, **self.to_dict(), **trailer}, indent=2) + "\n"
        except TypeError as error:
            raise ConfigError(
                f"method {method.name!r} has hyper-parameters that JSON cannot store ({error}); "
                f"hparams(): {method.hparams()!r}"
            ) from error

    @classmethod
    def from_dict(cls, data: Any, source: str) -> SavedAdapter:
        """Validate ``data`` (read from ``source``); a missing or mistyped field is a `ConfigError`."""
        if not isinstance(data, dict):
            raise ConfigError(
                f"{source}: expected a mapping with fields {list(FIELD_TYPES)}, got {type(data).__name__}"
            )
        for field, expected in FIELD_TYPES.items():
            if field not in data:
                raise ConfigError(f"{source}: required field {field!r} is missing")
            if not isinstance(data[field], expected):
                raise ConfigError(
                    f"{source}: field {field!r} must be a {expected.__name__}, got {data[field]!r}"
                )
        base_dtype = data.get("base_dtype")
        if base_dtype is not None and base_dtype not in DTYPES:
            raise ConfigError(
                f"{source}: field 'base_dtype' must be one of {list(DTYPES)}, got {base_dtype!r}"
            )
        return cls(**{field: data[field] for field in FIELD_TYPES}, base_dtype=base_dtype)

    def to_dict(self) -> dict[str, Any]:
        """The fields, without ``base_dtype`` where it is not recorded."""
        fields = asdict(self)
        if fields["base_dtype"] is None:
            del fields["base_dtype"]
        return fields

    def method_class(self, source: str) -> type[AdapterMethod]:
        """The class at ``method_class_path``; if it cannot be imported, the class registered as ``method_name``."""
        method_class = import_class(self.method_class_path)
        if method_class is None:
            try:
                method_class = get_entry(self.method_name).method_class
            except UnknownMethodError as error:
                raise ConfigError(
                    f"{source}: field 'method_class_path'={self.method_class_path!r} cannot be imported and "
                    f"field 'method_name'={self.method_name!r} is not registered ({error})"
                ) from error
        if not (isinstance(method_class, type) and issubclass(method_class, AdapterMethod)):
            raise ConfigError(
                f"{source}: field 'method_class_path'={self.method_class_path!r} is not an AdapterMethod subclass"
            )
        return method_class

    def build_method(self, source: str) -> AdapterMethod:
        """A new method object with the saved hyper-parameters."""
        method_class = self.method_class(source)
        try:
            return method_class(**self.method_hparams)
        except TypeError as error:
            raise ConfigError(
                f"{source}: field 'method_hparams' does not fit {method_class.__qualname__}: {error}"
            ) from error

    def attach(
        self, model: nn.Module, tensors: dict[str, Tensor], source: str, tensors_source: str | None = None
    ) -> AdapterMethod:
        """Check ``model`` is the saved base model, inject the method and load ``tensors``.

        Args:
            model: a fresh base model, without adapters.
            tensors: the adapter tensors keyed like `adapter_state_dict`.
            source: where this description came from (a file, a checkpoint entry), named in errors.
            tensors_source: where ``tensors`` came from, if not ``source``.

        Raises:
            CheckpointMismatchError: ``model`` is not the architecture the adapter was trained on, or the
                tensors do not fit. The architecture is checked before ``model`` is modified.
            ConfigError: ``model`` already has adapters, or the saved method cannot be rebuilt.
        """
        existing = sum(1 for _ in adapter_layers(model))
        if existing:
            raise ConfigError(
                f"loading {source} needs a base model without adapters; this one has {existing}"
            )
        self.check_base(base_model_fingerprint(model), source, adapted=False)
        method = self.build_method(source)
        method.apply(model)
        self.check_base(base_model_fingerprint(model), source, adapted=True)
        load_adapter_tensors(model, tensors, tensors_source or source)
        return method

    def check_base(self, current: dict[str, Any], source: str, adapted: bool) -> None:
        """Compare fingerprints; before injection (``adapted=False``) the adapted module names are skipped."""
        saved = dict(self.fingerprint)
        current = dict(current)
        if not adapted:
            saved.pop("adapted_modules", None)
            current.pop("adapted_modules", None)
        if saved != current:
            raise CheckpointMismatchError(
                f"{source}: the adapter was trained on base model {self.base_model!r}, and this model differs: "
                f"{describe_difference(saved, current)}"
            )


def import_class(class_path: str) -> Any:
    """The object at ``package.module.Name`` (nested names allowed), or None if it cannot be imported."""
    parts = class_path.split(".")
    for split in range(len(parts) - 1, 0, -1):
        try:
            value: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for name in parts[split:]:
                value = getattr(value, name)
        except AttributeError:
            return None
        return value
    return None
