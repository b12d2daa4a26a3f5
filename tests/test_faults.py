"""Faults with real processes, real SQLite and real Ray: several `autotune run` processes on one
run folder, kill -9 and SIGTERM mid-trial then resume, heartbeats, the study created by several
processes at once."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from autotune.config import load_experiment
from autotune.report.records import HEARTBEAT_LOST, read_records
from autotune.storage import Heartbeats, open_storage
from autotune.study import INTERRUPTED, ORIGIN, OVER_BUDGET, _claim, _Interrupt, open_study
from faults import (GRACE_S, audit, completed_snapshot, running_with_heartbeat, start, trials_of, wait_for,
                    write_experiment)

# Heartbeats of 1 s and several processes: run alone (`make test` runs the serial tests after the rest).
pytestmark = [pytest.mark.slow, pytest.mark.serial]

CREATE = """
import sys, time
from pathlib import Path
from autotune.config import load_experiment
from autotune.study import open_study
experiment = load_experiment(sys.argv[1])
Path(sys.argv[2] + ".ready." + sys.argv[3]).touch()
while not Path(sys.argv[2]).exists():  # all start creating at the same moment
    time.sleep(0.002)
open_study(experiment)
"""


def test_processes_creating_one_study_at_once_all_succeed(tmp_path, monkeypatch):
    """Optuna's table creation races (alembic IntegrityError, 'table already exists'): retried."""
    monkeypatch.chdir(tmp_path)
    experiment = write_experiment(tmp_path, "race", 1)
    (tmp_path / "runs" / "race").mkdir(parents=True)
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", CREATE, str(experiment), str(go), str(i)], cwd=tmp_path,
                              stderr=subprocess.PIPE, text=True) for i in range(4)]
    assert wait_for(lambda: len(list(tmp_path.glob("go.ready.*"))) == 4, timeout=300, poll=0.01)
    go.touch()
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-2000:]
    assert open_study(load_experiment(experiment)).study_name == "race"


def test_heartbeats_fail_dead_trials_only(tmp_path, monkeypatch):
    """The heartbeat thread fails a trial whose heartbeat stopped once the grace period (3 s)
    has passed, and never a live one; a trial that never beat (its process died just after
    asking for it) gets a beat, then goes the same way."""
    monkeypatch.chdir(tmp_path)
    experiment = load_experiment(write_experiment(tmp_path, "beats", 5))
    experiment.run_dir.mkdir(parents=True)
    storage = open_storage(experiment.storage_url, heartbeat_seconds=1, grace_seconds=3)
    study = open_study(experiment, storage)
    live, dead = study.ask(), study.ask()
    storage.record_heartbeat(dead._trial_id)  # beats once, then its process dies
    time.sleep(3)
    silent = study.ask()
    state = lambda trial: study._storage.get_trial(trial._trial_id).state  # noqa: E731
    with Heartbeats(study, storage, 1) as heartbeats:  # this process: live is its trial
        heartbeats.add(live._trial_id)
        time.sleep(2.5)  # (SQLite stamps heartbeats to the second)
        assert state(dead) == optuna.trial.TrialState.FAIL
        assert state(live) == state(silent) == optuna.trial.TrialState.RUNNING
        time.sleep(3.5)
        assert state(silent) == optuna.trial.TrialState.FAIL
        assert state(live) == optuna.trial.TrialState.RUNNING
    reasons = {r.number: r.reason for r in read_records(study)}
    assert reasons[dead.number] == reasons[silent.number] == HEARTBEAT_LOST


def test_two_processes_asking_at_once_do_not_overrun_the_budget(tmp_path, monkeypatch):
    """Both see room for the last trial; the lower trial number keeps it, the other is not run."""
    monkeypatch.chdir(tmp_path)
    experiment = load_experiment(write_experiment(tmp_path, "claim", 2))
    experiment.run_dir.mkdir(parents=True)
    storage = open_storage(experiment.storage_url, 1, 4)
    mine, other = open_study(experiment, storage), open_study(experiment, storage)
    first = mine.ask()
    mine.tell(first, [0.5, 1, 1, 1])  # one of two trials done
    ask = mine.ask

    def others_ask_first():  # the other process asks between our budget check and our ask
        other.ask()
        return ask()

    mine.ask = others_ask_first
    with Heartbeats(mine, storage, 1) as heartbeats:
        assert _claim(mine, 2, heartbeats) is None
    late = mine.get_trials()[-1]
    assert late.state == optuna.trial.TrialState.FAIL and late.user_attrs["fail_reason"] == OVER_BUDGET
    assert [t.state for t in mine.get_trials()][:2] == [optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.RUNNING]


def test_three_processes_on_one_run_folder_survive_kill9_and_sigterm(tmp_path):
    """Three `autotune run` on one folder at once. One is killed with kill -9 mid-trial: its
    trial is failed by heartbeat, after the grace period, by the others. Another gets SIGTERM
    mid-trial: it stops cleanly (exit 143), its trial recorded as interrupted. The last one
    finishes the budget: no completed trial lost or repeated, the outputs agree with the study,
    and running the command again (resume) finds nothing left to do. The starting points are
    queued once, not by each process."""
    budget = 4
    # Trials training for about 15 s (7 s with the tiny recipe): three processes that start a few
    # seconds apart on a slow machine still train at the same time.
    experiment = write_experiment(tmp_path, "shared", budget, min_steps=4000)
    run_dir = tmp_path / "runs" / "shared"
    procs = [start(experiment) for _ in range(3)]
    wait_for(lambda: len(running_with_heartbeat(run_dir)) == 3 or any(p.poll() is not None for p in procs), timeout=600)
    if len(running_with_heartbeat(run_dir)) < 3:
        for p in procs:
            p.kill()
        outputs = [p.communicate()[1][-1500:] for p in procs]
        pytest.fail(f"three trials never trained at once; trials: {[(t.number, t.state.name) for t in trials_of(run_dir)]}; "
                    f"exit codes {[p.returncode for p in procs]}; stderr tails: {outputs}")
    running = set(running_with_heartbeat(run_dir))
    procs[2].send_signal(signal.SIGKILL)
    killed_at = time.time()
    procs[1].send_signal(signal.SIGTERM)  # what a scheduler or `docker stop` sends
    out, err = procs[1].communicate(timeout=300)
    assert procs[1].returncode == 143, err[-2000:]
    assert err.strip().splitlines()[-1] == ("interrupted (SIGTERM): completed trials are saved; "
                                            "run the same command to continue"), err
    assert "Traceback" not in err and "Exception ignored" not in err, err
    out, err = procs[0].communicate(timeout=900)
    assert procs[0].returncode == 0, err[-3000:]
    assert f"{budget}/{budget} trials finished" in out, out
    result = audit(run_dir, budget)
    assert result["budget_met"] and result["lost"] == 0 and result["repeated"] == 0 and result["outputs_agree"], result
    trials = trials_of(run_dir)
    assert [t.number for t in trials if t.user_attrs.get("fail_reason") == INTERRUPTED] != []
    [lost] = [t for t in trials if t.state == optuna.trial.TrialState.FAIL and "fail_reason" not in t.user_attrs]  # no reason of ours
    assert lost.number in running and not (run_dir / "models" / f"trial_{lost.number}.tflite").exists()
    # Failed by the survivor's heartbeat thread once its heartbeats had been silent for the
    # grace period, not when the survivor's own trial ended (seconds of slack for a busy machine).
    assert GRACE_S - 1 <= lost.datetime_complete.timestamp() - killed_at < GRACE_S + 10
    assert optuna.trial.TrialState.RUNNING not in {t.state for t in trials}
    queued = [tuple(sorted(t.params.items())) for t in trials if ORIGIN in t.user_attrs]
    assert queued and len(queued) == len(set(queued)), "the starting points were queued more than once"
    before = completed_snapshot(run_dir)
    again = start(experiment)  # resume: nothing left to do, nothing changed
    out, err = again.communicate(timeout=300)
    assert again.returncode == 0 and f"{budget}/{budget} trials finished (0 in this run)" in out, err[-2000:]
    assert completed_snapshot(run_dir) == before


def test_an_interrupt_inside_a_finalizer_is_not_printed_and_still_stops(capfd):
    """TensorFlow objects are collected mid-training: Ctrl-C landing in their finalizer cannot
    propagate, Python would print "Exception ignored ... KeyboardInterrupt" and train on."""
    class Collected:
        def __del__(self):
            os.kill(os.getpid(), signal.SIGINT)  # the signal arrives while the finalizer runs
            time.sleep(0.05)

    interrupt = _Interrupt()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        with interrupt.installed():
            Collected()
            for _ in range(500):  # ordinary work: the interrupt must reach it
                time.sleep(0.01)
    assert time.monotonic() - started < 2 and interrupt.signum == signal.SIGINT
    assert "Exception ignored" not in capfd.readouterr().err
