"""Faults and bad input, measured with real processes, real SQLite and real Ray.

- every malformed experiment of tests/malformed/ (and the cases a file cannot hold, made here):
  `autotune run` must exit 2 with one line on stderr naming the file, no traceback, nothing
  written, no YAML tag executed;
- kill -9 of a run mid-trial, then the same command again: completed trials lost or repeated;
- 2 and 3 `autotune run` processes on one run folder, started at once and staggered, one of the
  3 killed with kill -9 mid-trial: budget met, trials lost or repeated, processes that failed,
  outputs that disagree with the study, seconds until the killed process's trial was failed;
- a Ray worker killed mid-trial: does the study still finish its budget?

Writes benchmarks/results/faults.json (the summary) and faults_scenarios.json (each run).
"""
from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import optuna

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from faults import (GRACE_S, audit, busy_ray_workers, completed_snapshot, environment, running_with_heartbeat,  # noqa: E402
                    start, trials_of, wait_for, write_experiment)
from malformed_corpus import check_rejected, corpus_cases  # noqa: E402

# ---- malformed experiments ------------------------------------------------------------------

def malformed() -> dict:
    tried = clean = 0
    failures = []
    with tempfile.TemporaryDirectory() as scratch:
        for case in corpus_cases(Path(scratch)):
            tried += 1
            problem = check_rejected(case, environment(), Path(scratch))
            if problem:
                failures.append(f"{case.label}: {problem}")
            else:
                clean += 1
    for line in failures:
        print("  not clean:", line)
    return {"tried": tried, "clean": clean}


# ---- kill -9, then resume --------------------------------------------------------------------

def kill9_then_resume(scratch: Path, trials: int = 5) -> dict:
    experiment = write_experiment(scratch, "kill9", trials)
    run_dir = scratch / "runs" / "kill9"
    proc = start(experiment)
    ok = wait_for(lambda: len(completed_snapshot(run_dir)) >= 2 and running_with_heartbeat(run_dir)
                  or proc.poll() is not None)
    if not ok or proc.poll() is not None:
        raise RuntimeError("the run ended before it could be killed")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = completed_snapshot(run_dir)
    again = start(experiment)
    out, err = again.communicate(timeout=900)
    result = audit(run_dir, trials, before)
    result.update(resumed_exit=again.returncode, completed_before_kill=len(before))
    return result


# ---- several processes on one run folder ------------------------------------------------------

def concurrent(scratch: Path, processes: int, stagger_s: float, trials: int, kill_one: bool = False) -> dict:
    name = f"c{processes}{'s' if stagger_s else 'a'}{'k' if kill_one else ''}"
    experiment = write_experiment(scratch, name, trials)
    run_dir = scratch / "runs" / name
    procs = []
    for i in range(processes):
        if i and stagger_s:
            time.sleep(stagger_s)
        procs.append(start(experiment))
    killed_at, killed = None, None
    if kill_one:  # once every process is training a trial, kill -9 the last one
        wait_for(lambda: len(running_with_heartbeat(run_dir)) == processes)
        killed = procs[-1]
        killed.send_signal(signal.SIGKILL)
        killed_at = time.time()
    outputs = [p.communicate(timeout=1200) for p in procs]
    result = audit(run_dir, trials)
    failed = [i for i, p in enumerate(procs) if p is not killed and p.returncode != 0]
    for i in failed:
        print(f"  {name} process {i} exit {procs[i].returncode}: {outputs[i][1][-800:]}")
    result.update(processes=processes, start="staggered" if stagger_s else "at once", failed_processes=len(failed))
    if kill_one:
        stale = [t for t in trials_of(run_dir) if t.state == optuna.trial.TrialState.FAIL and
                 not t.user_attrs.get("fail_reason")]
        result["failed_by_heartbeat"] = sorted(t.number for t in stale)
        result["seconds_until_failed"] = [round(t.datetime_complete.timestamp() - killed_at, 1) for t in stale]
        result["grace_seconds"] = GRACE_S
    return result


# ---- a Ray worker killed ---------------------------------------------------------------------

def ray_worker_killed(scratch: Path, trials: int = 4) -> dict:
    experiment = write_experiment(scratch, "ray", trials)
    run_dir = scratch / "runs" / "ray"
    proc = start(experiment, "--workers", "2")
    wait_for(lambda: busy_ray_workers(proc.pid) or proc.poll() is not None, timeout=600)
    time.sleep(2)  # well inside the trial
    workers = busy_ray_workers(proc.pid)
    if workers:
        os.kill(workers[0], signal.SIGKILL)
    out, err = proc.communicate(timeout=1200)
    result = audit(run_dir, trials)
    reasons = [t.user_attrs.get("fail_reason", "") for t in trials_of(run_dir)
               if t.state == optuna.trial.TrialState.FAIL]
    return {"study_finished": proc.returncode == 0 and result["budget_met"], "worker_killed": bool(workers),
            "exit": proc.returncode, "fail_reasons": reasons, **result}


def main() -> dict:
    scenarios: dict = {}
    started = time.monotonic()
    scenarios["malformed_experiments"] = malformed()
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        scenarios["kill9"] = kill9_then_resume(scratch)
        runs = [concurrent(scratch, 2, 0, 6), concurrent(scratch, 2, 8, 6),
                concurrent(scratch, 3, 0, 9), concurrent(scratch, 3, 8, 9),
                concurrent(scratch, 3, 0, 9, kill_one=True)]
        scenarios["concurrent"] = runs
        scenarios["ray_worker_killed"] = ray_worker_killed(scratch)
    runs_together = scenarios["concurrent"]
    result = {
        "malformed_experiments": scenarios["malformed_experiments"],
        "kill9_trials_lost": scenarios["kill9"]["lost"],
        "kill9_trials_repeated": scenarios["kill9"]["repeated"],
        "concurrent_processes": {
            "processes": max(r["processes"] for r in runs_together),
            "trials": sum(r["counted"] for r in runs_together),
            "lost": sum(r["lost"] for r in runs_together),
            "repeated": sum(r["repeated"] for r in runs_together),
            "failed_processes": sum(r["failed_processes"] for r in runs_together),
        },
        "ray_worker_killed": {"study_finished": scenarios["ray_worker_killed"]["study_finished"]},
    }
    out = ROOT / "benchmarks" / "results" / "faults.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    scenarios["seconds"] = round(time.monotonic() - started, 1)
    (out.parent / "faults_scenarios.json").write_text(json.dumps(scenarios, indent=2, default=str) + "\n")
    print(f"{out.relative_to(ROOT)}: {json.dumps(result)}")
    return result


if __name__ == "__main__":
    main()
