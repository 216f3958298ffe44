"""Hand-built TFLite flatbuffers for tests: the layouts converters may write that no converter at
hand writes (a bias added per gate after SPLIT, before the products are summed), and the hostile
ones (huge dimensions, megabyte strings, loops nested or naming themselves as their body).

A tiny FlatBuffers writer (flatbuffers docs, "FlatBuffers internals"): every table is written
after the object that refers to it, so every uoffset points forward, as the format requires; each
table's vtable sits right before it. Fields are written at their schema.fbs slot numbers
(`inspector.formats.tflite.schema` lists the ones a report reads).
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass, field

# TensorType codes and BuiltinOperator codes (schema.fbs) the tests use.
FLOAT32, INT32, INT8, RESOURCE = 0, 2, 9, 13
OPS = {
    "ADD": 0,
    "ADD_N": 106,
    "FULLY_CONNECTED": 9,
    "LOGISTIC": 14,
    "MUL": 18,
    "RESHAPE": 22,
    "TANH": 28,
    "CUSTOM": 32,
    "GATHER": 36,
    "UNIDIRECTIONAL_SEQUENCE_RNN": 35,
    "SPLIT": 49,
    "REVERSE_V2": 105,
    "WHILE": 119,
    "VAR_HANDLE": 142,
    "READ_VARIABLE": 143,
}
WHILE_OPTIONS = 93


@dataclass
class Table:
    """Fields by slot: (kind, value); kinds: u8, i32, u32, u64, str, bytes, ints, floats, longs,
    table, tables."""

    fields: dict[int, tuple[str, object]] = field(default_factory=dict)


_SCALAR = {"u8": ("<B", 4), "i32": ("<i", 4), "u32": ("<I", 4), "u64": ("<Q", 8)}


class _Writer:
    def __init__(self) -> None:
        self.out = bytearray(8)
        self.out[4:8] = b"TFL3"
        self.pending: deque[tuple[int, str, object]] = deque()  # (slot position, kind, value)

    def _align(self, to: int) -> None:
        self.out.extend(b"\0" * (-len(self.out) % to))

    def table(self, table: Table) -> int:
        """The vtable, then the table: soffset to its vtable, then each field's bytes."""
        slots = max(table.fields, default=-1) + 1
        vtable = [0] * slots
        offset = 4
        for slot in sorted(table.fields):
            kind = table.fields[slot][0]
            vtable[slot] = offset
            offset += _SCALAR[kind][1] if kind in _SCALAR else 4
        self._align(4)
        vpos = len(self.out)
        self.out.extend(struct.pack(f"<HH{slots}H", 4 + 2 * slots, offset, *vtable))
        self._align(4)
        pos = len(self.out)
        self.out.extend(struct.pack("<i", pos - vpos) + bytes(offset - 4))
        for slot in sorted(table.fields):
            kind, value = table.fields[slot]
            if kind in _SCALAR:
                struct.pack_into(_SCALAR[kind][0], self.out, pos + vtable[slot], value)
            else:
                self.pending.append((pos + vtable[slot], kind, value))
        return pos

    def _point(self, slot: int, target: int) -> None:
        struct.pack_into("<I", self.out, slot, target - slot)

    def flush(self) -> None:
        while self.pending:
            slot, kind, value = self.pending.popleft()
            self._align(4)
            if kind == "table":
                assert isinstance(value, Table)
                self._point(slot, self.table(value))
            elif kind == "tables":
                assert isinstance(value, list)
                self._align(4)
                at = len(self.out)
                self.out.extend(struct.pack("<I", len(value)) + bytes(4 * len(value)))
                self._point(slot, at)
                for index, item in enumerate(value):
                    self._point(at + 4 + 4 * index, self.table(item))
            else:
                fmt, data = {
                    "str": ("B", list(str(value).encode())),
                    "bytes": ("B", list(value)),  # type: ignore[call-overload]
                    "ints": ("i", value),
                    "floats": ("f", value),
                    "longs": ("q", value),
                }[kind]
                data = list(data)  # type: ignore[arg-type]
                at = len(self.out)
                self.out.extend(struct.pack(f"<I{len(data)}{fmt}", len(data), *data))
                if kind == "str":
                    self.out.append(0)
                self._point(slot, at)


def build(model: Table) -> bytes:
    writer = _Writer()
    root = writer.table(model)
    struct.pack_into("<I", writer.out, 0, root)
    writer.flush()
    return bytes(writer.out)


# --- a model's parts --------------------------------------------------------------------------


def tensor(
    shape: list[int], buffer: int = 0, *, dtype: int = FLOAT32, name: str = "", scales: int = 0
) -> Table:
    fields: dict[int, tuple[str, object]] = {
        0: ("ints", shape),
        1: ("u8", dtype),
        2: ("u32", buffer),
        3: ("str", name),
    }
    if scales:
        fields[4] = ("table", Table({2: ("floats", [0.01] * scales), 3: ("longs", [0] * scales)}))
    return Table(fields)


def operator(code: int, inputs: list[int], outputs: list[int], *, body: int | None = None) -> Table:
    fields: dict[int, tuple[str, object]] = {
        0: ("u32", code),
        1: ("ints", inputs),
        2: ("ints", outputs),
    }
    if body is not None:
        fields[3] = ("u8", WHILE_OPTIONS)
        fields[4] = ("table", Table({0: ("i32", 0), 1: ("i32", body)}))
    return Table(fields)


def subgraph(
    tensors: list[Table], operators: list[Table], inputs: list[int], outputs: list[int], name: str
) -> Table:
    return Table(
        {
            0: ("tables", tensors),
            1: ("ints", inputs),
            2: ("ints", outputs),
            3: ("tables", operators),
            4: ("str", name),
        }
    )


def model(
    subgraphs: list[Table], buffers: list[bytes], codes: list[int | str], description: str = ""
) -> bytes:
    """`codes`: builtin operator codes, or a string for a custom op's code."""
    operator_codes = [
        Table({0: ("u8", min(c, 127)), 3: ("i32", c)})
        if isinstance(c, int)
        else Table({0: ("u8", OPS["CUSTOM"]), 1: ("str", c), 3: ("i32", OPS["CUSTOM"])})
        for c in codes
    ]
    return build(
        Table(
            {
                0: ("u32", 3),
                1: ("tables", operator_codes),
                2: ("tables", subgraphs),
                3: ("str", description),
                4: (
                    "tables",
                    [Table({0: ("bytes", data)}) if data else Table() for data in buffers],
                ),
            }
        )
    )


def floats(count: int, start: float = 0.1) -> bytes:
    return struct.pack(f"<{count}f", *(start + 0.01 * i for i in range(count)))
