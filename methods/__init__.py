"""Built-in adapter methods, one file each. Importing this package registers them."""

from gatera_lab.methods.dora import DoRA
from gatera_lab.methods.hira import HiRA
from gatera_lab.methods.lora import LoRA

__all__ = ["DoRA", "HiRA", "LoRA"]
