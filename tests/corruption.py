"""A corruption corpus of .tflite models, and the check every variant must pass.

`variants` derives corrupted copies of a valid model, deterministically from a seed: random byte
flips, truncations, and field-targeted mutations (through the schema: a tensor's shape, zero
point, scale, type or buffer; an op's options, input and output indices or opcode). `check` imports
a variant and judges the outcome:
  * refused: a ModelImportError of one line naming the model; any other exception is a problem;
  * accepted: the reference executor must equal the TFLite Micro interpreter on 20 inputs (run in
    a subprocess, `TflmWorker`, so that TFLM crashing or hanging cannot take the check with it), and
    the C must generate; an accepted model TFLM refuses or crashes on is a problem.
The fast subset runs in tests/test_import_corpus.py, the whole in benchmarks/bench_import_corpus.py.
"""
from __future__ import annotations

import os
import pickle
import select
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb

import model_zoo

IMPORT_SECONDS = 20  # an import that takes longer hangs
TFLM_SECONDS = 30
N_INPUTS = 20


@dataclass(frozen=True)
class Variant:
    name: str  # <model>-<index>-<mutation>
    mutation: str
    data: bytes


# ------------------------------------------------------------------ mutations


def _flip(rng, data: bytes) -> tuple[str, bytes]:
    b = bytearray(data)
    for _ in range(int(rng.integers(1, 5))):
        b[int(rng.integers(len(b)))] ^= int(rng.integers(1, 256))
    return "byte_flip", bytes(b)


def _truncate(rng, data: bytes) -> tuple[str, bytes]:
    return "truncation", data[:int(rng.integers(0, len(data)))]


_DIMS = (0, -1, 2, 3, 7, 1000, 1 << 20, 1 << 30, 2**31 - 1)
_INTS = (-2**31, -1000, -129, -2, -1, 0, 1, 2, 3, 5, 8, 17, 127, 128, 255, 260, 65536, 2**31 - 1)
_SCALES = (0.0, -0.5, float("nan"), float("inf"), 1e-30, 1e-9, 3.7e-3, 1.0, 7.5, 1e9, 1e30)


def _edit(rng, data: bytes) -> tuple[str, bytes]:
    """One field of the model, chosen at random, set to an awkward value."""
    m = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(data, 0))
    sg = m.subgraphs[0]
    kind = ["shape", "zero_point", "scale", "option", "op_index", "buffer", "dtype", "opcode"][
        int(rng.choice(8, p=[0.22, 0.14, 0.14, 0.22, 0.1, 0.06, 0.06, 0.06]))]
    t = sg.tensors[int(rng.integers(len(sg.tensors)))]
    op = sg.operators[int(rng.integers(len(sg.operators)))]
    if kind == "shape" and t.shape is not None and len(t.shape):
        shape = np.array(t.shape, np.int64)
        k = int(rng.integers(len(shape)))
        shape[k] = int(rng.choice(_DIMS)) if rng.random() < 0.5 else shape[k] + int(rng.choice([-1, 1]))
        t.shape = np.clip(shape, -2**31, 2**31 - 1).astype(np.int32)
        if t.shapeSignature is not None and rng.random() < 0.5:
            t.shapeSignature = t.shape.copy()
    elif kind in ("zero_point", "scale") and t.quantization is not None and t.quantization.scale is not None:
        q = t.quantization
        k = int(rng.integers(len(q.scale)))
        if kind == "zero_point":
            q.zeroPoint = np.array(q.zeroPoint, np.int64)
            q.zeroPoint[k] = int(rng.choice(_INTS)) if rng.random() < 0.5 else q.zeroPoint[k] + int(rng.integers(-3, 4))
        else:
            q.scale = np.array(q.scale, np.float32)
            q.scale[k] = rng.choice(_SCALES) if rng.random() < 0.5 else q.scale[k] * rng.choice([0.5, 0.99, 1.01, 4])
    elif kind == "option" and op.builtinOptions is not None:
        fields = [f for f, v in vars(op.builtinOptions).items() if isinstance(v, (int, float, bool))]
        if fields:
            f = str(rng.choice(fields))
            value = rng.choice(_SCALES) if isinstance(getattr(op.builtinOptions, f), float) else int(rng.choice(_INTS))
            setattr(op.builtinOptions, f, value)
    elif kind == "op_index":
        vector = "inputs" if rng.random() < 0.7 else "outputs"
        indices = np.array(getattr(op, vector), np.int64)
        if len(indices):
            indices[int(rng.integers(len(indices)))] = int(rng.choice([-1, len(sg.tensors), 2**31 - 1,
                                                                      int(rng.integers(len(sg.tensors)))]))
            setattr(op, vector, indices.astype(np.int32))
    elif kind == "buffer":
        t.buffer = int(rng.choice([0, len(m.buffers), 2**31 - 1, int(rng.integers(len(m.buffers)))]))
    elif kind == "dtype":
        t.type = int(rng.choice([fb.TensorType.INT16, fb.TensorType.INT32, fb.TensorType.UINT8,
                                 fb.TensorType.FLOAT32, fb.TensorType.INT4, 99]))
    elif kind == "opcode":
        code = m.operatorCodes[op.opcodeIndex] if rng.random() < 0.5 else None
        if code is not None:
            code.builtinCode = code.deprecatedBuiltinCode = int(rng.choice(
                [fb.BuiltinOperator.ADD, fb.BuiltinOperator.MUL, fb.BuiltinOperator.LOGISTIC, fb.BuiltinOperator.EXP,
                 fb.BuiltinOperator.MAX_POOL_2D, fb.BuiltinOperator.RESHAPE, 126]))
        else:
            op.opcodeIndex = int(rng.choice([len(m.operatorCodes), 2**31 - 1]))
    else:
        return _flip(rng, data)
    try:
        return f"field_{kind}", model_zoo.pack(m)
    except Exception:  # the schema's writer refuses some values: then flip bytes instead
        return _flip(rng, data)


def variants(model: bytes, name: str, count: int, seed: int) -> Iterator[Variant]:
    """`count` corrupted copies of `model`: about a quarter byte flips, a tenth truncations, the
    rest field-targeted."""
    rng = np.random.default_rng(seed)
    for k in range(count):
        r = rng.random()
        mutation, data = (_flip if r < 0.25 else _truncate if r < 0.35 else _edit)(rng, model)
        yield Variant(f"{name}-{k}-{mutation}", mutation, data)


# ------------------------------------------------------------------ TFLM in a subprocess

_WORKER = """
import os, pickle, sys
import numpy as np
from tflite_micro.python.tflite_micro import runtime
out = os.fdopen(os.dup(1), "wb")
os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # TFLM prints to stdout and stderr
os.dup2(1, 2)
stdin = sys.stdin.buffer
while True:
    try:
        model, xs = pickle.load(stdin)
    except EOFError:
        break
    try:
        it = runtime.Interpreter.from_bytes(model, arena_size=10 * len(model) + (32 << 20))
        if xs is None:  # one input of zeros, shaped as TFLM reads the model
            xs = np.zeros((1, *it.get_input_details(0)["shape"]), np.int8)
        ys = []
        for x in xs:
            it.set_input(x.reshape(it.get_input_details(0)["shape"]), 0)
            it.invoke()
            ys.append(np.array(it.get_output(0)).reshape(-1))
        reply = ("ok", np.stack(ys))
    except Exception as e:
        reply = ("error", f"{type(e).__name__}: {str(e)[:200]}")
    pickle.dump(reply, out)
    out.flush()
"""


class TflmWorker:
    """The TFLM interpreter in a child process: ("ok", outputs), ("error", why), ("crash", why)
    or ("hang", why). A crash or hang restarts the child."""

    def __init__(self):
        self.proc: subprocess.Popen | None = None

    def _start(self) -> subprocess.Popen:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen([sys.executable, "-c", _WORKER], stdin=subprocess.PIPE,
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        return self.proc

    def run(self, model: bytes, xs: np.ndarray | None) -> tuple[str, object]:
        proc = self._start()
        try:
            pickle.dump((model, xs), proc.stdin)
            proc.stdin.flush()
        except BrokenPipeError:
            return self._lost("crash", "the worker died before reading the model")
        ready, _, _ = select.select([proc.stdout], [], [], TFLM_SECONDS)
        if not ready:
            return self._lost("hang", f"no answer in {TFLM_SECONDS} s")
        try:
            return pickle.load(proc.stdout)
        except (EOFError, pickle.UnpicklingError):
            proc.wait()
            return self._lost("crash", f"exit code {proc.returncode}")

    def _lost(self, what: str, why: str) -> tuple[str, str]:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None
        return what, why

    def close(self) -> None:
        if self.proc is not None:
            self.proc.stdin.close()
            self.proc.wait()
            self.proc = None


# ------------------------------------------------------------------ the check


@dataclass(frozen=True)
class Outcome:
    variant: str
    mutation: str
    result: str  # "refused" | "accepted"
    tflm: str  # what TFLM did with an accepted variant: "ok" | "error" | "crash" | "hang" | "" (not asked)
    problem: str | None  # None when the outcome is right
    message: str = ""  # the refusal


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout()


def check(variant: Variant, worker: TflmWorker, generate: bool = True) -> Outcome:
    from autotune import executor
    from autotune.codegen import generate_c
    from autotune.errors import ModelImportError
    from autotune.ir.tflite_import import import_tflite

    def outcome(result: str, problem: str | None, tflm: str = "", message: str = "") -> Outcome:
        return Outcome(variant.name, variant.mutation, result, tflm, problem, message)

    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(IMPORT_SECONDS)
    try:
        graph = import_tflite(variant.data, variant.name)
    except ModelImportError as e:
        message = str(e)
        ok = "\n" not in message and message.startswith(f"{variant.name}:")
        return outcome("refused", None if ok else f"refusal not one line naming the model: {message!r}",
                       message=message)
    except _Timeout:
        return outcome("refused", f"the import hung (over {IMPORT_SECONDS} s)")
    except Exception as e:  # a traceback for the user: the problem this corpus hunts
        return outcome("refused", f"{type(e).__name__} escaped the importer: {e}")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)

    shape = graph.tensor(graph.inputs[0]).shape
    xs = np.random.default_rng(0).integers(-128, 128, (N_INPUTS, *shape)).astype(np.int8)
    status, answer = worker.run(variant.data, xs)
    if status != "ok":
        return outcome("accepted", f"accepted, but TFLM gives {status}: {answer}", status)
    try:
        ours = executor.run(graph, xs.reshape((N_INPUTS,) + shape[1:])).reshape(N_INPUTS, -1)
    except Exception as e:
        return outcome("accepted", f"{type(e).__name__} in the executor: {e}", status)
    if not np.array_equal(ours, answer.reshape(N_INPUTS, -1)):
        n = int(np.argmax(np.any(ours != answer.reshape(N_INPUTS, -1), axis=1)))
        return outcome("accepted", f"the executor differs from TFLM on input {n}", status)
    if generate:
        try:
            with tempfile.TemporaryDirectory() as tmp:
                generate_c(graph, Path(tmp))
        except Exception as e:
            return outcome("accepted", f"{type(e).__name__} generating C: {e}", status)
    return outcome("accepted", None, status)


def cli_refusal(variant: Variant, tmp: Path) -> str | None:
    """`autotune import` on a variant the importer refuses: exit 2, one line on stderr naming the
    file, no traceback and no bundle folder. None if so, else what went wrong."""
    path = tmp / f"{variant.name}.tflite"
    path.write_bytes(variant.data)
    out = tmp / "bundle"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-m", "autotune", "import", str(path), "--out", str(out)],
                          capture_output=True, text=True, cwd=tmp, env=env, timeout=120)
    lines = proc.stderr.strip().splitlines()
    if proc.returncode != 2 or len(lines) != 1 or str(path) not in lines[0] or "Traceback" in proc.stderr:
        return f"exit {proc.returncode}, stderr {proc.stderr[-500:]!r}"
    if out.exists():
        return f"{out} left behind"
    return None

