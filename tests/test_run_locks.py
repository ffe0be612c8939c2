"""Run claims: two sweep workers never do the same run, and a claim ends with the process that holds it.

The other workers are real processes (`tests/helpers/lock_worker.py`), synchronised by files, not by sleeps.
"""

from __future__ import annotations

import json
import os
import signal
import socket
from collections import Counter
from types import SimpleNamespace

import pytest

from gatera_lab.errors import ConfigError
from gatera_lab.experiments.command import next_run
from gatera_lab.experiments.run_locks import claim_path, claim_run, claimed_by_others, take_slot
from tests.helpers.lock_worker import ClaimHolder, Worker


def test_a_held_claim_cannot_be_won_twice_and_is_free_again_after_exit(tmp_path):
    with claim_run(tmp_path, "run-a") as first:
        assert first
        assert claimed_by_others(tmp_path, ["run-a", "run-b"]) == {"run-a"}
        with claim_run(tmp_path, "run-a") as second:
            assert not second
        assert claimed_by_others(tmp_path, ["run-a"]) == {"run-a"}  # the loser did not release the winner's
    assert claimed_by_others(tmp_path, ["run-a"]) == set()
    with claim_run(tmp_path, "run-a") as again:
        assert again


def test_the_claim_is_released_when_the_run_raises(tmp_path):
    with pytest.raises(RuntimeError, match="the run failed"), claim_run(tmp_path, "run-a"):
        raise RuntimeError("the run failed")
    assert claimed_by_others(tmp_path, ["run-a"]) == set()
    with claim_run(tmp_path, "run-a") as won:
        assert won


def test_two_worker_processes_do_every_run_exactly_once(tmp_path):
    runs, log, go = tmp_path / "runs", tmp_path / "log.txt", tmp_path / "go"
    names = [f"run-{index:02d}" for index in range(12)]
    workers = []
    try:
        for index in range(2):
            ready = tmp_path / f"ready-{index}"
            workers.append(Worker.start("work", runs, log, ready, go, *names, scratch=tmp_path / "out"))
            workers[-1].wait_ready(ready)
        go.touch()  # both start together and meet each other's claims
        assert [worker.finish() for worker in workers] == [0, 0], [worker.log() for worker in workers]
    finally:
        for worker in workers:
            worker.kill()
    lines = [line.split() for line in log.read_text().splitlines()]
    assert Counter(name for name, _ in lines) == Counter(names)  # each run once, none missing
    assert {int(pid) for _, pid in lines} <= {worker.process.pid for worker in workers}


def test_a_worker_killed_while_holding_a_claim_holds_nothing(tmp_path):
    runs = tmp_path / "runs"
    with ClaimHolder(runs, "run-a", tmp_path / "out") as holder:
        assert claimed_by_others(runs, ["run-a", "run-b"]) == {"run-a"}
        with claim_run(runs, "run-a") as won:
            assert not won
        os.kill(holder.worker.process.pid, signal.SIGKILL)  # no cleanup code of the holder runs
        assert holder.worker.process.wait(timeout=120) == -signal.SIGKILL
    assert claim_path(runs, "run-a").exists()  # the lock file stays, and means nothing without a holder
    assert claimed_by_others(runs, ["run-a"]) == set()
    with claim_run(runs, "run-a") as won:
        assert won


@pytest.mark.parametrize(
    "content",
    [b"", b"\x00\xffgarbage", json.dumps({"host": socket.gethostname(), "pid": os.getpid()}).encode()],
    ids=["empty", "garbage", "old-pid-claim-of-a-live-process"],
)
def test_a_claim_file_left_on_disk_is_no_claim_whatever_it_holds(tmp_path, content):
    claim_path(tmp_path, "run-a").write_bytes(content)
    assert claimed_by_others(tmp_path, ["run-a"]) == set()
    with claim_run(tmp_path, "run-a") as won:
        assert won


def test_a_claim_path_that_cannot_be_locked_is_an_error_naming_it(tmp_path):
    claim_path(tmp_path, "run-a").mkdir()
    with pytest.raises(ConfigError, match=r"cannot lock the run claim .*run-a\.claim.*option --runs"):
        claimed_by_others(tmp_path, ["run-a"])
    with pytest.raises(ConfigError, match=r"run-a\.claim"), claim_run(tmp_path, "run-a"):
        pass


def test_fit_slots_bound_the_fits_over_all_holders(tmp_path):
    first, second = take_slot(tmp_path, "fit", 2), take_slot(tmp_path, "fit", 2)
    assert first is not None and second is not None and take_slot(tmp_path, "fit", 2) is None
    second.release()
    again = take_slot(tmp_path, "fit", 2)
    assert again is not None
    first.release()
    again.release()


def test_a_worker_without_a_fit_slot_takes_a_run_that_needs_no_fit(tmp_path):
    fit = SimpleNamespace(name="fit-me", kind="train")
    test = SimpleNamespace(name="test-me", kind="train")
    statuses = {"fit-me": "pending", "test-me": "needs_test"}
    spec = SimpleNamespace(concurrent_fits=1)
    run, slot = next_run([fit, test], statuses, spec, tmp_path)  # the slot is free: the fit goes first
    assert run is fit and slot is not None
    assert next_run([fit, test], statuses, spec, tmp_path) == (test, None)  # another holder fits meanwhile
    assert next_run([fit], statuses, spec, tmp_path) == (None, None)  # nothing to do without a slot: wait
    slot.release()
    assert next_run([fit], statuses, SimpleNamespace(concurrent_fits=None), tmp_path) == (fit, None)
