"""`autotune profile BUNDLE --target RUNNER`: a bundle's firmware on a simulator or a board.

The runner comes from the runner registry (`device_runners.runners.RUNNERS`: rp2040-sim,
nano33ble-sim, rp2040js, rp2040 with `--port`, apollo5-sim); its target is the one that lists it,
its image the bundle's firmware/<image name>.elf (apollo5-sim: the apollo5 objects linked for
QEMU, `apollo5-sim.elf`). Every test
vector of the bundle (test/test_vectors.npz) is run in order and its output checked against the
expected one. Reported: the cycles of the first run (cold: the XIP cache starts empty on
rp2040-sim) and of the later ones (warm), and per kernel call of the last run its symbol,
cycles, microseconds at the target clock, instructions, zero-wait cycles and XIP cache hits and
misses, where the runner gives them. A board gives totals only. The table is printed and
written to BUNDLE/profile_<runner>.csv (`write_bundle` writes the same table for each target's
default runner on the first test vector; `autotune profile` replaces it with the last vector's).

Op, MACs and weight bytes per call come from the kernel plan of the bundle's model.tflite, its
weights stored as the model card's `weight_storage` says (as the firmware was generated): each
function the entry called is matched to its kernel-plan call by symbol (attribute_cycles).
"""
from __future__ import annotations

import csv
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import yaml

from autotune.compress.storage import card_encodings, with_storage
from autotune.errors import AutotuneError, ConfigError
from autotune.escape import one_line
from autotune.ir.graph import Graph
from autotune.ir.kernel_plan import KernelPlan, attribute_cycles
from autotune.ir.tflite_import import import_tflite
from autotune.lowering import lower
from device_runners.runners import SimResult, image_name, open_runner, runner_target
from device_runners.targets import get_target

ENTRY = "model_invoke"  # bundles' generated entry point
TEST_VECTORS = "test/test_vectors.npz"  # a bundle's inputs and expected outputs (written by write_bundle)
CARD = "model_card.yaml"
WEIGHT_STORAGE = "weight_storage"  # the card's field for coded weight tensors (compress.storage.card_entries)


@dataclass(frozen=True)
class CallProfile:
    """One kernel call of the model's entry function."""

    kernel: str
    cycles: int | None
    microseconds: float | None
    instructions: int | None
    zero_wait_cycles: int | None
    xip_hits: int | None
    xip_misses: int | None
    op: str | None = None  # "<op index> <kind>" of the kernel-plan call
    macs: int | None = None
    weight_bytes: int | None = None  # its weights as stored

    @property
    def macs_per_cycle(self) -> float | None:
        return round(self.macs / self.cycles, 3) if self.macs and self.cycles else None

    def row(self) -> dict:
        """Its fields and MACs per cycle: a row of profile_<runner>.csv and of exports.json."""
        return {**asdict(self), "macs_per_cycle": self.macs_per_cycle}


@dataclass(frozen=True)
class Profile:
    runner: str
    target: str
    source: str  # the runner's provenance, e.g. measured:rp2040-sim (...)
    runs: tuple[SimResult, ...]  # one per test vector, in order; the first is cold
    calls: tuple[CallProfile, ...]  # of the last run

    @property
    def cold(self) -> SimResult:
        return self.runs[0]

    @property
    def warm(self) -> tuple[SimResult, ...]:
        return self.runs[1:] or self.runs

    def microseconds(self, cycles: float | None) -> float | None:
        return None if cycles is None else cycles / get_target(self.target).clock_hz * 1e6


def profile_bundle(bundle: Path, runner_name: str, port: str | None = None, vectors: int | None = None) -> Profile:
    """Run the bundle's test vectors on `runner_name`; every output must be the expected one."""
    bundle = Path(bundle)
    target = runner_target(runner_name)
    elf = bundle / "firmware" / f"{image_name(runner_name)}.elf"
    vectors_path = bundle / TEST_VECTORS
    if not elf.is_file() or not vectors_path.is_file():
        missing = elf if not elf.is_file() else vectors_path
        raise ConfigError(f"{bundle}: no {missing.relative_to(bundle)}: not a bundle with firmware (export it "
                          "again with `autotune export` or `autotune import`), or one whose model does not fit "
                          f"{runner_name} (its {CARD} says so under measured or simulated)")
    graph, card_says = _stored_model(bundle)  # a bad card before a long run
    with np.load(vectors_path) as data:
        inputs, expected = data["inputs"], data["expected"]
    if vectors is not None:
        inputs, expected = inputs[:vectors], expected[:vectors]
    options = {"port": port} if port is not None else {}
    runner = open_runner(runner_name, elf, ENTRY, **options)
    runs = []
    try:
        for n, (x, want) in enumerate(zip(inputs, expected)):
            result = runner.run(x)
            if result.status != 0 or not np.array_equal(result.output, want.reshape(-1)):
                raise AutotuneError(f"{bundle}: test vector {n} on {runner_name}: output {result.output.tolist()} "
                                    f"(status {result.status}), expected {want.reshape(-1).tolist()}")
            runs.append(result)
    finally:
        if hasattr(runner, "close"):
            runner.close()
    try:
        calls = call_profiles(lower(graph), runs[-1], target)
    except ValueError as exc:  # attribute_cycles: the firmware does not run the plan's calls
        raise AutotuneError(f"{bundle}: {exc}" + ("" if card_says else
                            f"; its {CARD} has no {WEIGHT_STORAGE} (an older bundle) to say how its weights "
                            "are stored: export or import it again")) from None
    return Profile(runner_name, target, runner.source, tuple(runs), calls)


def _stored_model(bundle: Path) -> tuple[Graph, bool]:
    """The bundle's model.tflite with its weight tensors stored as its firmware has them (the
    card's weight_storage), and whether the card says (a card written before it did not)."""
    graph = import_tflite(bundle / "model.tflite")
    path = bundle / CARD
    try:
        card = yaml.safe_load(path.read_text()) if path.is_file() else None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{path}: cannot read the model card ({one_line(exc)})") from None
    if not isinstance(card, dict) or WEIGHT_STORAGE not in card:
        return graph, False
    return with_storage(graph, card_encodings(graph, card[WEIGHT_STORAGE], f"{path}: {WEIGHT_STORAGE}")), True


def call_profiles(plan: KernelPlan, result: SimResult, target: str) -> tuple[CallProfile, ...]:
    """Each kernel-plan call of one run (a filter-at-a-time loop's calls added up) with its op,
    MACs and weight bytes."""
    clock = get_target(target).clock_hz
    return tuple(CallProfile(r.symbol, r.cycles, None if r.cycles is None else r.cycles / clock * 1e6,
                             r.instructions, r.zero_wait_cycles, r.xip_hits, r.xip_misses,
                             f"{call.op} {call.kind}", call.macs, call.weight_bytes)
                 for r in attribute_cycles(plan, result.ops) for call in (plan.calls[r.call],))


def write_csv(calls: tuple[CallProfile, ...], path: Path) -> None:
    with Path(path).open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["call", *(f.name for f in fields(CallProfile)), "macs_per_cycle"])
        for n, call in enumerate(calls):
            writer.writerow([n, *("" if v is None else v for v in call.row().values())])


def _mean(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return float(np.mean(values)) if values else None


def format_profile(profile: Profile) -> str:
    """The summary and the per-call table, as printed."""
    def num(v, digits: int = 0) -> str:
        return "-" if v is None else f"{v:,.{digits}f}"

    warm = profile.warm
    cycles = _mean([r.cycles for r in warm])
    lines = [f"{profile.runner} ({profile.target}, {get_target(profile.target).clock_hz / 1e6:g} MHz): "
             f"{len(profile.runs)} test vectors, every output as expected",
             f"  source: {profile.source}",
             f"  first run (cold): {num(profile.cold.cycles)} cycles, {num(profile.microseconds(profile.cold.cycles), 1)} us"
             + (f", {profile.cold.xip_misses:,} XIP misses" if profile.cold.xip_misses is not None else ""),
             f"  later runs (warm, mean of {len(warm)}): {num(cycles)} cycles, {num(profile.microseconds(cycles), 1)} us"]
    if warm[-1].zero_wait_cycles is not None and warm[-1].xip_misses is not None:
        lines.append(f"  zero-wait lower bound: {num(_mean([r.zero_wait_cycles for r in warm]))} cycles; "
                     f"XIP misses per run {num(_mean([r.xip_misses for r in warm]), 1)}")
    if warm[-1].instructions is not None:
        lines.append(f"  instructions: {num(_mean([r.instructions for r in warm]))}")
    if profile.calls:
        lines += ["", f"  {'call':>4}  {'op':<22} {'kernel':<22} {'MACs':>8} {'cycles':>12} {'us':>10} "
                      f"{'MACs/cycle':>10} {'weight B':>8} {'instructions':>12} {'zero-wait':>12} "
                      f"{'XIP hits':>10} {'misses':>7}"]
        for n, c in enumerate(profile.calls):
            lines.append(f"  {n:>4}  {c.op or '-':<22} {c.kernel:<22} {num(c.macs):>8} {num(c.cycles):>12} "
                         f"{num(c.microseconds, 1):>10} {num(c.macs_per_cycle, 2):>10} {num(c.weight_bytes):>8} "
                         f"{num(c.instructions):>12} {num(c.zero_wait_cycles):>12} "
                         f"{num(c.xip_hits):>10} {num(c.xip_misses):>7}")
    return "\n".join(lines)
