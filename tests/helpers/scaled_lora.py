"""A user's LoRA variant, not registered: ``extra_scale`` scales its output (PEFT cannot represent it)."""

from __future__ import annotations

from gatera_lab.methods.lora import LoRA


class ScaledLoRA(LoRA):
    """LoRA with an extra output scale: ``extra_scale * B A x``."""

    def __init__(self, extra_scale: float = 1.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.extra_scale = extra_scale

    def delta(self, layer, x, base_out):
        return self.extra_scale * super().delta(layer, x, base_out)
