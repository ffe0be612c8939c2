"""How many token slots the training batches of an overlay hold, and how many a micro-batch cap would split.

python benchmarks/batch_sizes.py --config configs/quick.yaml --config configs/sweeps/study_overlay.yaml
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gatera_lab.datamodules import CommonsenseDataModule  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", action="append", required=True, help="an overlay with a data section")
    parser.add_argument("--caps", default="1024,1536,2048", help="micro-batch caps to count batches over")
    args = parser.parse_args(argv)
    for config in args.config:
        data = CommonsenseDataModule(**yaml.safe_load((ROOT / config).read_text())["data"]["init_args"])
        data.setup("fit")
        slots = sorted(batch["input_ids"].numel() for batch in data.train_dataloader())
        count = len(slots)
        print(f"{config}: {count} batches; token slots median {slots[count // 2]}, largest {slots[-1]}")
        for cap in map(int, args.caps.split(",")):
            over = [size for size in slots if size > cap]
            print(f"  over {cap}: {len(over)} batches, {sum(over) / sum(slots):.1%} of all token slots")


if __name__ == "__main__":
    main()
