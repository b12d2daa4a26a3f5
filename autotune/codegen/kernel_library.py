"""The kernel library: generic C99 in `kernels/`, per-core variants in `kernels/<library>/`.

The generic files implement every kernel symbol; the host build and the bit-exactness tests
compile them. A variant has the same file name, function names and parameter structs as the
generic file it replaces, so the generated model.c is the same for every target: a sources
directory carries the generic files and, in `<library>/` beside them, every variant of them, and
a firmware build compiles the variants of the libraries its target lists
(`Target.kernel_libraries`, `device_runners.build.select_sources`). Headers in a library
directory are private to its variants.
"""
from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

KERNEL_DIR = Path(__file__).parent / "kernels"


def copy_kernels(names: Sequence[str], out_dir: Path, root: Path | None = None) -> tuple[Path, ...]:
    """Copy the generic kernel files `names` from `root` (default KERNEL_DIR) into `out_dir`, and
    each library's variants of them into `out_dir/<library>/`; kernel files an earlier generation
    left there are removed (a build compiles every .c file). Returns the generic copies."""
    root = Path(root or KERNEL_DIR)
    out_dir = Path(out_dir)
    wanted = {out_dir / n: root / n for n in names}
    stale = set(out_dir.glob("at_*.[ch]"))
    for library in sorted(d for d in root.iterdir() if d.is_dir()):
        variants = {out_dir / library.name / n: library / n for n in names if (library / n).is_file()}
        if any(copy.suffix == ".c" for copy in variants):
            variants |= {out_dir / library.name / h.name: h for h in library.glob("*.h")}
        wanted |= variants
        stale |= set((out_dir / library.name).glob("*.[ch]"))
    for path in stale - set(wanted):
        path.unlink()
        if path.parent != out_dir and not any(path.parent.iterdir()):
            path.parent.rmdir()
    for copy, original in wanted.items():
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(original, copy)
    return tuple(out_dir / n for n in names)
