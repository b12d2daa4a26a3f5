"""The experiment YAML: parsing and validation into frozen dataclasses.

Every error names the file, the key path and the line, e.g.
`experiments/spectral.yaml:14: budget.trials: expected an integer >= 1, got -3`.
The fields and their defaults are documented in README.md ("Experiment YAML").
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from autotune.data import DataSpec
from autotune.errors import ConfigError
from device_runners.targets import TARGETS
from search_spaces import FAMILIES
from search_spaces.base import Choice, FloatRange, IntRange, ParamSpec

OBJECTIVES = ("accuracy", "flash", "ram", "latency")  # accuracy is maximised, the rest minimised
SAMPLERS = ("nsga2", "tpe", "random")
DATA_SOURCES = ("synthetic_spectral", "npz", "csv")


@dataclass(frozen=True)
class Constraints:
    max_flash_kb: float | None = None
    max_ram_kb: float | None = None
    max_latency_ms: float | None = None
    max_params: int | None = None
    min_accuracy: float | None = None  # None: the majority-class rate plus a margin (training.chance_margin)


@dataclass(frozen=True)
class Budget:
    trials: int = 40
    timeout_minutes: float | None = None
    epochs: int = 10


@dataclass(frozen=True)
class Augment:
    shift: float = 0.1  # random shift, at most this fraction of the length (1-D) or of height and width
    scale: float = 0.1  # 1-D: amplitude times U(1 - scale, 1 + scale)
    jitter: float = 0.03  # 1-D: Gaussian noise of this std (inputs are normalised per example)
    mixup: float = 0.2  # Beta(mixup, mixup) mixing of example pairs; 0 turns it off
    flip: bool = False  # images: random left-right flips (only where a mirrored input keeps its class)


@dataclass(frozen=True)
class Training:
    batch_size: int | None = None  # None: auto_batch_size (at least ~32 steps an epoch, 8 to 128)
    learning_rate: float = 0.005  # peak, after the warm-up; cosine decay to zero
    weight_decay: float = 1e-4  # AdamW
    warmup_epochs: int = 3
    label_smoothing: float = 0.1
    class_weights: bool = True  # weight each class by the inverse of its frequency
    min_steps: int = 600  # at least this many optimizer steps: more epochs when an epoch is a few batches
    patience: int = 10  # early stopping on validation loss (a validation split only; k-fold runs all epochs)
    restarts: int = 1  # new initial weights when a run ends at chance
    qat_epochs: int = 0  # quantization-aware fine-tuning epochs after float training (0: off, see README)
    augment: Augment = field(default_factory=Augment)


@dataclass(frozen=True)
class Compression:
    """Reserved: only plain int8 is searched until the compression work lands."""

    sparsity: tuple[float, ...] = (0.0,)
    bitwidths: tuple[int, ...] = (8,)
    codecs: tuple[str, ...] = ("none",)


@dataclass(frozen=True)
class Experiment:
    name: str
    path: Path  # the YAML it came from
    seed: int = 0
    data: DataSpec = field(default_factory=DataSpec)
    family: str = "spectral_cnn"
    space: dict[str, ParamSpec] = field(default_factory=dict)  # overrides of the family's ranges
    compression: Compression = field(default_factory=Compression)
    target: str = "rp2040"
    placement: str = "flash"  # device_runners.build.PLACEMENTS the target offers: weights or kernels in SRAM
    constraints: Constraints = field(default_factory=Constraints)
    objectives: tuple[str, ...] = OBJECTIVES
    budget: Budget = field(default_factory=Budget)
    training: Training = field(default_factory=Training)
    sampler: str = "nsga2"
    population: int = 10  # NSGA-II population size
    storage: str | None = None  # None: SQLite in the run folder
    workers: int = 1
    output_dir: Path = Path("runs")

    @property
    def run_dir(self) -> Path:
        return self.output_dir / self.name

    @property
    def storage_url(self) -> str:
        return self.storage or f"sqlite:///{(self.run_dir / 'study.db').resolve()}"


def load_experiment(path: str | Path) -> Experiment:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the experiment file ({exc.strerror})") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise ConfigError(f"{path}{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if node is None or not isinstance(node, yaml.MappingNode):
        raise ConfigError(f"{path}: the experiment must be a YAML mapping (key: value)")
    return _Reader(path, node).experiment()


class _Reader:
    """Walks the YAML node tree so every value keeps its line for error messages."""

    def __init__(self, path: Path, root: yaml.MappingNode):
        self.path = path
        self.root = root
        self._loader = yaml.SafeLoader("")  # constructs scalars (ints, floats, bools, null)

    # -- helpers -------------------------------------------------------------------------------
    def fail(self, key: str, node: yaml.Node | None, message: str) -> None:
        line = f":{node.start_mark.line + 1}" if node is not None else ""
        raise ConfigError(f"{self.path}{line}: {key}: {message}")

    def mapping(self, node: yaml.Node, key: str, allowed: tuple[str, ...]) -> dict[str, yaml.Node]:
        if not isinstance(node, yaml.MappingNode):
            self.fail(key, node, "expected a mapping (key: value)")
        out: dict[str, yaml.Node] = {}
        for k, v in node.value:
            name = k.value
            full = f"{key}.{name}" if key else name
            if name in out:
                self.fail(full, k, "duplicate key")
            if name not in allowed:
                self.fail(full, k, f"unknown key; expected one of: {', '.join(allowed)}")
            out[name] = v
        return out

    def scalar(self, node: yaml.Node, key: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            self.fail(key, node, "expected a single value")
        return self._loader.construct_object(node)

    def number(self, node, key, kind=float, low=None, high=None, allow_none=False):
        value = self.scalar(node, key)
        if value is None and allow_none:
            return None
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if kind is int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        what = "an integer" if kind is int else "a number"
        bounds = ""
        if low is not None and high is not None:
            bounds = f" in [{low}, {high}]"
        elif low is not None:
            bounds = f" >= {low}"
        if not ok or (low is not None and value < low) or (high is not None and value > high):
            self.fail(key, node, f"expected {what}{bounds}, got {value!r}")
        return kind(value)

    def positive(self, node, key, kind=float):
        value = self.number(node, key, kind, allow_none=True)
        if value is not None and value <= 0:
            self.fail(key, node, f"expected a positive number, got {value!r}")
        return value

    def string(self, node, key, choices=None, allow_none=False) -> str | None:
        value = self.scalar(node, key)
        if value is None and allow_none:
            return None
        if not isinstance(value, str) or not value:
            self.fail(key, node, f"expected a string, got {value!r}")
        if choices and value not in choices:
            self.fail(key, node, f"expected one of {', '.join(choices)}, got {value!r}")
        return value

    def boolean(self, node, key) -> bool:
        value = self.scalar(node, key)
        if not isinstance(value, bool):
            self.fail(key, node, f"expected true or false, got {value!r}")
        return value

    def sequence(self, node, key) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            self.fail(key, node, "expected a non-empty list")
        return node.value

    # -- sections -------------------------------------------------------------------------------
    def experiment(self) -> Experiment:
        top = self.mapping(self.root, "", ("name", "seed", "data", "model", "compression", "target",
                                            "placement", "constraints", "objectives", "budget", "training",
                                            "search", "storage", "workers", "output_dir"))
        if "name" not in top:
            self.fail("name", self.root, "missing (the run folder is runs/<name>)")
        name = self.string(top["name"], "name")
        if not all(c.isalnum() or c in "-_." for c in name):
            self.fail("name", top["name"], f"use letters, digits, '-', '_' and '.' only, got {name!r}")
        kw: dict[str, Any] = {"name": name, "path": self.path}
        if "seed" in top:
            kw["seed"] = self.number(top["seed"], "seed", int, low=0)
        if "data" in top:
            kw["data"] = self.data(top["data"])
        if "model" in top:
            kw["family"], kw["space"] = self.model(top["model"])
        if "compression" in top:
            kw["compression"] = self.compression(top["compression"])
        if "target" in top:
            kw["target"] = self.string(top["target"], "target", tuple(TARGETS))
        if "placement" in top:
            offered = ("flash", *TARGETS[kw.get("target", "rp2040")].placements)
            kw["placement"] = self.string(top["placement"], "placement", offered)
        if "constraints" in top:
            kw["constraints"] = self.constraints(top["constraints"])
        if "objectives" in top:
            objs = [self.string(n, "objectives", OBJECTIVES) for n in self.sequence(top["objectives"], "objectives")]
            if len(set(objs)) != len(objs):
                self.fail("objectives", top["objectives"], "each objective may appear once")
            kw["objectives"] = tuple(objs)
        if "budget" in top:
            kw["budget"] = self.budget(top["budget"])
        if "training" in top:
            kw["training"] = self.training(top["training"])
        if "search" in top:
            s = self.mapping(top["search"], "search", ("sampler", "population"))
            if "sampler" in s:
                kw["sampler"] = self.string(s["sampler"], "search.sampler", SAMPLERS)
            if "population" in s:
                kw["population"] = self.number(s["population"], "search.population", int, low=2)
        if "storage" in top:
            kw["storage"] = self.string(top["storage"], "storage", allow_none=True)
        if "workers" in top:
            kw["workers"] = self.number(top["workers"], "workers", int, low=1)
        if "output_dir" in top:
            kw["output_dir"] = Path(self.string(top["output_dir"], "output_dir"))
        return Experiment(**kw)

    def data(self, node) -> DataSpec:
        d = self.mapping(node, "data", ("source", "path", "val_path", "test_path", "samples_per_class", "length",
                                        "input_shape", "split", "normalize", "cv_below", "cv_folds", "cv_repeats"))
        kw: dict[str, Any] = {}
        if "source" in d:
            kw["source"] = self.string(d["source"], "data.source", DATA_SOURCES)
        for key in ("path", "val_path", "test_path"):  # relative to the YAML's folder, stored absolute
            if key in d:
                p = Path(self.string(d[key], f"data.{key}"))
                kw[key] = str(p if p.is_absolute() else (self.path.parent / p).resolve())
        if kw.get("source") in ("npz", "csv") and "path" not in kw:
            self.fail("data.path", node, f"required when data.source is {kw['source']}")
        for key in ("val_path", "test_path"):
            if key in kw and kw.get("source") != "csv":
                self.fail(f"data.{key}", d[key], "csv only (an npz file holds its splits as x_val/y_val, x_test/y_test)")
        for key, low in (("cv_below", 0), ("cv_folds", 2), ("cv_repeats", 1)):
            if key in d:
                kw[key] = self.number(d[key], f"data.{key}", int, low=low)
        if "samples_per_class" in d:
            kw["samples_per_class"] = self.number(d["samples_per_class"], "data.samples_per_class", int, low=10)
        if "length" in d:
            kw["length"] = self.number(d["length"], "data.length", int, low=16, high=65536)
        if "input_shape" in d:
            dims = [self.number(n, "data.input_shape", int, low=1) for n in self.sequence(d["input_shape"], "data.input_shape")]
            if len(dims) not in (2, 3):
                self.fail("data.input_shape", d["input_shape"], "expected [length, channels] or [height, width, channels]")
            kw["input_shape"] = tuple(dims)
        if "split" in d:
            parts = [self.number(n, "data.split", float, low=0.0, high=1.0) for n in self.sequence(d["split"], "data.split")]
            if len(parts) != 3 or abs(sum(parts) - 1.0) > 1e-6 or min(parts) <= 0:
                self.fail("data.split", d["split"], f"expected three positive fractions [train, val, test] summing to 1, got {parts}")
            kw["split"] = tuple(parts)
        if "normalize" in d:
            kw["normalize"] = self.string(d["normalize"], "data.normalize", ("per_sample", "none"))
        return DataSpec(**kw)

    def model(self, node) -> tuple[str, dict[str, ParamSpec]]:
        m = self.mapping(node, "model", ("family", "space"))
        family = self.string(m["family"], "model.family", tuple(FAMILIES)) if "family" in m else "spectral_cnn"
        defaults = FAMILIES[family].defaults
        space: dict[str, ParamSpec] = {}
        if "space" in m:
            for key, spec_node in self.mapping(m["space"], "model.space", tuple(defaults)).items():
                space[key] = self.param(spec_node, f"model.space.{key}", defaults[key])
        return family, space

    def param(self, node, key, default: ParamSpec) -> ParamSpec:
        """A list gives choices; a mapping {low, high[, step | log]} a range of the default's kind."""
        if isinstance(node, yaml.SequenceNode):
            options = [self.scalar(n, key) for n in self.sequence(node, key)]
            reference = default.options if isinstance(default, Choice) else (default.low,)
            kinds = {type(v) for v in reference}
            for value, n in zip(options, node.value):
                if type(value) not in kinds and not (float in kinds and isinstance(value, int) and not isinstance(value, bool)):
                    self.fail(key, n, f"expected values like {list(reference)}, got {value!r}")
                if isinstance(value, (int, float)) and not isinstance(value, bool) and value <= 0:
                    self.fail(key, n, f"expected a positive value, got {value!r}")
            return Choice(tuple(options))
        if isinstance(default, Choice):
            self.fail(key, node, f"expected a list of choices like {list(default.options)}")
        allowed = ("low", "high", "step") if isinstance(default, IntRange) else ("low", "high", "log")
        r = self.mapping(node, key, allowed)
        for bound in ("low", "high"):
            if bound not in r:
                self.fail(f"{key}.{bound}", node, "missing")
        if isinstance(default, IntRange):
            low = self.number(r["low"], f"{key}.low", int, low=1)
            high = self.number(r["high"], f"{key}.high", int, low=low)
            step = self.number(r["step"], f"{key}.step", int, low=1) if "step" in r else 1
            return IntRange(low, high, step)
        low = self.positive(r["low"], f"{key}.low")
        high = self.number(r["high"], f"{key}.high", float, low=low)
        log = bool(self.scalar(r["log"], f"{key}.log")) if "log" in r else default.log
        return FloatRange(low, high, log)

    def compression(self, node) -> Compression:
        c = self.mapping(node, "compression", ("sparsity", "bitwidths", "codecs"))
        supported = Compression()
        for key, value in c.items():
            got = tuple(self.scalar(n, f"compression.{key}") for n in self.sequence(value, f"compression.{key}"))
            if got != getattr(supported, key):
                self.fail(f"compression.{key}", value,
                          f"only {list(getattr(supported, key))} is supported in this version, got {list(got)}")
        return supported

    def constraints(self, node) -> Constraints:
        c = self.mapping(node, "constraints", ("max_flash_kb", "max_ram_kb", "max_latency_ms", "max_params",
                                               "min_accuracy"))
        kw = {k: self.positive(v, f"constraints.{k}", int if k == "max_params" else float)
              for k, v in c.items() if k != "min_accuracy"}
        if "min_accuracy" in c:
            kw["min_accuracy"] = self.number(c["min_accuracy"], "constraints.min_accuracy", float, low=0.0,
                                             high=1.0, allow_none=True)
        return Constraints(**kw)

    def budget(self, node) -> Budget:
        b = self.mapping(node, "budget", ("trials", "timeout_minutes", "epochs"))
        kw: dict[str, Any] = {}
        if "trials" in b:
            kw["trials"] = self.number(b["trials"], "budget.trials", int, low=1)
        if "timeout_minutes" in b:
            kw["timeout_minutes"] = self.positive(b["timeout_minutes"], "budget.timeout_minutes")
        if "epochs" in b:
            kw["epochs"] = self.number(b["epochs"], "budget.epochs", int, low=1, high=1000)
        return Budget(**kw)

    def training(self, node) -> Training:
        t = self.mapping(node, "training", ("batch_size", "learning_rate", "weight_decay", "warmup_epochs",
                                            "label_smoothing", "class_weights", "min_steps", "patience", "restarts",
                                            "qat_epochs", "augment"))
        kw: dict[str, Any] = {}
        if "batch_size" in t:
            kw["batch_size"] = None if self.scalar(t["batch_size"], "training.batch_size") == "auto" else \
                self.number(t["batch_size"], "training.batch_size", int, low=1, high=65536)
        numbers = {"learning_rate": (float, 1e-7, 10.0),
                   "weight_decay": (float, 0.0, 1.0), "warmup_epochs": (int, 0, 1000),
                   "label_smoothing": (float, 0.0, 0.5), "min_steps": (int, 0, None), "patience": (int, 1, None), "restarts": (int, 0, 10),
                   "qat_epochs": (int, 0, 1000)}
        for key, (kind, low, high) in numbers.items():
            if key in t:
                kw[key] = self.number(t[key], f"training.{key}", kind, low=low, high=high)
        if "class_weights" in t:
            kw["class_weights"] = self.boolean(t["class_weights"], "training.class_weights")
        if "augment" in t:
            a = self.mapping(t["augment"], "training.augment", ("shift", "scale", "jitter", "mixup", "flip"))
            akw: dict[str, Any] = {k: self.number(v, f"training.augment.{k}", float, low=0.0, high=1.0)
                                   for k, v in a.items() if k != "flip"}
            if "flip" in a:
                akw["flip"] = self.boolean(a["flip"], "training.augment.flip")
            kw["augment"] = Augment(**akw)
        return Training(**kw)
