"""Rows per second of multiple-choice scoring through lm-eval's model interface vs gatera-lab's own scorer.

The same ``--rows`` synthetic rows (a question of 40-80 words, ``--choices`` answers of 3-8 words each) are
scored two ways on one model:

- ``lm-eval``: ``AdaptedModelLM.loglikelihood`` (`gatera_lab.evaluation.lm_eval_bridge`) on the
  ``rows x choices`` requests ``(question, " " + answer)`` that an lm-eval multiple-choice task sends: every
  request runs its whole context and continuation, ``rows x choices`` sequences of full length;
- ``choice scoring``: `gatera_lab.evaluation.evaluate_items` on `tokenize_choice_item` items of the same
  rows: each question runs once and its key/value cache is shared by its choices, so only the choice
  tokens run once per choice.

Both see ``--batch-size`` rows per forward (lm-eval's batch is ``batch-size x choices`` requests). Rounds
alternate the two (`benchmarks.timing.round_robin`, one warm-up round); the printed ratio is the median
over rounds of lm-eval's time over choice scoring's (above 1: the shared cache is faster). The fraction of
rows on which both pick the same answer (argmax log-likelihood) is printed as a check.

    python benchmarks/lm_eval_vs_choice_scoring.py                       # the embedded SmolLM2-135M-Instruct
    python benchmarks/lm_eval_vs_choice_scoring.py --random --rows 16    # a tiny random Llama, seconds
"""

from __future__ import annotations

import argparse
import random
import sys
from pathlib import Path

import torch
from lm_eval.api.instance import Instance
from transformers import LlamaConfig, LlamaForCausalLM

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.timing import paired_ratio, round_robin  # noqa: E402
from gatera_lab.evaluation import evaluate_items  # noqa: E402
from gatera_lab.evaluation.choice_text_items import tokenize_choice_item  # noqa: E402
from gatera_lab.evaluation.lm_eval_bridge import AdaptedModelLM  # noqa: E402
from gatera_lab.models.model_loading import load_causal_lm, load_tokenizer  # noqa: E402

WORD_LIST = (
    "the a water stone bird tree river cold warm light heavy small large open close fast slow person child "
    "house door window road car boat bread milk paper glass metal wood fire ice sun rain wind snow garden "
    "kitchen table chair cup plate knife rope box bag shoe coat hat book pen clock phone lamp key"
)


def make_rows(rows: int, choices: int, seed: int) -> list[tuple[str, list[str], int]]:
    """``(question, answers, gold)`` per row, from a fixed word list (deterministic for ``seed``)."""
    generator, vocabulary = random.Random(seed), WORD_LIST.split()

    def words(low: int, high: int) -> str:
        return " ".join(generator.choice(vocabulary) for _ in range(generator.randint(low, high)))

    return [
        (f"Question: {words(40, 80)}?\nAnswer:", [words(3, 8) for _ in range(choices)], index % choices)
        for index in range(rows)
    ]


def tiny_random_llama(vocab_size: int, seed: int) -> LlamaForCausalLM:
    """A 2-layer Llama with hidden size 64 over ``vocab_size`` tokens, randomly initialised."""
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config).eval()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", default="smollm2-135m-instruct", help="model name or folder (and tokenizer)"
    )
    parser.add_argument("--random", action="store_true", help="a tiny random Llama with --model's tokenizer")
    parser.add_argument("--rows", type=int, default=64, help="multiple-choice rows (64)")
    parser.add_argument("--choices", type=int, default=4, help="answers per row (4)")
    parser.add_argument("--batch-size", type=int, default=8, help="rows per forward (8)")
    parser.add_argument("--repeats", type=int, default=3, help="measured rounds (3)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if min(args.rows, args.choices, args.batch_size) < 1:
        parser.error("--rows, --choices and --batch-size must be >= 1")
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    tokenizer = load_tokenizer(args.model)
    model = tiny_random_llama(len(tokenizer), args.seed) if args.random else load_causal_lm(args.model)
    rows = make_rows(args.rows, args.choices, args.seed)
    requests = [
        Instance("loglikelihood", {}, (question, " " + answer), index)
        for index, (question, answers, _) in enumerate(rows)
        for answer in answers
    ]
    items = [
        tokenize_choice_item(
            question, [""] * len(answers), [" " + a for a in answers], gold, tokenizer, row_id=str(i)
        )
        for i, (question, answers, gold) in enumerate(rows)
    ]
    lm = AdaptedModelLM(model, tokenizer, batch_size=args.batch_size * args.choices)
    found: dict[str, list[int]] = {}

    def run_lm_eval() -> None:
        scores = [score for score, _ in lm.loglikelihood(requests, disable_tqdm=True)]
        found["lm-eval"] = [
            max(range(args.choices), key=lambda k, r=r: scores[r * args.choices + k])
            for r in range(args.rows)
        ]

    def run_choice_scoring() -> None:
        _, _, outputs = evaluate_items(model, tokenizer, items, ["bench"], batch_size=args.batch_size)
        by_row = {
            int(i): int(p) for out in outputs for i, p in zip(out.row_ids, out.predicted_acc, strict=True)
        }
        found["choice scoring"] = [by_row[r] for r in range(args.rows)]

    device = next(model.parameters()).device
    calls = {"lm-eval": run_lm_eval, "choice scoring": run_choice_scoring}
    wall, _ = round_robin(calls, device, repeats=args.repeats, warmup=1, progress=print)
    name = f"random tiny Llama ({args.model} tokenizer)" if args.random else args.model
    print(f"model: {name}; {args.rows} rows x {args.choices} choices, {args.batch_size} rows per forward")
    for contender, seconds in wall.items():
        median = sorted(seconds)[len(seconds) // 2]
        print(f"{contender:>15}: {args.rows / median:8.1f} rows/s  (median {median:.3f} s)")
    print(f"ratio lm-eval time / choice scoring time: {paired_ratio(wall, 'lm-eval', 'choice scoring'):.2f}x")
    same = sum(a == b for a, b in zip(found["lm-eval"], found["choice scoring"], strict=True)) / args.rows
    print(f"rows where both pick the same answer: {same:.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
