"""`GateraSFTTrainer`: TRL's `SFTTrainer` with GateRA's entropy regulariser, gate logging and adapter saving.

TRL is an optional extra: ``pip install 'gatera-lab[trl]'``. Hand it a model that already holds a gatera-lab
adapter and no ``peft_config`` (the adapter is gatera-lab's, not PEFT's)::

    build_method("hira_gate", r=32, entropy_weight=0.01).apply(model)
    trainer = GateraSFTTrainer(model=model, args=SFTConfig(...), train_dataset=..., processing_class=tokenizer)
"""

from __future__ import annotations

try:
    from trl import SFTTrainer
except ImportError as error:  # the extra is not installed
    raise ImportError(
        "GateraSFTTrainer needs TRL, an optional extra of gatera-lab: pip install 'gatera-lab[trl]'"
    ) from error

from gatera_lab.integrations.transformers_trainer import GateraTrainerMixin


class GateraSFTTrainer(GateraTrainerMixin, SFTTrainer):
    """`trl.SFTTrainer` with GateRA's entropy regulariser, gate logging and adapter-only saving."""
