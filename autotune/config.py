"""The experiment YAML: parsing and validation into frozen dataclasses.

Every error names the file, the key path and the line, e.g.
`experiments/spectral.yaml:14: budget.trials: expected an integer in [1, 1000000], got -3`.
The fields and their defaults are documented in README.md ("Experiment YAML").
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from autotune.data import DataSpec
from autotune.data.spectral import CLASS_NAMES, MIN_LENGTH
from autotune.errors import ConfigError
from device_runners.targets import TARGETS
from search_spaces import FAMILIES
from search_spaces.base import Choice, FloatRange, IntRange, ParamSpec

OBJECTIVES = ("accuracy", "flash", "ram", "latency")  # accuracy is maximised, the rest minimised
SAMPLERS = ("gp", "tpe", "nsga2", "random")  # the first is the default: chosen by benchmarks/bench_search_efficiency.py
DATA_SOURCES = ("synthetic_spectral", "npz", "csv")

MAX_FILE_BYTES = 1 << 20  # an experiment is a few hundred bytes; refuse to parse anything huge
MAX_DEPTH = 32  # nesting deeper than any experiment needs (and than PyYAML's recursive composer takes)
MAX_SEED = 2**31 - 1  # a valid numpy / Optuna / TensorFlow seed with room for the offsets added to it
MAX_SYNTHETIC_BYTES = 2 << 30  # the synthetic set is held in memory as float32
MAX_PARAM = 4096  # the largest value a model.space parameter may take (filters, units, kernel, ...)
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # the run folder: one safe path component
YAML_TAG = "tag:yaml.org,2002:"
PLAIN_TAGS = {YAML_TAG + t for t in ("str", "int", "float", "bool", "null", "map", "seq", "timestamp", "binary",
                                     "merge")}


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
    min_steps: int = 600  # at least this many optimizer steps: longer epochs when an epoch is a few batches
    patience: int = 10  # early stopping on validation loss (a validation split only; k-fold runs all epochs)
    restarts: int = 1  # new initial weights when a run ends at chance (k-fold: or the exported model fits worse)
    qat_epochs: int = 0  # quantization-aware fine-tuning epochs after float training (0: off, see README)
    augment: Augment = field(default_factory=Augment)


@dataclass(frozen=True)
class EarlyStop:
    """A short first training decides whether the full one runs (autotune.study.should_stop)."""

    fraction: float = 0.25  # of the training rounds (epochs) run before the decision
    margin: float = 0.05  # short-run accuracy an earlier, no costlier candidate must beat it by


@dataclass(frozen=True)
class Compression:
    """Per weighted layer, the choices the search may make (one choice: fixed, not searched).

    Bit widths 8/4/2, clusters (0: none) and sparsity are trained in (autotune.compress.finetune,
    `finetune_epochs` when any layer is compressed). `channel_keep` is the fraction of a layer's
    output channels kept by structured pruning (autotune.compress.channels: whole filters
    removed, the smaller model fine-tuned for `finetune_epochs`). `codecs` are the storages a weight tensor may
    take: "none" (the plain array), "auto" (the smallest storage whose predicted decode cycles
    per inference fit `decode_budget_cycles`) or a storage of autotune.codecs by name.
    `first_last_int8` leaves the first and the last weighted layer plain int8 and unpruned (the
    common practice of low-bit quantization: few weights, the most sensitive); only their storage
    is chosen.
    """

    sparsity: tuple[float, ...] = (0.0,)
    bitwidths: tuple[int, ...] = (8,)
    clusters: tuple[int, ...] = (0,)
    channel_keep: tuple[float, ...] = (1.0,)
    codecs: tuple[str, ...] = ("none",)
    decode_budget_cycles: float | None = None  # None: no limit
    finetune_epochs: int = 5
    first_last_int8: bool = False

    @property
    def searched(self) -> bool:
        return any(len(c) > 1 for c in (self.sparsity, self.bitwidths, self.clusters, self.channel_keep, self.codecs))

    @property
    def trains(self) -> bool:
        """Whether any choice changes the weights (not only how they are stored)."""
        return self.sparsity != (0.0,) or self.bitwidths != (8,) or self.clusters != (0,) or self.channel_keep != (1.0,)


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
    sampler: str = SAMPLERS[0]
    population: int = 10  # NSGA-II population size
    starting_points: bool = True  # points spanning the space's cost range, then the family's known-good ones, tried first
    early_stop: EarlyStop | None = field(default_factory=EarlyStop)  # None: every candidate trains fully
    heartbeat_seconds: int = 10  # a process records a heartbeat for its running trials this often
    grace_seconds: int = 60  # a running trial without a heartbeat for this long is failed
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
        with path.open("rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the experiment file ({exc.strerror or exc})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_FILE_BYTES // 1024} KB; not an experiment file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text (byte 0x{raw[exc.start]:02x}); "
                          "save the experiment as UTF-8") from None
    try:
        _check_depth(text, path)
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        line = mark.line + 1 if mark else text[:getattr(exc, "position", 0)].count("\n") + 1
        where = f":{line}" if mark or isinstance(exc, yaml.reader.ReaderError) else ""
        problem = getattr(exc, "problem", None) or getattr(exc, "reason", None) or exc
        raise ConfigError(f"{path}{where}: not valid YAML: {_one_line(problem)}") from None
    if node is None or not isinstance(node, yaml.MappingNode):
        raise ConfigError(f"{path}: the experiment must be a YAML mapping (key: value)")
    _check_tags(node, path)
    return _Reader(path, node).experiment()


def _shown(value: object, limit: int = 60) -> str:
    """A value from the file as an error message shows it: repr (one line), bounded length."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "..."


def _num(x: float | int) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


def _one_line(text: object, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "..."


def _check_depth(text: str, path: Path) -> None:
    """Refuse deep nesting from the event stream (PyYAML's parser is iterative, its composer
    recursive: 5,000 nested lists would otherwise end in a RecursionError)."""
    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise ConfigError(f"{path}:{event.start_mark.line + 1}: nested more than {MAX_DEPTH} levels deep")
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            depth -= 1


def _check_tags(root: yaml.Node, path: Path) -> None:
    """Only plain YAML values: a tag such as !!python/object is refused, never constructed."""
    seen, stack = set(), [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:  # aliases may share or even cycle
            continue
        seen.add(id(node))
        if node.tag not in PLAIN_TAGS:
            raise ConfigError(f"{path}:{node.start_mark.line + 1}: YAML tag {_shown(node.tag)} is not allowed "
                              "(an experiment holds plain values only)")
        if isinstance(node, yaml.MappingNode):
            stack.extend(n for pair in node.value for n in pair)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)


def locate(path: Path, key: str) -> str:
    """`file:line` of a key path such as "output_dir" in an experiment YAML, for errors found
    after loading (`file` alone if the key is not in the file)."""
    try:
        node = yaml.compose(Path(path).read_text(encoding="utf-8"), Loader=yaml.SafeLoader)
        for part in key.split("."):
            node = next(v for k, v in node.value if k.value == part)
        return f"{path}:{node.start_mark.line + 1}"
    except Exception:  # noqa: BLE001 - only the line is missing from the message
        return str(path)


def folder_problem(folder: Path) -> str | None:
    """Why `folder` cannot be (or become) a writable folder, without writing: None if it can."""
    parts = Path(folder).parts
    if any(len(p.encode()) > 255 for p in parts):
        return "a path component is longer than 255 bytes"
    for i in range(1, len(parts) + 1):
        prefix = Path(*parts[:i])
        if prefix.exists() and not prefix.is_dir():
            return f"{prefix} is a file, not a folder"
    return None


def storage_problem(url: str) -> str | None:
    """Why an Optuna storage URL cannot work here (checked without connecting): None if it can."""
    import sqlalchemy
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
        dialect = parsed.get_dialect()
    except sqlalchemy.exc.NoSuchModuleError:
        return f"unknown database scheme {url.split(':', 1)[0]!r} (e.g. sqlite:///study.db, postgresql://host/db)"
    except (sqlalchemy.exc.ArgumentError, ValueError) as exc:
        return f"not a database URL ({_one_line(exc)})"
    try:
        dialect.import_dbapi()
    except ImportError as exc:
        return f"the database driver for {parsed.drivername} is not installed ({exc.name or exc})"
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        folder = Path(parsed.database).parent
        if not folder.is_dir():
            return f"the folder {folder} of the SQLite file does not exist"
    return None


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
            self.fail(key or "experiment", node, "expected a mapping (key: value)")
        out: dict[str, yaml.Node] = {}
        for k, v in node.value:
            if not isinstance(k, yaml.ScalarNode):
                self.fail(key or "experiment", k, "keys must be plain names")
            name = k.value
            full = f"{key}.{name}" if key else name
            if name in out:
                self.fail(_one_line(full), k, "duplicate key")
            if name not in allowed:
                self.fail(_one_line(full), k, f"unknown key; expected one of: {', '.join(allowed)}")
            out[name] = v
        return out

    def scalar(self, node: yaml.Node, key: str) -> Any:
        if not isinstance(node, yaml.ScalarNode):
            self.fail(key, node, "expected a single value")
        try:
            return self._loader.construct_object(node)
        except (yaml.YAMLError, ValueError, OverflowError) as exc:  # e.g. a timestamp out of range
            self.fail(key, node, f"cannot read {_shown(node.value)} ({_one_line(exc)})")

    def number(self, node, key, kind=float, low=None, high=None, allow_none=False, above=None):
        """A finite int (kind=int) or number in [low, high] (or (above, high]). Give every number
        an upper bound, so that no value can ask for absurd memory or time."""
        value = self.scalar(node, key)
        if value is None and allow_none:
            return None
        ok = isinstance(value, int) if kind is int else isinstance(value, (int, float))
        ok = ok and not isinstance(value, bool) and not (isinstance(value, float) and not math.isfinite(value))
        what = "an integer" if kind is int else "a number"
        bounds = (f" in ({_num(above)}, {_num(high)}]" if above is not None else
                  f" in [{_num(low)}, {_num(high)}]" if low is not None else f" <= {_num(high)}")
        if not ok or (high is not None and value > high) or (low is not None and value < low) \
                or (above is not None and value <= above):
            self.fail(key, node, f"expected {what}{bounds}, got {_shown(value)}")
        return kind(value)

    def positive(self, node, key, kind=float, high=1e9):
        return self.number(node, key, kind, above=0, high=high, allow_none=True)

    def string(self, node, key, choices=None, allow_none=False, max_length=200) -> str | None:
        value = self.scalar(node, key)
        if value is None and allow_none:
            return None
        if not isinstance(value, str) or not value:
            self.fail(key, node, f"expected a string, got {_shown(value)}")
        if choices and value not in choices:
            self.fail(key, node, f"expected one of {', '.join(choices)}, got {_shown(value)}")
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            self.fail(key, node, f"control characters are not allowed, got {_shown(value)}")
        if len(value) > max_length:
            self.fail(key, node, f"longer than {max_length} characters")
        return value

    def name(self, node, key) -> str:
        """A name that becomes one folder of a path: never '.', '..', a separator or too long."""
        value = self.string(node, key)
        if not NAME.fullmatch(value):
            self.fail(key, node, "use 1-100 ASCII letters, digits, '-', '_' and '.', starting with a letter "
                                 f"or digit, got {_shown(value)}")
        return value

    def pathname(self, node, key) -> Path:
        value = Path(self.string(node, key, max_length=4096))
        if any(len(p.encode()) > 255 for p in value.parts):
            self.fail(key, node, "a path component is longer than 255 bytes")
        return value

    def boolean(self, node, key) -> bool:
        value = self.scalar(node, key)
        if not isinstance(value, bool):
            self.fail(key, node, f"expected true or false, got {_shown(value)}")
        return value

    def sequence(self, node, key, max_items=1000) -> list[yaml.Node]:
        if not isinstance(node, yaml.SequenceNode) or not node.value:
            self.fail(key, node, "expected a non-empty list")
        if len(node.value) > max_items:
            self.fail(key, node, f"more than {max_items} items")
        return node.value

    # -- sections -------------------------------------------------------------------------------
    def experiment(self) -> Experiment:
        top = self.mapping(self.root, "", ("name", "seed", "data", "model", "compression", "target",
                                            "placement", "constraints", "objectives", "budget", "training",
                                            "search", "storage", "workers", "output_dir"))
        if "name" not in top:
            self.fail("name", self.root, "missing (the run folder is runs/<name>)")
        kw: dict[str, Any] = {"name": self.name(top["name"], "name"), "path": self.path}
        if "seed" in top:
            kw["seed"] = self.number(top["seed"], "seed", int, low=0, high=MAX_SEED)
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
            kw.update(self.search(top["search"]))
        if "storage" in top:
            kw["storage"] = self.storage(top["storage"])
        if "workers" in top:
            kw["workers"] = self.number(top["workers"], "workers", int, low=1, high=1024)
        if "output_dir" in top:
            kw["output_dir"] = self.pathname(top["output_dir"], "output_dir")
            problem = folder_problem(kw["output_dir"])
            if problem:
                self.fail("output_dir", top["output_dir"], problem)
        return Experiment(**kw)

    def search(self, node) -> dict[str, Any]:
        s = self.mapping(node, "search", ("sampler", "population", "starting_points", "early_stop",
                                          "heartbeat_seconds", "grace_seconds"))
        kw: dict[str, Any] = {}
        if "starting_points" in s:
            kw["starting_points"] = self.boolean(s["starting_points"], "search.starting_points")
        if "early_stop" in s:
            kw["early_stop"] = self.early_stop(s["early_stop"])
        if "sampler" in s:
            kw["sampler"] = self.string(s["sampler"], "search.sampler", SAMPLERS)
        if "population" in s:
            kw["population"] = self.number(s["population"], "search.population", int, low=2, high=10000)
        if "heartbeat_seconds" in s:
            kw["heartbeat_seconds"] = self.number(s["heartbeat_seconds"], "search.heartbeat_seconds", int,
                                                  low=1, high=3600)
        heartbeat = kw.get("heartbeat_seconds", Experiment.heartbeat_seconds)
        if "grace_seconds" in s:
            kw["grace_seconds"] = self.number(s["grace_seconds"], "search.grace_seconds", int,
                                              low=2 * heartbeat, high=86400)
        elif "heartbeat_seconds" in s:
            kw["grace_seconds"] = 6 * heartbeat
        return kw

    def early_stop(self, node) -> EarlyStop | None:
        """`false` turns it off; a mapping sets `fraction` and `margin`."""
        if isinstance(node, yaml.ScalarNode) and node.tag == YAML_TAG + "bool":
            return EarlyStop() if self.boolean(node, "search.early_stop") else None
        e = self.mapping(node, "search.early_stop", ("fraction", "margin"))
        kw: dict[str, float] = {}
        if "fraction" in e:  # a whole training is no short run; false turns the check off
            kw["fraction"] = self.number(e["fraction"], "search.early_stop.fraction", float, above=0.0, high=0.9)
        if "margin" in e:
            kw["margin"] = self.number(e["margin"], "search.early_stop.margin", float, low=0.0, high=1.0)
        return EarlyStop(**kw)

    def storage(self, node) -> str | None:
        url = self.string(node, "storage", allow_none=True, max_length=4096)
        problem = url and storage_problem(url)
        if problem:
            self.fail("storage", node, problem)
        return url

    def data(self, node) -> DataSpec:
        d = self.mapping(node, "data", ("source", "path", "val_path", "test_path", "samples_per_class", "length",
                                        "input_shape", "split", "normalize", "cv_below", "cv_folds", "cv_repeats"))
        kw: dict[str, Any] = {}
        if "source" in d:
            kw["source"] = self.string(d["source"], "data.source", DATA_SOURCES)
        for key in ("path", "val_path", "test_path"):  # relative to the YAML's folder, stored absolute
            if key in d:
                p = self.pathname(d[key], f"data.{key}")
                kw[key] = str(p if p.is_absolute() else (self.path.parent / p).resolve())
        if kw.get("source") in ("npz", "csv") and "path" not in kw:
            self.fail("data.path", node, f"required when data.source is {kw['source']}")
        for key in ("val_path", "test_path"):
            if key in kw and kw.get("source") != "csv":
                self.fail(f"data.{key}", d[key], "csv only (an npz file holds its splits as x_val/y_val, x_test/y_test)")
        for key, low, high in (("cv_below", 0, 10**7), ("cv_folds", 2, 100), ("cv_repeats", 1, 100)):
            if key in d:
                kw[key] = self.number(d[key], f"data.{key}", int, low=low, high=high)
        if "samples_per_class" in d:
            kw["samples_per_class"] = self.number(d["samples_per_class"], "data.samples_per_class", int,
                                                  low=10, high=1_000_000)
        if "length" in d:
            kw["length"] = self.number(d["length"], "data.length", int, low=MIN_LENGTH, high=65536)
        if "input_shape" in d:
            dims = [self.number(n, "data.input_shape", int, low=1, high=65536)
                    for n in self.sequence(d["input_shape"], "data.input_shape")]
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
        spec = DataSpec(**kw)
        if spec.source == "synthetic_spectral":
            need = spec.samples_per_class * len(CLASS_NAMES) * spec.length * 4
            if need > MAX_SYNTHETIC_BYTES:
                self.fail("data.samples_per_class", d.get("samples_per_class", node),
                          f"{spec.samples_per_class} examples per class of length {spec.length} need "
                          f"{need / 2**30:.1f} GB as float32; at most {MAX_SYNTHETIC_BYTES >> 30} GB")
        return spec

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
            options = [self.scalar(n, key) for n in self.sequence(node, key, max_items=100)]
            reference = default.options if isinstance(default, Choice) else (default.low,)
            kinds = {type(v) for v in reference}
            for value, n in zip(options, node.value):
                if type(value) not in kinds and not (float in kinds and isinstance(value, int) and not isinstance(value, bool)):
                    self.fail(key, n, f"expected values like {list(reference)}, got {_shown(value)}")
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self.number(n, key, type(value), above=0, high=MAX_PARAM)
            if len(set(options)) != len(options):
                self.fail(key, node, "each choice may appear once")
            return Choice(tuple(options))
        if isinstance(default, Choice):
            self.fail(key, node, f"expected a list of choices like {list(default.options)}")
        allowed = ("low", "high", "step") if isinstance(default, IntRange) else ("low", "high", "log")
        r = self.mapping(node, key, allowed)
        for bound in ("low", "high"):
            if bound not in r:
                self.fail(f"{key}.{bound}", node, "missing")
        if isinstance(default, IntRange):
            low = self.number(r["low"], f"{key}.low", int, low=1, high=MAX_PARAM)
            high = self.number(r["high"], f"{key}.high", int, low=low, high=MAX_PARAM)
            step = self.number(r["step"], f"{key}.step", int, low=1, high=MAX_PARAM) if "step" in r else 1
            return IntRange(low, high, step)
        low = self.number(r["low"], f"{key}.low", float, above=0, high=MAX_PARAM)
        high = self.number(r["high"], f"{key}.high", float, low=low, high=MAX_PARAM)
        log = self.boolean(r["log"], f"{key}.log") if "log" in r else default.log
        return FloatRange(low, high, log)

    def compression(self, node) -> Compression:
        from autotune.codecs import STORAGES  # (a registry of names: no TensorFlow)

        c = self.mapping(node, "compression", ("sparsity", "bitwidths", "clusters", "channel_keep", "codecs",
                                               "decode_budget_cycles", "finetune_epochs", "first_last_int8"))
        kw: dict[str, Any] = {}

        def choices(key: str, read) -> None:
            if key in c:
                got = tuple(read(n, f"compression.{key}") for n in self.sequence(c[key], f"compression.{key}", 16))
                if len(set(got)) != len(got):
                    self.fail(f"compression.{key}", c[key], f"a choice is listed twice: {_shown(list(got))}")
                kw[key] = got

        choices("sparsity", lambda n, k: self.number(n, k, float, low=0.0, high=0.99))
        choices("bitwidths", lambda n, k: self.number(n, k, int, low=2, high=8))
        for b in kw.get("bitwidths", ()):
            if b not in (2, 4, 8):
                self.fail("compression.bitwidths", c["bitwidths"], f"expected 8, 4 or 2, got {b}")
        choices("clusters", lambda n, k: self.number(n, k, int, low=0, high=64))
        if any(0 < k < 2 for k in kw.get("clusters", ())):
            self.fail("compression.clusters", c["clusters"], "expected 0 (none) or 2 to 64 clusters")
        choices("channel_keep", lambda n, k: self.number(n, k, float, above=0.0, high=1.0))
        names = ("none", "auto", *sorted(set(STORAGES) - {"dense"}))
        choices("codecs", lambda n, k: self.string(n, k, choices=names))
        if "decode_budget_cycles" in c:
            kw["decode_budget_cycles"] = self.positive(c["decode_budget_cycles"], "compression.decode_budget_cycles")
        if "finetune_epochs" in c:
            kw["finetune_epochs"] = self.number(c["finetune_epochs"], "compression.finetune_epochs", int,
                                                low=1, high=1000)
        if "first_last_int8" in c:
            kw["first_last_int8"] = self.boolean(c["first_last_int8"], "compression.first_last_int8")
        return Compression(**kw)

    def constraints(self, node) -> Constraints:
        c = self.mapping(node, "constraints", ("max_flash_kb", "max_ram_kb", "max_latency_ms", "max_params",
                                               "min_accuracy"))
        kw = {k: self.positive(v, f"constraints.{k}", *((int, 10**12) if k == "max_params" else (float, 1e9)))
              for k, v in c.items() if k != "min_accuracy"}
        if "min_accuracy" in c:
            kw["min_accuracy"] = self.number(c["min_accuracy"], "constraints.min_accuracy", float, low=0.0,
                                             high=1.0, allow_none=True)
        return Constraints(**kw)

    def budget(self, node) -> Budget:
        b = self.mapping(node, "budget", ("trials", "timeout_minutes", "epochs"))
        kw: dict[str, Any] = {}
        if "trials" in b:
            kw["trials"] = self.number(b["trials"], "budget.trials", int, low=1, high=1_000_000)
        if "timeout_minutes" in b:
            kw["timeout_minutes"] = self.positive(b["timeout_minutes"], "budget.timeout_minutes", high=10**7)
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
                   "label_smoothing": (float, 0.0, 0.5), "min_steps": (int, 0, 10**7), "patience": (int, 1, 1000), "restarts": (int, 0, 10),
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
