"""What an adapter-only Lightning checkpoint carries besides the adapter tensors, and its checks.

Layout of a checkpoint written by `GateraModule`:

- ``checkpoint["state_dict"]``: the adapter tensors only (method parameters and gates), keys prefixed
  ``model.`` as in ``GateraModule.state_dict()``; the frozen base model is not stored.
- ``checkpoint["gatera"]``: ``method_name``, ``method_class_path``, ``method_hparams``, ``base_model``
  (name or folder), ``fingerprint`` (the base model's architecture and adapted modules) and ``base_dtype``
  (the base's storage dtype during training: reloads build it so; absent in checkpoints written before it).
- ``checkpoint["rng_states"]``: every process's CPU (and CUDA) generator states
  (`gatera_lab.training.rank_rng_states`), so a resumed run continues exactly.

A checkpoint is loaded (resumed, tested) only into the same method class with the same value of every
option that changes what the adapter computes: every entry of ``method_hparams`` except the method's
``training_only_options`` (`gatera_lab.adapters.adapter_method.AdapterMethod.training_only_options`: dropout,
the gate initialisation and the entropy weight by default), so an option a user's subclass adds is compared
too.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from gatera_lab.adapters.adapter_method import AdapterMethod
from gatera_lab.errors import CheckpointMismatchError

METADATA_KEY = "gatera"
RNG_KEY = "rng_states"


class _Absent:
    def __repr__(self) -> str:
        return "<absent>"


_ABSENT = _Absent()  # an option one side does not record


def checkpoint_metadata(
    method: Any, base_model: str, fingerprint: dict[str, Any], base_dtype: str | None = None
) -> dict[str, Any]:
    """The metadata fields; ``base_dtype`` (the base's storage dtype, ``model.dtype``) where it is known, so
    that a reload builds the base as it was trained (it is not compared on loading)."""
    metadata = {
        "method_name": method.name,
        "method_class_path": method.class_path(),
        "method_hparams": method.hparams(),
        "base_model": base_model,
        "fingerprint": fingerprint,
    }
    if base_dtype is not None:
        metadata["base_dtype"] = base_dtype
    return metadata


def check_checkpoint_matches(
    saved: dict[str, Any] | None,
    current: dict[str, Any],
    saved_keys: set[str],
    expected_keys: set[str],
    training_only: Iterable[str] | None = None,
) -> None:
    """Raise `CheckpointMismatchError` if a checkpoint was written for another method, options or base model.

    Args:
        saved: the checkpoint's ``gatera`` metadata (None if it has none).
        current: `checkpoint_metadata` of the model the checkpoint is loaded into.
        saved_keys: the checkpoint's adapter tensor names; ``expected_keys``: the model's.
        training_only: method options that may differ: the current method's ``training_only_options``
            (default: those of `AdapterMethod`); every other option in either ``method_hparams`` must be equal.
    """
    if saved is None:
        raise CheckpointMismatchError(
            "the checkpoint has no 'gatera' metadata: it was not written by gatera-lab's GateraModule"
        )
    for field, what in (("method_name", "method"), ("method_class_path", "method class")):
        if saved.get(field) != current[field]:
            raise CheckpointMismatchError(
                f"the checkpoint was trained with {what} {saved.get(field)!r}, but this run uses {current[field]!r}"
            )
    if training_only is None:
        training_only = AdapterMethod.training_only_options
    _check_options(saved.get("method_hparams") or {}, current["method_hparams"], set(training_only))
    if saved.get("fingerprint") != current["fingerprint"]:
        raise CheckpointMismatchError(
            f"the checkpoint was trained on base model {saved.get('base_model')!r} "
            f"({saved.get('fingerprint')}), but this run loads {current['base_model']!r} ({current['fingerprint']})"
        )
    missing, unexpected = expected_keys - saved_keys, saved_keys - expected_keys
    if missing or unexpected:
        raise CheckpointMismatchError(
            f"the checkpoint's adapter tensors do not match this model: missing {sorted(missing)[:5]}, "
            f"unexpected {sorted(unexpected)[:5]}"
        )


def _check_options(saved: dict[str, Any], current: dict[str, Any], training_only: set[str]) -> None:
    """Every option but ``training_only`` equal in both (tuples equal to lists); the first difference raises."""
    for name in dict.fromkeys([*current, *saved]):
        if name in training_only:
            continue
        before, now = saved.get(name, _ABSENT), current.get(name, _ABSENT)
        if _normalised(before) != _normalised(now):
            raise CheckpointMismatchError(
                f"the checkpoint has method option {name}={before!r}, but this run uses {name}={now!r}; "
                f"{name} changes what the trained adapter computes, so the checkpoint cannot be loaded with it"
            )


def _normalised(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_normalised(item) for item in value]
    return value
