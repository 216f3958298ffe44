"""The GGUF container, read with bounds: header, metadata key/values, tensor infos, alignment
and the start of the data section. Tensor payloads are never read here.

Layout (ggml/docs/gguf.md; ggml/src/gguf.cpp, `gguf_init_from_file_impl`): the magic `GGUF`,
a uint32 version, the tensor count and the key/value count, the key/values (a string key, a
uint32 value type, the value), then per tensor its name, uint32 n_dims, n_dims dimensions
(ne0 first: the fastest-varying one), a uint32 ggml type and a uint64 offset into the data
section, which starts at the next multiple of `general.alignment` (default 32). Strings are a
length and UTF-8 bytes without a terminator. Version 1 stores the counts, string and array
lengths and the dimensions as uint32, versions 2 and 3 as uint64. Version 3 allows a file to be
big-endian throughout (its magic still reads `GGUF`); it is told apart, as ggml does, by a
version whose low 16 bits read as zero.

Every count, length and offset is checked against the file size before it is used, and
against caps no real file comes near, so a crafted header costs neither memory nor time: one
`CorruptModelError` line says what is wrong. All reads go through `_Cursor`, one forward offset
over a file object read by offset and length (`read_at`).
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import BinaryIO

from inspector.errors import CorruptModelError, NotAModelError, NotFoundError
from inspector.formats.gguf.types import (
    ARRAY,
    GGML_TYPES,
    REMOVED_TYPES,
    STRING,
    VALUE_TYPES,
    GgmlType,
    ValueType,
)
from inspector.formats.source import Source
from inspector.formats.values import read_at
from inspector.model import MetadataValue

MAGIC = b"GGUF"
VERSIONS = (1, 2, 3)
DEFAULT_ALIGNMENT = 32  # GGUF_DEFAULT_ALIGNMENT (gguf.h)
ALIGNMENT_KEY = "general.alignment"
MAX_DIMS = 4  # GGML_MAX_DIMS: ggml refuses more
WINDOW = 64 * 1024  # bytes read at a time while walking the header forward

# Caps far beyond real files (a 2026 MoE model has ~2,000 tensors and ~50 keys; the largest
# tokenizer arrays hold ~260,000 tokens and ~500,000 merges), so that a header claiming more
# costs no memory or time before it is refused.
MAX_TENSORS = 1 << 18
MAX_KEYS = 1 << 16
MAX_KEY_BYTES = (1 << 16) - 1  # the spec's limit for keys; also applied to tensor names
MAX_ITEMS = 1 << 22  # strings and nested arrays walked one by one, over the whole file
MAX_DEPTH = 8  # arrays of arrays (ggml reads none; gguf-py reads any)
# What the model keeps of the metadata for analysis: hyperparameters, names, per-layer arrays.
# Longer values (a tokenizer's vocabulary, a chat template) are walked over, not kept.
MAX_KEPT_ARRAY = 4096
MAX_KEPT_STRING = 4096
# And over the whole file (65,536 keys of 4,096 numbers each would be gigabytes as Python
# objects): past these, values are walked over and not kept.
MAX_KEPT_ELEMENTS = 1 << 20
MAX_KEPT_BYTES = 16 << 20
_INT63 = 1 << 63  # ggml reads dimensions as int64 and their product must stay below

Kept = MetadataValue | None  # None: a value walked over, too long to keep


def _short(name: str, limit: int = 120) -> str:
    """A name as a message shows it: a crafted one can be 65,535 bytes."""
    return name if len(name) <= limit else f"{name[:limit]}... ({len(name):,} characters)"


@dataclass(frozen=True)
class TensorInfo:
    """One tensor's entry: where its bytes are, never the bytes themselves.

    `dims` are GGUF's ne[] as stored, ne0 (the fastest-varying dimension, a row) first; `shape`
    is the same tensor in the order PyTorch and numpy use (slowest first), i.e. `dims`
    reversed: llama.cpp's converter writes a (out, in) PyTorch weight as ne = [in, out].
    """

    name: str
    dims: tuple[int, ...]
    type: GgmlType
    offset: int  # from the start of the data section, as stored
    begin: int  # absolute file offset of the first byte
    elements: int
    nbytes: int

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(reversed(self.dims))

    @property
    def end(self) -> int:
        return self.begin + self.nbytes


@dataclass(frozen=True)
class Container:
    version: int
    big_endian: bool
    metadata: Mapping[str, MetadataValue]  # kept values (see MAX_KEPT_*), in file order
    tensors: tuple[TensorInfo, ...]  # in file order
    alignment: int
    data_start: int
    bytes_read: int  # how much of the file reading the header took


def read_container(path: Source) -> Container:
    """Parse and check a GGUF file's header. Raises NotFoundError, NotAModelError,
    CorruptModelError; reads the header region only (tensor infos end where data starts)."""
    with path.open() as handle:  # a local file or a URL's ranges (formats/source.py)
        try:
            size = path.size
            return _Parser(path, handle, size).parse()
        except OSError as error:
            raise NotFoundError(f"{path}: cannot be read ({error.strerror or error})") from None


class _Cursor:
    """One offset moving forward through the file. Every length is checked against what is
    left of the file before anything is read or skipped; bytes come from a window of WINDOW
    bytes read at a time by offset, so walking a tokenizer's strings takes few reads."""

    def __init__(self, path: Source, handle: BinaryIO, size: int) -> None:
        self.path = path
        self.size = size
        self.pos = 0
        self.bytes_read = 0
        self._handle = handle
        self._window = b""
        self._window_start = 0

    def left(self) -> int:
        return self.size - self.pos

    def need(self, length: int, what: str) -> None:
        if length > self.left():
            raise CorruptModelError(
                f"{self.path}: GGUF {what} at byte {self.pos:,} needs {length:,} bytes but the "
                f"file ends at byte {self.size:,}: the file is truncated or crafted"
            )

    def take(self, length: int, what: str) -> bytes:
        self.need(length, what)
        at = self.pos - self._window_start
        if at < 0 or at + length > len(self._window):
            self._window = read_at(self._handle, self.pos, max(length, WINDOW))
            self._window_start = self.pos
            self.bytes_read += len(self._window)
            at = 0
            if len(self._window) < length:  # the file shrank while it was read
                raise CorruptModelError(f"{self.path}: GGUF {what} is cut short")
        self.pos += length
        return self._window[at : at + length]

    def skip(self, length: int, what: str) -> None:
        self.need(length, what)
        self.pos += length

    def skip_strings(self, count: int, length: struct.Struct, what: str) -> None:
        """Walk over `count` strings (a length, then that many bytes) without decoding them:
        a tokenizer's vocabulary of a few hundred thousand takes milliseconds."""
        unpack_from, width, size = length.unpack_from, length.size, self.size
        for _ in range(count):
            at = self.pos - self._window_start
            if at < 0 or at + width > len(self._window):
                self.take(width, f"string in {what}")
                self.pos -= width
                at = 0
            (n,) = unpack_from(self._window, at)
            self.pos += width
            if n > size - self.pos:
                self.need(n, f"string in {what}")
            self.pos += n


class _Parser:
    def __init__(self, path: Source, handle: BinaryIO, size: int) -> None:
        self.path = path
        self.cursor = _Cursor(path, handle, size)
        self.order = "<"
        self.wide = True  # lengths and counts are uint64 (versions 2, 3)
        self.items = 0
        self.kept_elements = 0
        self.kept_bytes = 0

    # --- primitives -----------------------------------------------------------------------

    def _unpack(self, fmt: str, what: str) -> int:
        layout = struct.Struct(self.order + fmt)
        (value,) = layout.unpack(self.cursor.take(layout.size, what))
        return int(value)

    def _u32(self, what: str) -> int:
        return self._unpack("I", what)

    @property
    def _length_layout(self) -> struct.Struct:
        """A count or length: uint32 in version 1, uint64 after."""
        return struct.Struct(self.order + ("Q" if self.wide else "I"))

    def _length(self, what: str) -> int:
        layout = self._length_layout
        (value,) = layout.unpack(self.cursor.take(layout.size, what))
        return int(value)

    @property
    def _length_size(self) -> int:
        return 8 if self.wide else 4

    def _text(self, what: str, limit: int) -> str:
        length = self._length(f"{what} length")
        if length > limit:
            raise CorruptModelError(
                f"{self.path}: GGUF {what} of {length:,} bytes at byte {self.cursor.pos:,}; "
                f"at most {limit:,} are allowed: the file is damaged or crafted"
            )
        return self.cursor.take(length, what).decode("utf-8", "replace")

    # --- the file ---------------------------------------------------------------------------

    def parse(self) -> Container:
        cursor = self.cursor
        if cursor.size < 8:
            raise NotAModelError(f"{self.path}: {cursor.size} bytes: too short for a GGUF header")
        magic = cursor.take(4, "magic")
        if magic != MAGIC:
            raise NotAModelError(
                f"{self.path}: not a GGUF file: it starts with {magic!r}, expected {MAGIC!r}"
            )
        version, big_endian = self._version()
        self.wide = version >= 2
        tensors = self._count("tensor count", MAX_TENSORS, 24 if self.wide else 20)
        keys = self._count("key/value count", MAX_KEYS, self._length_size + 4 + 1)
        metadata, alignment = self._metadata(keys)
        infos = [self._tensor_info(index) for index in range(tensors)]
        data_start = -(-cursor.pos // alignment) * alignment
        placed = self._place(infos, data_start, alignment)
        return Container(
            version=version,
            big_endian=big_endian,
            metadata=MappingProxyType(metadata),
            tensors=placed,
            alignment=alignment,
            data_start=data_start,
            bytes_read=cursor.bytes_read,
        )

    def _version(self) -> tuple[int, bool]:
        raw = self.cursor.take(4, "version")
        (little,) = struct.unpack("<I", raw)
        (big,) = struct.unpack(">I", raw)
        # A version written big-endian reads as N << 24 little-endian (gguf.cpp does the same).
        if little & 0xFFFF == 0 and big in VERSIONS:
            self.order = ">"
            return big, True
        if little not in VERSIONS:
            raise CorruptModelError(
                f"{self.path}: GGUF version {little:,}; rnninspect reads versions 1 to 3 "
                "(little- or big-endian)"
            )
        return little, False

    def _count(self, what: str, cap: int, smallest: int) -> int:
        """A count of entries, each at least `smallest` bytes: refused if the rest of the file
        cannot hold that many, or if it passes the cap."""
        count = self._length(what)
        if count > cap or count * smallest > self.cursor.left():
            raise CorruptModelError(
                f"{self.path}: GGUF header claims {count:,} entries ({what}); the "
                f"{self.cursor.left():,} bytes left in the file hold at most "
                f"{min(cap, self.cursor.left() // smallest):,}: the file is damaged or crafted"
            )
        return count

    # --- key/values -------------------------------------------------------------------------

    def _metadata(self, count: int) -> tuple[dict[str, MetadataValue], int]:
        metadata: dict[str, MetadataValue] = {}
        seen: set[str] = set()
        alignment = DEFAULT_ALIGNMENT
        for _ in range(count):
            key = self._text("metadata key", MAX_KEY_BYTES)
            if key in seen:
                raise CorruptModelError(
                    f"{self.path}: GGUF metadata key {_short(key)!r} appears twice (ggml "
                    "refuses such files): the file is damaged or crafted"
                )
            seen.add(key)
            kind = self._value_type(f"metadata key {_short(key)!r}")
            value = self._value(kind, key, 0)
            if key == ALIGNMENT_KEY:
                alignment = self._alignment(kind, value)
            if value is not None:
                metadata[key] = value
        return metadata, alignment

    def _value_type(self, what: str) -> ValueType:
        code = self._u32(f"{what} value type")
        kind = VALUE_TYPES.get(code)
        if kind is None:
            known = ", ".join(f"{v.code} {v.name}" for v in VALUE_TYPES.values())
            raise CorruptModelError(
                f"{self.path}: GGUF {what} has value type {code:,}; expected one of {known}"
            )
        return kind

    def _value(self, kind: ValueType, key: str, depth: int, keep: bool = True) -> Kept:
        """One value; None where it is walked over but not kept (too long)."""
        if kind.struct is not None:
            layout = struct.Struct(self.order + kind.struct)
            (value,) = layout.unpack(self.cursor.take(layout.size, f"value of {_short(key)!r}"))
            return bool(value) if kind.struct == "?" else value
        if kind.code == STRING:
            return self._string(f"string value of {_short(key)!r}", keep)
        return self._array(key, depth + 1, keep)

    def _string(self, what: str, keep: bool) -> str | None:
        length = self._length(f"{what} length")
        if not keep or length > MAX_KEPT_STRING or self.kept_bytes + length > MAX_KEPT_BYTES:
            self.cursor.skip(length, what)
            return None
        self.kept_bytes += length
        return self.cursor.take(length, what).decode("utf-8", "replace")

    def _array(self, key: str, depth: int, keep: bool) -> Kept:
        what = f"array {_short(key)!r}"
        if depth > MAX_DEPTH:
            raise CorruptModelError(
                f"{self.path}: GGUF {what} nests arrays {depth} deep; at most {MAX_DEPTH} are "
                "read: the file is damaged or crafted"
            )
        kind = self._value_type(what)
        count = self._length(f"{what} length")
        keep = keep and count <= MAX_KEPT_ARRAY and self.kept_elements + count <= MAX_KEPT_ELEMENTS
        if keep:
            self.kept_elements += count
        if kind.struct is not None:
            nbytes = count * kind.size
            if not keep:
                self.cursor.skip(nbytes, what)
                return None
            values = struct.unpack(
                f"{self.order}{count}{kind.struct}", self.cursor.take(nbytes, what)
            )
            return tuple(bool(v) for v in values) if kind.struct == "?" else tuple(values)
        # Strings and arrays: each at least a length (and a type), walked one by one.
        smallest = self._length_size + (4 if kind.code == ARRAY else 0)
        self.cursor.need(count * smallest, what)
        self.items += count
        if self.items > MAX_ITEMS:
            raise CorruptModelError(
                f"{self.path}: GGUF metadata holds more than {MAX_ITEMS:,} strings and nested "
                f"arrays (at {what}); real files hold well under a million: the file is "
                "damaged or crafted"
            )
        if kind.code == STRING and not keep:
            self.cursor.skip_strings(count, self._length_layout, what)
            return None
        if kind.code == STRING:
            items: list[Kept] = [self._string(f"string in {what}", True) for _ in range(count)]
        else:
            items = [self._array(key, depth + 1, keep) for _ in range(count)]
        return None if not keep or None in items else tuple(items)  # type: ignore[arg-type]

    def _alignment(self, kind: ValueType, value: MetadataValue | None) -> int:
        if kind.name != "UINT32" or not isinstance(value, int) or value <= 0 or value & (value - 1):
            raise CorruptModelError(
                f"{self.path}: GGUF {ALIGNMENT_KEY} is {value!r} ({kind.name}); it must be a "
                "UINT32 power of two (ggml refuses anything else)"
            )
        return value

    # --- tensor infos -----------------------------------------------------------------------

    def _tensor_info(self, index: int) -> tuple[str, tuple[int, ...], GgmlType, int]:
        name = self._text(f"tensor {index:,} name", MAX_KEY_BYTES)
        what = f"tensor '{_short(name)}'"
        n_dims = self._u32(f"{what} n_dims")
        if n_dims > MAX_DIMS:
            raise CorruptModelError(
                f"{self.path}: GGUF {what} has {n_dims:,} dimensions; ggml allows at most "
                f"{MAX_DIMS} (GGML_MAX_DIMS): the file is damaged or crafted"
            )
        dims = tuple(self._length(f"{what} dimension") for _ in range(n_dims))
        code = self._u32(f"{what} type")
        offset = self._unpack("Q", f"{what} offset")
        return name, dims, self._ggml_type(what, code), offset

    def _ggml_type(self, what: str, code: int) -> GgmlType:
        found = GGML_TYPES.get(code)
        if found is not None:
            return found
        if code in REMOVED_TYPES:
            raise CorruptModelError(
                f"{self.path}: GGUF {what} has ggml type {code} ({REMOVED_TYPES[code]}), "
                "which ggml removed and no longer reads; re-convert the model with a current "
                "llama.cpp"
            )
        raise CorruptModelError(
            f"{self.path}: GGUF {what} has unknown ggml type {code:,}; rnninspect knows "
            f"types up to {max(GGML_TYPES)} ({GGML_TYPES[max(GGML_TYPES)].name}): the file "
            "is damaged, crafted, or newer than this version"
        )

    def _place(
        self,
        infos: list[tuple[str, tuple[int, ...], GgmlType, int]],
        data_start: int,
        alignment: int,
    ) -> tuple[TensorInfo, ...]:
        """Sizes, offsets and names checked: each tensor whole, inside the file, aligned, and
        no byte shared by two tensors."""
        placed: list[TensorInfo] = []
        names: set[str] = set()
        size = self.cursor.size
        for name, dims, kind, offset in infos:
            what = f"{self.path}: GGUF tensor '{_short(name)}'"
            if name in names:
                raise CorruptModelError(
                    f"{what} appears twice (ggml refuses duplicate names): the file is damaged "
                    "or crafted"
                )
            names.add(name)
            elements = 1
            for dim in dims:
                elements *= dim
                if dim >= _INT63 or elements >= _INT63:
                    raise CorruptModelError(
                        f"{what} has dimensions {list(dims)}: {elements:,} elements or more, "
                        "beyond what ggml can address (2^63): the file is damaged or crafted"
                    )
            row = dims[0] if dims else 1
            if row % kind.elements:
                raise CorruptModelError(
                    f"{what} is {kind.name} with rows of {row:,} elements, not a whole number "
                    f"of its {kind.elements}-element blocks: the file is damaged"
                )
            nbytes = kind.nbytes(elements)
            if offset % alignment:
                raise CorruptModelError(
                    f"{what} starts at data offset {offset:,}, not a multiple of the file's "
                    f"alignment {alignment}: the file is damaged or crafted"
                )
            begin = data_start + offset
            if nbytes and begin + nbytes > size:
                raise CorruptModelError(
                    f"{what} ({kind.name}, ne {list(dims)}) needs bytes {begin:,} to "
                    f"{begin + nbytes:,} but the file ends at byte {size:,}: the file is "
                    "truncated or crafted"
                )
            placed.append(TensorInfo(name, dims, kind, offset, begin, elements, nbytes))
        ordered = sorted((t for t in placed if t.nbytes), key=lambda t: t.begin)
        for before, after in itertools.pairwise(ordered):
            if after.begin < before.end:
                raise CorruptModelError(
                    f"{self.path}: GGUF tensors '{_short(before.name)}' and "
                    f"'{_short(after.name)}' overlap "
                    f"(data offsets {before.offset:,} and {after.offset:,}); each byte "
                    "belongs to one tensor: the file is damaged or crafted"
                )
        return tuple(placed)
