"""Every malformed experiment of the corpus (tests/malformed/): exit 2, one line naming the file
(and the line and key path), no traceback, nothing written, no YAML tag executed."""
import contextlib
import io
import os

import pytest

from autotune.cli import main
from malformed_corpus import CORPUS, check_rejected, corpus_cases, make_sandbox, problem_with, snapshot


def test_the_corpus_has_every_kind(tmp_path):
    cases = corpus_cases(tmp_path)
    assert len(cases) >= 120
    labels = " ".join(c.label for c in cases)
    for kind in ("binary", "latin1", "deep_list_5000", "name_len_300", "name_dotdot", "name_dot", "output_dir_under_a_file",
                 "output_dir_proc", "tag_python_name", "seed_1e23", "samples_1e12", "split_nan", "storage_unknown_scheme",
                 "storage_postgres_no_driver", "storage_sqlite_missing_folder", "lr_nan", "timeout_nan"):
        assert kind in labels, kind


def run_in_process(case, sandbox):
    """`autotune run` on the case, in this process (fast); a traceback is an exception escaping main."""
    out, err = io.StringIO(), io.StringIO()
    cwd = os.getcwd()
    os.chdir(sandbox)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(["run", str(case.path)])
    finally:
        os.chdir(cwd)
    return code, out.getvalue(), err.getvalue()


def test_every_malformed_experiment_is_refused_cleanly(tmp_path):
    problems = []
    for case in corpus_cases(tmp_path):
        sandbox = make_sandbox(tmp_path / f"sandbox_{case.label}")
        before = snapshot(sandbox, CORPUS)
        code, out, err = run_in_process(case, sandbox)
        problem = problem_with(case, code, out, err, before, snapshot(sandbox, CORPUS))
        if problem:
            problems.append(f"{case.label}: {problem}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("label", ["binary_garbage", "deep_map_5000", "tag_python_apply", "generated_hostile_file_name"])
def test_refused_by_the_real_command(label, tmp_path):
    """The same through `python -m autotune` in its own process: what a user sees."""
    case = next(c for c in corpus_cases(tmp_path) if c.label == label)
    assert check_rejected(case, dict(os.environ), tmp_path) is None
