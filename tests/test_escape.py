"""User text in generated files: every way out of a C or Makefile comment is closed."""
import subprocess

from autotune.escape import c_comment, make_comment, one_line

HOSTILE = ["a*/b", "a/*b", "x??/", "x???/", "line\nCC = touch INJECTED; gcc", "tab\tand\rreturn", "end\\",
           "café ☃", "nul\x00", "$(shell touch SHELLED)", "`touch TICKED`", "'\"", "*/*/*/", "??=??(??<"]


def test_one_line_is_printable_ascii():
    for text in HOSTILE:
        line = one_line(text)
        assert "\n" not in line and "\r" not in line and all(" " <= c <= "~" for c in line), text
    assert one_line("x" * 500, limit=10) == "x" * 10 + "..."


def test_c_comments_compile_with_werror(tmp_path):
    """Each hostile text in a block comment, compiled by the real gcc with -Wall -Wextra -Werror:
    a comment end, a nested start or a trigraph that splices lines would fail it."""
    lines = [f"/* {c_comment(t)} */\n/*\n * {c_comment(t)}\n */" for t in HOSTILE]
    source = tmp_path / "comments.c"
    source.write_text("\n".join(lines) + "\nint main(void) { return 0; }\n")
    proc = subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-Wtrigraphs", "-trigraphs",
                           str(source), "-o", str(tmp_path / "a.out")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert subprocess.run([str(tmp_path / "a.out")]).returncode == 0


def test_makefile_comments_run_nothing(tmp_path):
    """Each hostile text as a comment line, then a rule using $(CC): an escaped newline would
    define CC, a trailing backslash would swallow the rule."""
    makefile = "CC = cc\n" + "".join(f"# {make_comment(t)}\n" for t in HOSTILE) + "all:\n\t@$(CC) --version >/dev/null && echo ok\n"
    (tmp_path / "Makefile").write_text(makefile)
    proc = subprocess.run(["make", "-s"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout + proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Makefile"]


def test_dashboard_escapes_what_it_shows(tmp_path):
    """Parameter values reach the dashboard's hover text: HTML-escaped, never markup."""
    from pathlib import Path

    from autotune.config import Experiment
    from autotune.report.dashboard import dashboard_html
    from autotune.report.records import TrialRecord

    metrics = {"accuracy": 0.5, "accuracy_n": 50, "accuracy_ci95": [0.4, 0.6], "test_accuracy": 0.5,
               "test_accuracy_n": 50, "test_accuracy_ci95": [0.4, 0.6], "flash_kb": 10.0, "ram_kb": 5.0,
               "latency_ms": 2.0, "params_count": 100, "macs": 1000}
    record = TrialRecord(number=0, state="COMPLETE", metrics=metrics,
                         params={"kind": "</script><script>alert('x')</script><b onmouseover=alert(1)>"})
    page = dashboard_html([record], Experiment(name="e", path=Path("e.yaml")))
    assert "<script>alert" not in page and "<b onmouseover" not in page
    assert "kind = &lt;\\u002fscript&gt;&lt;script&gt;alert(&#x27;x&#x27;)" in page  # shown as text
