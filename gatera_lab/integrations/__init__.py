"""Training gatera-lab adapters outside Lightning: the Hugging Face `Trainer` and TRL's `SFTTrainer`.

- `GateraTrainerMixin` (`transformers_trainer`): put it first among the bases of any `transformers.Trainer`
  subclass to add GateRA's entropy regulariser to the loss, log the gate entropy and statistics through the
  Trainer's loggers, and save the adapter only, in the formats of ``gatera-lab export``;
- `GateraTrainer`: ``GateraTrainerMixin`` on `transformers.Trainer`;
- `GateraSFTTrainer` (`trl_sft`): ``GateraTrainerMixin`` on TRL's `SFTTrainer`; needs the ``trl`` extra
  (``pip install 'gatera-lab[trl]'``) and imports TRL only when first asked for.

docs/integrations.md shows each, and a plain PyTorch loop. Nothing in the library imports this package.
"""

from __future__ import annotations

from typing import Any

from gatera_lab.integrations.transformers_trainer import (
    GateraTrainer,
    GateraTrainerMixin,
    NoGateLogitsError,
    trained_method,
)

__all__ = ["GateraSFTTrainer", "GateraTrainer", "GateraTrainerMixin", "NoGateLogitsError", "trained_method"]


def __getattr__(name: str) -> Any:
    if name == "GateraSFTTrainer":  # TRL takes seconds to import: only on demand
        from gatera_lab.integrations.trl_sft import GateraSFTTrainer

        return GateraSFTTrainer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
