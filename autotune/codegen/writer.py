"""The text of a generated model.c: what op definitions' `emit` write through (autotune.ops)."""
from __future__ import annotations

import numpy as np

from autotune.codegen.planner import MemoryPlan
from autotune.escape import c_comment
from autotune.ir.graph import tensor_label
from autotune.ir.kernel_plan import KernelCall, KernelPlan, WeightStorage

_C_TYPES = {"int8": "int8_t", "int32": "int32_t"}


class CSource:
    """model.c being written: declarations (constants, parameter structs) and the body of the
    entry point. Every name and pointer a call's C needs comes from here."""

    def __init__(self, plan: KernelPlan, memory: MemoryPlan, arena: str = "arena"):
        self.plan, self.graph, self.memory = plan, plan.graph, memory
        self.arena = arena  # the C name of the arena union
        self.decls: list[str] = []
        self.body: list[str] = []
        self.kernel_sources: set[str] = set()
        self.pointers: dict[int, str] = {}  # tensor -> declaration of its local pointer
        self._index = {id(c): i for i, c in enumerate(plan.calls)}

    # ---- tensors and constants

    def ref(self, t: int) -> str:
        """The C name of tensor t's data; declares it on first use."""
        name = f"t{t}"
        if t in self.pointers:
            return name
        tensor = self.graph.tensor(t)
        if tensor.is_constant:
            if tensor.dtype != "int8":
                raise ValueError(f"constant {tensor_label(self.graph, t)} is {tensor.dtype}, expected int8")
            self.array("int8_t", name, tensor.data)
            self.pointers[t] = ""
            return name
        if tensor.dtype != "int8":
            raise ValueError(f"{tensor_label(self.graph, t)} is {tensor.dtype}; activations must be int8")
        b = self.memory.buffer_of(t)
        # The entry's parameters: the caller's buffers (with every tensor they hold), or the
        # graph's input and output in the arena, where generate's prologue makes them point.
        if self.memory.io == "caller":
            io = b.place if b.place in ("input", "output") else None
        else:
            io = "input" if t in self.graph.inputs else "output" if t in self.graph.outputs else None
        where = io or f"{self.arena}.bytes + {self.memory.offset_of(t)}"
        const = "const " if io == "input" else ""
        live = f", calls {b.first}-{b.last}" if b.in_arena else ""
        self.pointers[t] = (f"    {const}int8_t *const {name} = {where}; "
                            f"/* {c_comment(tensor_label(self.graph, t).split(' ', 1)[1])}{live} */")
        return name

    def weight(self, call: KernelCall, storage: WeightStorage, helium: np.ndarray | None = None) -> str:
        """The C array a kernel reads a weight tensor from: the plain array in flash, or the
        scratch its decoder call (`decoder`) writes it (or one filter of it) into. Format
        "grouped_int8": the plain array, its values in the order `helium` where the image has
        Helium (AT_GROUPED_TAILS)."""
        tensor = self.graph.tensor(storage.tensor)
        if storage.format in ("decoded", "decoded_row"):
            return self.scratch(self._decoder_of(call, storage))
        if storage.format == "grouped_int8":  # the op's Helium order (`helium`) where AT_GROUPED_TAILS
            if helium is None:
                raise ValueError(f"weights {tensor.name!r} are stored as grouped_int8; the op gives no order")
            name = f"{call.name}_{storage.role}"
            self.decls.append(c_array("int8_t", name, tensor.data, tail="AT_WEIGHT_TAIL",
                                      variant=("AT_GROUPED_TAILS", helium)))
            return name
        if storage.format != f"dense_{tensor.dtype}":
            raise ValueError(f"weights {tensor.name!r} are stored as {storage.format}; no emitter for it")
        name = f"{call.name}_{storage.role}"
        self.decls.append(c_array(_C_TYPES[tensor.dtype], name, tensor.data,
                                  tail="AT_WEIGHT_TAIL" if tensor.dtype == "int8" else ""))
        return name

    def decoder(self, call: KernelCall) -> None:
        """A weight decoder's call: the blob in flash, a flag in RAM (zero at start-up) that
        remembers its CRC-32 matched, and the call that writes the int8 tensor at the start of
        the call's scratch, the decoder's work memory after it. A blob that fails to decode
        ends the entry point with the decoder's error code (at_decode.h). A one-filter decoder
        (at_decode_<storage>_row) is called by its kernel's C instead, once per filter
        (decode_filters)."""
        encoded = call.decodes.encoded
        decode = encoded.decode_call(per_row=call.symbol.endswith("_row"))
        self.kernel_sources.update(decode.c_files)
        self.decls.append(c_array("uint8_t", f"{call.name}_blob", np.frombuffer(encoded.blob, np.uint8)))
        self.decls.append(f"static uint8_t {call.name}_checked;\n"
                          f"static const at_blob_t {call.name} = {{{call.name}_blob, {encoded.bytes}u, "
                          f"&{call.name}_checked}};\n")
        if not decode.per_row:
            self.body += ["    {", *self._decode(call, decode, "", "        "), "    }"]

    def decode_filters(self, call: KernelCall, storage: WeightStorage, first: str, count: int, k: str,
                       indent: str) -> list[str]:
        """The loop (over `k`, a variable the caller declares) that decodes filters `first` to
        `first` + `count` - 1 of the kernel call's weights ("decoded_row") one after another into
        their scratch, returning the decoder's error code from the entry point on failure."""
        decoder, encoded = self._decoder_of(call, storage), storage.encoded
        return [f"{indent}for ({k} = 0; {k} < {count}u; ++{k}) {{",
                *self._decode(decoder, encoded.decode_call(per_row=True), f"{first} + {k}, ", indent + "    ",
                              f"{k} * {encoded.row_len}u"),
                f"{indent}}}"]

    def _decoder_of(self, call: KernelCall, storage: WeightStorage) -> KernelCall:
        return next(c for c in self.plan.calls if c.decodes and c.decodes.tensor == storage.tensor
                    and c.op == call.op)

    def _decode(self, call: KernelCall, decode, row: str, indent: str, offset: str | None = None) -> list[str]:
        out = self.scratch(call) if offset is None else f"{self.scratch(call)} + {offset}"
        work = (f"(uint8_t *)({out} + {call.scratch_bytes - decode.scratch_bytes}), {decode.scratch_bytes}u"
                if decode.scratch_bytes else "0, 0u")
        return [f"{indent}const int status = {call.symbol}(&{call.name}, {row}{out}, {decode.out_bytes}u, {work});",
                f"{indent}if (status != 0) {{", f"{indent}    return status;", f"{indent}}}"]

    def array(self, ctype: str, name: str, values: np.ndarray, per_line: int = 16) -> str:
        self.decls.append(c_array(ctype, name, values, per_line))
        return name

    def struct(self, ctype: str, name: str, fields: dict[str, object], const: bool = True,
               helium: dict[str, object] | None = None) -> str:
        """A designated initializer, fields packed into lines of about 96 characters; a nested
        struct (a dict) the same way, indented, between lines of its own. `const` False: in RAM,
        for a loop that changes a field (copying the struct would call memcpy). `helium`: fields
        the struct has under Helium only (`#if defined(__ARM_FEATURE_MVE)`)."""
        extra = (["#if defined(__ARM_FEATURE_MVE)", *_c_fields(helium, "    "), "#endif"] if helium else [])
        self.decls.append(f"static {'const ' if const else ''}{ctype} {name} = {{\n"
                          + "\n".join(_c_fields(fields, "    ") + extra) + "\n};\n")
        return name

    def channels(self, name: str, acc_init: np.ndarray, multiplier: np.ndarray, shift: np.ndarray,
                 grouped: bool = False) -> str:
        """`at_channel_t name[]`: per output channel the initial accumulator, multiplier and shift.
        `grouped`: under Helium (AT_GROUPED_TAILS) the same values by groups of four channels,
        their four initial accumulators, then multipliers, then shifts (12 int32 a group)."""
        table = np.stack([np.asarray(v, dtype=np.int64) for v in (acc_init, multiplier, shift)], axis=1)

        def rows(values: np.ndarray) -> str:
            return "".join(f"    {{{a}, {m}, {s}}},\n" for a, m, s in values.reshape(-1, 3).tolist())
        body = rows(table)
        if grouped:
            by_group = table.reshape(-1, 4, 3).transpose(0, 2, 1)
            body = f"#if AT_GROUPED_TAILS\n{rows(by_group)}#else\n{body}#endif\n"
        self.decls.append(f"static const at_channel_t {name}[{len(table)}] = {{\n{body}}};\n")
        return name

    # ---- the body

    def scratch(self, call: KernelCall) -> str:
        buffer = self.memory.scratch_of(self._index[id(call)])
        return f"{self.arena}.bytes + {buffer.offset}" if buffer else "0"

    def call(self, call: KernelCall, *args: str, indent: int = 4) -> None:
        """`symbol(&<params>, args...);`"""
        if call.source:
            self.kernel_sources.add(call.source)
        self.body.append(f"{' ' * indent}{call.symbol}({', '.join([f'&{call.name}', *args])});")

    def line(self, text: str) -> None:
        self.body.append(text)


def c_array(ctype: str, name: str, values: np.ndarray, per_line: int = 16, tail: str = "",
            variant: tuple[str, np.ndarray] | None = None) -> str:
    """`static const <ctype> name[n] = {...};`, `per_line` values a line; `tail`: a macro naming
    how many zeros follow the values (the array is n + tail long); `variant` (macro, values): as
    many values in another order, taken where the macro is nonzero (`#if`)."""
    def lines(v: np.ndarray) -> str:
        flat = [str(int(x)) for x in np.asarray(v).reshape(-1)]
        return "".join(f"    {', '.join(flat[k:k + per_line])},\n" for k in range(0, len(flat), per_line))
    flat = np.asarray(values).reshape(-1)
    body = lines(flat)
    if variant is not None:
        assert np.asarray(variant[1]).size == flat.size
        body = f"#if {variant[0]}\n{lines(variant[1])}#else\n{body}#endif\n"
    size = f"{flat.size} + {tail}" if tail else f"{flat.size}"
    return f"static const {ctype} {name}[{size}] = {{\n{body}}};\n"


def comment(text: str) -> str:
    """Text safe inside a C block comment, line by line (tensor and model names come from the
    .tflite file: anything at all)."""
    return "\n".join(c_comment(line, limit=400) for line in text.split("\n"))


def _c_fields(fields: dict[str, object], indent: str) -> list[str]:
    lines, line = [], ""
    for k, v in fields.items():
        if isinstance(v, dict):
            lines += [line] if line else []
            lines += [f"{indent}.{k} = {{", *_c_fields(v, indent + "    "), f"{indent}}},"]
            line = ""
            continue
        item = f".{k} = {_c_value(v)},"
        if line and len(line) + len(item) > 95:
            lines.append(line)
            line = ""
        line = f"{line} {item}" if line else indent + item
    return lines + ([line] if line else [])


def _c_value(v: object) -> str:
    if isinstance(v, (tuple, list)):
        return "{" + ", ".join(_c_value(x) for x in v) + "}"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    return str(v)  # an identifier
