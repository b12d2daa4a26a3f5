"""The corpus of malformed experiments (tests/malformed/) and what `autotune run` must do with
each: exit 2, one line on stderr naming the file (and, for the YAML, the line and key path),
no traceback, nothing written anywhere, no YAML tag executed.

Each YAML starts with `# expect: TEXT`, a piece of its error message (an optional second line
`# names: PATH` gives the file the message names, relative to tests/malformed/, when that is a
data file rather than the experiment). Files a header cannot go in (binary ones) are listed in
BINARY; cases no file can hold (a folder, a missing file, a huge file, a hostile file name) are
made by `corpus_cases`.
"""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from autotune.cli import printable

CORPUS = Path(__file__).resolve().parent / "malformed"
BINARY = {
    "binary_garbage.yaml": "not UTF-8 text",
    "utf16.yaml": ":1: not UTF-8 text (byte 0xff)",
    "elf_header.yaml": ":1: not valid YAML",
    "gzip.yaml": ":1: not UTF-8 text (byte 0x8b)",
}


@dataclass(frozen=True)
class Case:
    label: str
    path: Path  # the experiment file given to `autotune run`
    expect: str  # a piece of the one-line message
    names: Path  # the file the message must name


def corpus_cases(scratch: Path) -> list[Case]:
    cases = []
    for path in sorted(CORPUS.glob("*.yaml")):
        head = path.read_bytes()[:600].split(b"\n")
        if path.name in BINARY:
            cases.append(Case(path.stem, path, BINARY[path.name], path))
            continue
        assert head[0].startswith(b"# expect: "), f"{path}: no '# expect:' line"
        names = path
        if head[1].startswith(b"# names: "):
            names = CORPUS / head[1][len(b"# names: "):].decode()
        cases.append(Case(path.stem, path, head[0][len(b"# expect: "):].decode(), names))
    folder = scratch / "a_folder.yaml"
    folder.mkdir(exist_ok=True)
    huge = scratch / "huge.yaml"
    huge.write_text("name: a\n" + "# padding\n" * 120_000)
    hostile = scratch / "new\nline $(touch PWNED).yaml"
    hostile.write_text("name: a\nbudget:\n  trials: -1\n")
    missing = scratch / "missing.yaml"
    cases += [
        Case("generated_folder", folder, "cannot read the experiment file (Is a directory)", folder),
        Case("generated_missing_file", missing, "cannot read the experiment file (No such file or directory)", missing),
        Case("generated_huge_file", huge, "larger than 1024 KB; not an experiment file", huge),
        Case("generated_hostile_file_name", hostile, ":3: budget.trials: expected an integer in [1, 1000000]", hostile),
    ]
    return cases


def make_sandbox(folder: Path) -> Path:
    """The working folder of one case: a file, a file where a run folder would go, a symlink loop."""
    folder.mkdir(parents=True)
    (folder / "afile").write_text("not a folder\n")
    (folder / "blocked").mkdir()
    (folder / "blocked" / "clash").write_text("not a run folder\n")
    (folder / "loop").symlink_to("loop")
    return folder


def snapshot(*folders: Path) -> dict[str, tuple[int, int]]:
    """Every file and folder (size, modification time) under the folders, symlinks not followed."""
    seen = {}
    for top in folders:
        for root, dirs, files in os.walk(top):
            for name in dirs + files:
                st = os.lstat(os.path.join(root, name))
                seen[os.path.join(root, name)] = (st.st_size, st.st_mtime_ns)
    return seen


def problem_with(case: Case, returncode: int, stdout: str, stderr: str, before: dict, after: dict) -> str | None:
    """What is wrong with how the case was refused; None if it was refused cleanly."""
    lines = stderr.strip().splitlines()
    if returncode != 2:
        return f"exit {returncode}, expected 2: {stderr.strip()[-600:]}"
    if "Traceback" in stderr or len(lines) != 1:
        return f"expected one line on stderr, got {len(lines)}: {stderr.strip()[-600:]}"
    if stdout.strip():
        return f"printed on stdout: {stdout.strip()[:200]}"
    message = lines[0]
    if not message.startswith("autotune: error: ") or printable(str(case.names)) not in message:
        return f"the message does not name {case.names}: {message}"
    if case.expect not in message:
        return f"expected {case.expect!r} in: {message}"
    if before != after:
        changed = sorted(set(before.items()) ^ set(after.items()))
        return f"files were written: {changed[:5]}"
    return None


def check_rejected(case: Case, env: dict[str, str], scratch: Path) -> str | None:
    """Run `autotune run` on the case in a fresh sandbox, as a user would."""
    sandbox = make_sandbox(scratch / f"sandbox_{case.label}")
    before = snapshot(sandbox, CORPUS)
    proc = subprocess.run([sys.executable, "-m", "autotune", "run", str(case.path)], cwd=sandbox, env=env,
                          capture_output=True, text=True, timeout=300)
    return problem_with(case, proc.returncode, proc.stdout, proc.stderr, before, snapshot(sandbox, CORPUS))
