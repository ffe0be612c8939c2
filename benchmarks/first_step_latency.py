"""Seconds from launching ``gatera-lab fit`` to its first training step, with a cold and then a warm cache.

Each run is a subprocess of ``gatera-lab fit --config CONFIG --trainer.fast_dev_run 1
--trainer.enable_progress_bar false`` with `FirstStepMarker` added through ``--trainer.callbacks+``: at the
first ``on_train_batch_start`` it prints ``FIRST_STEP_MARKER <unix time>``, and the latency is that time
minus the launch time (both clocks of this machine). Once the marker is seen the run is stopped (SIGTERM),
unless ``--wait`` lets it finish. Lines of the run that mention the tokenized cache are shown with the
seconds after launch at which they arrived.

Cache: by default the runs use an overlay of the cache root (``--cache``, else ``GATERA_LAB_CACHE``, else
``~/.cache/gatera-lab``): a temporary folder with a link to each of its entries except ``tokenized/``, so the
first run is cold (downloads and converted models reused, no tokenized data) and the second finds what the
first wrote; the overlay is deleted at the end (``--keep-overlay`` keeps it). ``--in-place`` uses the cache
root itself for both runs, as it is. Example::

    python benchmarks/first_step_latency.py
    python benchmarks/first_step_latency.py --config lora_gate --in-place -- --data.per_task_cap 2000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import lightning as L

MARKER = "FIRST_STEP_MARKER"
MARKER_CALLBACK = "benchmarks.first_step_latency.FirstStepMarker"
CACHE_WORDS = ("tokeniz",)  # lines worth showing: the tokenized cache's reuse/build lines
REPOSITORY = Path(__file__).resolve().parent.parent


class FirstStepMarker(L.Callback):
    """Prints ``FIRST_STEP_MARKER <unix time>`` to stderr at the first training batch (global rank 0)."""

    def __init__(self) -> None:
        self.printed = False

    def on_train_batch_start(self, trainer: L.Trainer, *args: object) -> None:
        if not self.printed and trainer.is_global_zero:
            print(f"{MARKER} {time.time():.6f}", file=sys.stderr, flush=True)
            self.printed = True


def default_cache() -> Path:
    from gatera_lab.models.local_cache import CACHE_ENV, DEFAULT_CACHE

    return Path(os.environ.get(CACHE_ENV) or DEFAULT_CACHE).expanduser()


def make_overlay(cache: Path) -> Path:
    """A temporary cache root linking to every entry of ``cache`` except ``tokenized/``."""
    overlay = Path(tempfile.mkdtemp(prefix="gatera-first-step-"))
    if cache.is_dir():
        for entry in cache.iterdir():
            if entry.name != "tokenized" and not entry.name.startswith("."):
                (overlay / entry.name).symlink_to(entry.resolve())
    return overlay


def fit_command(config: str, extra: list[str]) -> list[str]:
    executable = shutil.which("gatera-lab")
    launcher = [executable] if executable else [sys.executable, "-m", "gatera_lab.cli"]
    return [
        *launcher,
        "fit",
        "--config",
        config,
        "--trainer.fast_dev_run",
        "1",
        "--trainer.enable_progress_bar",
        "false",
        f"--trainer.callbacks+={MARKER_CALLBACK}",
        *extra,
    ]


def timed_run(
    command: list[str], cache: Path, workdir: Path, timeout: float, wait: bool
) -> dict[str, object]:
    """Run ``command``; the seconds to the marker, the cache lines with their arrival times, and the log."""
    environment = dict(os.environ, GATERA_LAB_CACHE=str(cache), PYTHONUNBUFFERED="1")
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPOSITORY), os.environ.get("PYTHONPATH")]))
    launched = time.time()
    process = subprocess.Popen(
        command,
        cwd=workdir,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        start_new_session=True,  # its own process group: a timeout ends its data loader workers too
    )
    watchdog = threading.Timer(timeout, os.killpg, (process.pid, signal.SIGKILL))
    watchdog.start()
    first_step, cache_lines, log = None, [], []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            arrived = time.time() - launched
            log.append(line.rstrip("\n"))
            if MARKER in line and first_step is None:
                first_step = float(line.split(MARKER, 1)[1].split()[0]) - launched
                if not wait:
                    process.send_signal(signal.SIGTERM)
            elif any(word in line for word in CACHE_WORDS):
                cache_lines.append(f"{arrived:7.1f} s  {line.strip()}")
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    finally:
        watchdog.cancel()
    return {
        "first_step_s": first_step,
        "total_s": time.time() - launched,
        "returncode": process.returncode,
        "cache_lines": cache_lines,
        "log": log,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cache", type=Path, default=None, help="cache root (default: the user's)")
    parser.add_argument("--config", default="lora", help="a shipped config name or a YAML file")
    parser.add_argument("--in-place", action="store_true", help="use the cache root as it is (no overlay)")
    parser.add_argument("--keep-overlay", action="store_true", help="keep the temporary overlay cache")
    parser.add_argument("--wait", action="store_true", help="let each run finish instead of stopping it")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds allowed per run")
    parser.add_argument("--output", type=Path, default=None, help="also write the results as JSON here")
    parser.add_argument("extra", nargs="*", help="more arguments for gatera-lab fit (after --)")
    args = parser.parse_args(argv)

    cache = (args.cache or default_cache()).expanduser()
    root = cache if args.in_place else make_overlay(cache)
    workdir = Path(tempfile.mkdtemp(prefix="gatera-first-step-run-"))
    command = fit_command(args.config, args.extra)
    print(f"cache root {root}" + ("" if args.in_place else f" (overlay of {cache}, without tokenized/)"))
    print(f"command: {' '.join(command)}", flush=True)
    results: dict[str, dict[str, object]] = {}
    try:
        for name in ("cold", "warm") if not args.in_place else ("first", "second"):
            result = timed_run(command, root, workdir, args.timeout, args.wait)
            results[name] = result
            if result["first_step_s"] is None:
                print(f"{name} run: no training step (exit code {result['returncode']}); its last lines:")
                print("\n".join(result["log"][-30:]), file=sys.stderr)
                return 1
            print(
                f"{name:>6}: first step after {result['first_step_s']:.1f} s (run ended after {result['total_s']:.1f} s)"
            )
            for line in result["cache_lines"]:
                print(f"        {line}")
            sys.stdout.flush()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if not args.in_place and not args.keep_overlay:
            shutil.rmtree(root, ignore_errors=True)  # removes the links, not what they point to
    if args.output is not None:
        summary = {name: {k: v for k, v in result.items() if k != "log"} for name, result in results.items()}
        args.output.write_text(json.dumps({"command": command, "runs": summary}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
