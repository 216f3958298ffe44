"""The data a PyTorch state dict is made of, as the pickle names it — the only globals and
persistent ids `pickle_data` accepts. Each entry is a plain function over the call's arguments
that builds a description (a `TensorData`, a dict), never the object torch would build.

Accepted: `collections.OrderedDict`; tensors rebuilt by `torch._utils._rebuild_tensor`,
`_rebuild_tensor_v2`, `_rebuild_tensor_v3`, `_rebuild_parameter` and
`_rebuild_parameter_with_state` (torch/_utils.py); the storage classes and torch dtypes they
name; storages as `torch.save`'s persistent ids `('storage', <torch.FloatStorage>, key,
location, numel)` (torch/serialization.py, `_save` and `_legacy_save`); `torch.Size`,
`torch.device`; `_codecs.encode` (how protocol 2 writes bytes) and `set`.

Any other global becomes an `Opaque` placeholder that records its dotted name and whatever the
pickle does to it, as data: it is never imported and never called, so a checkpoint that also
holds an `argparse.Namespace`, a NumPy scalar, a config object or a whole pickled module can
still be read (the reader names every such global in a warning). `is_data_global` is the
allow-list of data types a checkpoint legitimately holds: a pickle that calls anything else
(REDUCE, INST, OBJ) would run code chosen by the file under `torch.load`, and is refused.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from inspector.errors import CorruptModelError
from inspector.formats.shown import shown

MAX_DIMS = 64  # a tensor's rank
# Any one count a pickle gives (a size, stride, offset, storage's elements) and any tensor's
# elements: 2**48 (256 Ti) is beyond every real tensor, and keeps every product of counts
# and every number printed in a message small (a 5,000-digit int cannot even become a str).
MAX_COUNT = 1 << 48
_PLAIN_KEY = re.compile(r"^[A-Za-z0-9_.\-]{1,200}$")


class RefusedPickle(Exception):
    """The pickle names something outside the data-only vocabulary (`what`: the global, or the
    opcode); loading it would import or run code."""

    def __init__(self, what: str, kind: str) -> None:
        super().__init__(what)
        self.what = what
        self.kind = kind  # "global", "opcode", "persistent id"


@dataclass(frozen=True)
class DType:
    """A torch dtype: its name, bytes per element, and the NumPy type its values decode as
    (None: not decoded; bfloat16 is widened to float32 by the value reader)."""

    name: str
    itemsize: int
    numpy: str | None


# torch/storage.py `_dtype_to_storage_type_map`: the legacy storage classes torch.save names.
_F32 = DType("float32", 4, "f4")
STORAGE_TYPES: Mapping[str, DType] = MappingProxyType(
    {
        "DoubleStorage": DType("float64", 8, "f8"),
        "FloatStorage": _F32,
        "HalfStorage": DType("float16", 2, "f2"),
        "BFloat16Storage": DType("bfloat16", 2, None),
        "LongStorage": DType("int64", 8, "i8"),
        "IntStorage": DType("int32", 4, "i4"),
        "ShortStorage": DType("int16", 2, "i2"),
        "CharStorage": DType("int8", 1, "i1"),
        "ByteStorage": DType("uint8", 1, "u1"),
        "BoolStorage": DType("bool", 1, "b1"),
        "ComplexFloatStorage": DType("complex64", 8, "c8"),
        "ComplexDoubleStorage": DType("complex128", 16, "c16"),
        "QInt8Storage": DType("qint8", 1, None),
        "QUInt8Storage": DType("quint8", 1, None),
        "QInt32Storage": DType("qint32", 4, None),
        # _rebuild_tensor_v3 (dtypes without a legacy class) stores bytes with the dtype apart.
        "UntypedStorage": DType("uint8", 1, "u1"),
    }
)

# torch dtype objects pickle as `torch.<name>` globals (passed to _rebuild_tensor_v3).
TORCH_DTYPES: Mapping[str, DType] = MappingProxyType(
    {
        "float32": _F32,
        "float": _F32,
        "float64": DType("float64", 8, "f8"),
        "double": DType("float64", 8, "f8"),
        "float16": DType("float16", 2, "f2"),
        "half": DType("float16", 2, "f2"),
        "bfloat16": DType("bfloat16", 2, None),
        "int64": DType("int64", 8, "i8"),
        "int32": DType("int32", 4, "i4"),
        "int16": DType("int16", 2, "i2"),
        "int8": DType("int8", 1, "i1"),
        "uint8": DType("uint8", 1, "u1"),
        "uint16": DType("uint16", 2, "u2"),
        "uint32": DType("uint32", 4, "u4"),
        "uint64": DType("uint64", 8, "u8"),
        "bool": DType("bool", 1, "b1"),
        "complex64": DType("complex64", 8, "c8"),
        "complex128": DType("complex128", 16, "c16"),
        "float8_e4m3fn": DType("float8_e4m3fn", 1, None),
        "float8_e5m2": DType("float8_e5m2", 1, None),
        "float8_e4m3fnuz": DType("float8_e4m3fnuz", 1, None),
        "float8_e5m2fnuz": DType("float8_e5m2fnuz", 1, None),
    }
)


@dataclass(frozen=True)
class StorageType:
    """A `torch.<X>Storage` class named by the pickle (never imported)."""

    name: str
    dtype: DType


@dataclass(frozen=True)
class Storage:
    """One stored buffer: `numel` elements of `dtype` under `key` (zip member `data/<key>`, or
    the key's slot in a legacy file's storage section)."""

    key: str
    dtype: DType
    location: str
    numel: int

    @property
    def nbytes(self) -> int:
        return self.numel * self.dtype.itemsize


@dataclass(frozen=True)
class TensorData:
    """A tensor as `torch._utils._rebuild_tensor` would build it: a view of a storage."""

    storage: Storage
    offset: int  # elements of `dtype` from the storage's start
    size: tuple[int, ...]
    stride: tuple[int, ...]
    dtype: DType
    parameter: bool = False  # wrapped by _rebuild_parameter (an nn.Parameter)

    @property
    def numel(self) -> int:
        return math.prod(self.size)

    @property
    def identity(self) -> tuple[object, ...]:
        """Two tensors with the same identity are one stored array (tied weights)."""
        return (self.storage.key, self.offset, self.size, self.stride, self.dtype.name)


@dataclass(frozen=True)
class Device:
    text: str


@dataclass(frozen=True)
class Global:
    """A global in the vocabulary that is not called itself (torch dtypes are values)."""

    module: str
    name: str


@dataclass(eq=False)
class Opaque:
    """A global outside the vocabulary, or what calling or building one would give: `name` is
    the global's dotted name as a message shows it (`shown`). Nothing is imported or called.
    NEWOBJ (and REDUCE/OBJ/INST of an allow-listed type) give a new Opaque with
    `args`; BUILD appends its state
    to `state`; SETITEM(S) and APPEND(S) (a defaultdict, a list subclass) add to `entries` as
    (key or index, value). All of it stays plain data, so tensors inside remain locatable; they
    are never taken for parameters. Compared by identity: the memo may share one placeholder."""

    name: str
    called: bool = False
    args: tuple[object, ...] = ()
    allowed: bool = False  # the global is on the allow-list of data (`is_data_global`)
    state: list[object] = field(default_factory=list)
    entries: list[tuple[object, object]] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"<{self.name}{'(...)' if self.called else ''}>"

    def children(self) -> list[tuple[str, object]]:
        """What the placeholder holds, each with a label for tensor paths."""
        held: list[tuple[str, object]] = [(f"arg{i}", a) for i, a in enumerate(self.args)]
        for index, state in enumerate(self.state):
            if isinstance(state, dict):
                held.extend((label(k), v) for k, v in state.items())
            else:
                held.append((f"state{index}" if index else "state", state))
        held.extend((label(k), v) for k, v in self.entries)
        return held


def label(key: object) -> str:
    """A dict key as one step of a tensor's path: strings as they are, numbers by value, any
    other key (a tensor, a placeholder: optimizer state of a pickled optimizer is keyed by its
    parameters) by a short tag, never a long repr."""
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, (int, float)):
        return brief(key)  # a 5,000-digit key cannot even become a str
    if isinstance(key, TensorData):
        return "<tensor>"
    return repr(key) if isinstance(key, Opaque) else f"<{type(key).__name__}>"


# What a checkpoint legitimately holds beside its tensors, as the pickle names it: data types
# whose reconstruction runs only their own library's code on the file's data. torch.load's
# weights_only unpickler accepts the first group too (torch/_weights_only_unpickler.py,
# `_get_allowed_globals`); the rest are what training scripts put in checkpoints (fairseq's
# argparse.Namespace, NumPy scalars and arrays, dates, paths). Whole names only: an attribute
# chain through a module (`logging.os.system`) or any other name is outside the list.
DATA_GLOBALS = frozenset(
    {
        "collections.OrderedDict", "collections.Counter", "collections.defaultdict",
        "collections.deque", "torch.nn.parameter.Parameter", "torch.Tensor",
        "torch._tensor._rebuild_from_type_v2", "torch.serialization._get_layout",
        "argparse.Namespace", "copyreg._reconstructor",
        "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct",
        "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar", "numpy.ndarray",
        "numpy.dtype", "builtins.object", "builtins.slice", "builtins.complex",
        "builtins.bytearray", "builtins.bytes", "builtins.list", "builtins.dict",
        "builtins.tuple", "builtins.int", "builtins.float", "builtins.str", "builtins.bool",
        "builtins.range", "__builtin__.object", "__builtin__.slice", "__builtin__.complex",
        "__builtin__.list", "__builtin__.dict", "__builtin__.tuple", "__builtin__.int",
        "__builtin__.float", "__builtin__.long", "__builtin__.unicode", "__builtin__.str",
        "datetime.datetime", "datetime.date", "datetime.time", "datetime.timedelta",
        "datetime.timezone", "pathlib.Path", "pathlib.PosixPath", "pathlib.WindowsPath",
        "pathlib.PurePath", "pathlib.PurePosixPath", "pathlib.PureWindowsPath",
        "fractions.Fraction", "decimal.Decimal", "uuid.UUID",
        # TorchScript's data.pkl tags lists with their TorchScript types (torch/jit/_pickle.py).
        "torch.jit._pickle.restore_type_tag", "torch.jit._pickle.build_intlist",
        "torch.jit._pickle.build_doublelist", "torch.jit._pickle.build_boollist",
        "torch.jit._pickle.build_tensorlist",
    }
)  # fmt: skip
# Allow-listed functions that call one of their arguments (its index): that argument must be
# on the list too. copyreg._reconstructor(cls, base, state) runs `base.__init__(obj, state)`;
# torch._tensor._rebuild_from_type_v2(func, new_type, args, state) runs `func(*args)`.
CALLS_ARGUMENT: Mapping[str, int] = MappingProxyType(
    {"copyreg._reconstructor": 1, "torch._tensor._rebuild_from_type_v2": 0}
)
# numpy >= 1.25 pickles a dtype's class (`numpy.dtypes.Float32DType`).
_NUMPY_DTYPE = re.compile(r"^numpy\.dtypes\.[A-Za-z0-9]+DType$")


def brief(value: object) -> str:
    """A value from the file as a short message fragment: a huge integer by its size, a long
    string shortened with its length said, anything else by its type."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (
            repr(value) if abs(value) < MAX_COUNT else f"an integer of {value.bit_length():,} bits"
        )
    if isinstance(value, str):
        return repr(shown(value, 60))
    if value is None or isinstance(value, (bool, float)):
        return repr(value)
    return f"a {type(value).__name__}"


def is_data_global(dotted: str) -> bool:
    """Whether the whole dotted name is on the allow-list of data a checkpoint holds."""
    return dotted in DATA_GLOBALS or _NUMPY_DTYPE.match(dotted) is not None


# --- the vocabulary ---------------------------------------------------------------------


def _natural(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _ints(value: object, what: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or len(value) > MAX_DIMS:
        raise CorruptModelError(f"tensor {what} is {type(value).__name__}, expected int tuple")
    bad = next((v for v in value if not _natural(v) or v > MAX_COUNT), None)
    if bad is not None:
        raise CorruptModelError(
            f"tensor {what} holds {brief(bad)}, which is not a size (at most {MAX_COUNT:,})"
        )
    return tuple(value)


def _tensor(args: tuple[object, ...], dtype: DType | None = None) -> TensorData:
    storage, offset, size, stride = args[:4]
    if not isinstance(storage, Storage):
        raise CorruptModelError("a tensor is rebuilt from something that is not a storage")
    if not _natural(offset) or offset > MAX_COUNT:  # type: ignore[operator]
        raise CorruptModelError(f"tensor storage offset {brief(offset)} is not an element index")
    shape = _ints(size, "size")
    strides = _ints(stride, "stride")
    if len(shape) != len(strides):
        raise CorruptModelError(f"tensor size {shape} and stride {strides} differ in rank")
    elements = 1
    for extent in shape:
        elements *= extent
        if elements > MAX_COUNT:
            # Even a stride-0 view (expand) of real data never claims this many elements.
            raise CorruptModelError(
                f"a tensor of {len(shape)} dimensions claims more than {MAX_COUNT:,} elements"
            )
    assert isinstance(offset, int)
    return TensorData(storage, offset, shape, strides, dtype or storage.dtype)


def _arity(args: tuple[object, ...], low: int, high: int, name: str) -> None:
    if not low <= len(args) <= high:
        raise CorruptModelError(f"{name} called with {len(args)} arguments")


def _rebuild_tensor(args: tuple[object, ...]) -> TensorData:
    _arity(args, 4, 4, "_rebuild_tensor")
    return _tensor(args)


def _rebuild_tensor_v2(args: tuple[object, ...]) -> TensorData:
    # (storage, offset, size, stride, requires_grad, backward_hooks[, metadata])
    _arity(args, 6, 7, "_rebuild_tensor_v2")
    return _tensor(args)


def _rebuild_tensor_v3(args: tuple[object, ...]) -> TensorData:
    # (storage, offset, size, stride, requires_grad, backward_hooks, dtype[, metadata]):
    # the storage is untyped bytes and the dtype comes apart; offsets count elements of it.
    _arity(args, 7, 8, "_rebuild_tensor_v3")
    dtype = args[6]
    if not isinstance(dtype, Global) or dtype.name not in TORCH_DTYPES:
        raise CorruptModelError(f"_rebuild_tensor_v3 dtype {brief(dtype)} is not a torch dtype")
    storage = args[0]
    chosen = TORCH_DTYPES[dtype.name]
    if isinstance(storage, Storage):
        if storage.nbytes % chosen.itemsize:
            raise CorruptModelError(
                f"storage '{storage.key}' holds {storage.nbytes} bytes, not a whole number of "
                f"{chosen.name} elements"
            )
        typed = Storage(storage.key, chosen, storage.location, storage.nbytes // chosen.itemsize)
        return _tensor((typed, *args[1:4]), chosen)
    return _tensor(args, chosen)


def _rebuild_parameter(args: tuple[object, ...]) -> TensorData:
    # (data, requires_grad, backward_hooks[, state]): an nn.Parameter around a tensor.
    _arity(args, 3, 4, "_rebuild_parameter")
    data = args[0]
    if not isinstance(data, TensorData):
        raise CorruptModelError("_rebuild_parameter wraps something that is not a tensor")
    return TensorData(data.storage, data.offset, data.size, data.stride, data.dtype, True)


def _ordered_dict(args: tuple[object, ...]) -> dict[object, object]:
    # OrderedDict() (protocol 2 writes the items afterwards with SETITEMS), or
    # OrderedDict([[key, value], ...]) from protocols 0 and 1.
    if not args:
        return {}
    _arity(args, 1, 1, "OrderedDict")
    (items,) = args
    if not isinstance(items, (list, tuple)):
        raise CorruptModelError("OrderedDict built from something that is not a list")
    result: dict[object, object] = {}
    for item in items:
        if not isinstance(item, (list, tuple)) or len(item) != 2:
            raise CorruptModelError("OrderedDict item is not a (key, value) pair")
        set_item(result, item[0], item[1])
    return result


def _size(args: tuple[object, ...]) -> tuple[int, ...]:
    _arity(args, 0, 1, "torch.Size")
    return _ints(args[0], "size") if args else ()


def _device(args: tuple[object, ...]) -> Device:
    _arity(args, 1, 2, "torch.device")
    return Device(":".join(str(a) for a in args))


def _encode(args: tuple[object, ...]) -> bytes:
    # Protocol 2 writes a bytes object as _codecs.encode(text, "latin1").
    _arity(args, 1, 2, "_codecs.encode")
    text, *encoding = args
    if not isinstance(text, str) or encoding not in ([], ["latin1"], ["latin-1"]):
        raise CorruptModelError("_codecs.encode with arguments other than (text, 'latin1')")
    return text.encode("latin-1")


def _collection(args: tuple[object, ...]) -> list[object]:
    # set([...]) / frozenset([...]): kept as a list (no hashing of file-controlled values; a
    # list is never a dict key, so it cannot carry nested tuples into a hash either).
    _arity(args, 0, 1, "set")
    if args and not isinstance(args[0], (list, tuple)):
        raise CorruptModelError("set built from something that is not a list")
    return list(args[0]) if args else []  # type: ignore[call-overload]


_Callable = Callable[[tuple[object, ...]], object]
CALLABLES: Mapping[tuple[str, str], _Callable] = MappingProxyType(
    {
        ("collections", "OrderedDict"): _ordered_dict,
        ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
        ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
        ("torch._utils", "_rebuild_tensor_v3"): _rebuild_tensor_v3,
        ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
        ("torch", "Size"): _size,
        ("torch", "device"): _device,
        ("_codecs", "encode"): _encode,
        ("builtins", "set"): _collection,
        ("builtins", "frozenset"): _collection,
        ("__builtin__", "set"): _collection,
    }
)


def resolve_global(module: str, name: str) -> object:
    """The value a GLOBAL pushes: a marker for a vocabulary entry, never the object itself; an
    `Opaque` placeholder for any other name. Raises RefusedPickle for a TorchScript class."""
    if (module, name) in CALLABLES:
        return Global(module, name)
    # _rebuild_tensor_v3's untyped storage is pickled as torch.storage.UntypedStorage.
    if (module == "torch" or (module, name) == ("torch.storage", "UntypedStorage")) and (
        name in STORAGE_TYPES
    ):
        return StorageType(name, STORAGE_TYPES[name])
    if module == "torch" and name in TORCH_DTYPES:
        return Global(module, name)
    dotted = f"{module}.{name}"
    return Opaque(shown(dotted), allowed=is_data_global(dotted))


def storage_of(pid: object, storages: dict[str, Storage]) -> Storage:
    """A persistent id: ('storage', storage_type, key, location, numel) from the zip writer,
    with a sixth item (view metadata, None since torch 1.0) from the legacy writer."""
    if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
        head = pid[0] if isinstance(pid, tuple) and pid else pid
        raise RefusedPickle(f"persistent id {brief(head)}", "persistent id")
    if len(pid) not in (5, 6):
        raise CorruptModelError(f"storage persistent id has {len(pid)} items, expected 5 or 6")
    _, kind, key, location, numel = pid[:5]
    if not isinstance(kind, StorageType):
        raise CorruptModelError("storage persistent id names no torch storage class")
    if not isinstance(key, str) or not _PLAIN_KEY.match(key) or key in (".", ".."):
        raise CorruptModelError(
            f"storage key {brief(key)} is not a plain name (a path out of the archive?)"
        )
    if not isinstance(location, str) or not _natural(numel) or numel > MAX_COUNT:
        raise CorruptModelError(
            f"storage '{key}' has a malformed location or element count ({brief(numel)})"
        )
    if len(pid) == 6 and pid[5] is not None:
        raise CorruptModelError(
            f"storage '{key}' is a view of another storage (pre-1.0 legacy format): not supported"
        )
    assert isinstance(numel, int)
    storage = Storage(key, kind.dtype, location, numel)
    known = storages.setdefault(key, storage)
    if known != storage:
        raise CorruptModelError(f"storage '{key}' is declared twice with different types or sizes")
    return known


def set_item(target: dict[object, object], key: object, value: object) -> None:
    try:
        target[key] = value
    except TypeError:
        raise CorruptModelError(f"dict key of type {type(key).__name__} is unhashable") from None
