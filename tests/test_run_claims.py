"""Run claims: two sweep workers never start the same run, and a dead worker's claim is taken over."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

from gatera_lab.experiments.run_claims import claim_path, claim_run, claimed_by_others


def _finished_process_id() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_held_claim_cannot_be_won_twice_and_is_released_on_exit(tmp_path):
    with claim_run(tmp_path, "run-a") as first:
        assert first
        owner = json.loads(claim_path(tmp_path, "run-a").read_text())
        assert owner["host"] == socket.gethostname()
        with claim_run(tmp_path, "run-a") as second:
            assert not second
        assert claim_path(tmp_path, "run-a").exists()  # the loser does not remove the winner's claim
    assert not claim_path(tmp_path, "run-a").exists()


def test_the_claim_is_released_when_the_run_raises(tmp_path):
    try:
        with claim_run(tmp_path, "run-a"):
            raise RuntimeError("the run failed")
    except RuntimeError:
        pass
    assert not claim_path(tmp_path, "run-a").exists()


def test_a_claim_of_a_finished_process_is_stale_and_taken_over(tmp_path):
    owner = {"host": socket.gethostname(), "pid": _finished_process_id()}
    claim_path(tmp_path, "run-a").write_text(json.dumps(owner))
    assert claimed_by_others(tmp_path, ["run-a"]) == set()
    with claim_run(tmp_path, "run-a") as won:
        assert won


def test_live_claims_of_this_host_and_claims_of_other_hosts_are_respected(tmp_path):
    live = {"host": socket.gethostname(), "pid": os.getppid()}
    remote = {"host": socket.gethostname() + "-elsewhere", "pid": _finished_process_id()}
    claim_path(tmp_path, "run-live").write_text(json.dumps(live))
    claim_path(tmp_path, "run-remote").write_text(json.dumps(remote))
    names = ["run-live", "run-remote", "run-free"]
    assert claimed_by_others(tmp_path, names) == {"run-live", "run-remote"}
    with claim_run(tmp_path, "run-remote") as won:
        assert not won
