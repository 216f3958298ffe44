"""A pickle read as data, never unpickled: the opcode stream (stdlib `pickletools.genops`, which
constructs nothing) drives a small stack machine whose only calls are the state-dict vocabulary
(`vocabulary.py`). Nothing named in the file is imported or called. Any other global becomes an
`Opaque` placeholder: building an object of it (NEWOBJ, NEWOBJ_EX: `cls.__new__`) or calling
an allow-listed data type (REDUCE, OBJ, INST) gives another placeholder holding the arguments
as data, BUILD keeps the state beside it, item and append opcodes add to it. The names of all
such globals are recorded (`Parsed.foreign`, and `Parsed.unlisted` for those outside the
allow-list) so the reader can name them.

Refused (`RefusedPickle`): a call of anything outside the allow-list or of a call's result —
what `torch.load` would run is then chosen by the file (`os.system`, `timeit.timeit`,
`pydoc.pipepager`...); opcodes that name globals through the copyreg registry (EXT*),
out-of-band buffers and text persistent ids.

Everything is bounded before it is allocated: the opcode count, each string or bytes argument
and text line, the memo (indices as well as entries), the MARK nesting, the stack, the nesting
of tuples (hashing a tuple nested a million deep as a dict key overflows the C stack) and the
number of foreign names recorded.
"""

from __future__ import annotations

import pickletools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import IO

from inspector.errors import CorruptModelError
from inspector.formats.torch.vocabulary import (
    CALLABLES,
    CALLS_ARGUMENT,
    Global,
    Opaque,
    RefusedPickle,
    Storage,
    brief,
    resolve_global,
    set_item,
    storage_of,
)

MAX_OPS = 5_000_000  # a state dict takes ~30 opcodes per tensor
MAX_ARG_BYTES = 16 * 1024 * 1024  # one string, bytes object or text line
MAX_MARKS = 1_000  # nested MARKs; a state dict needs about 5
MAX_STACK = 1_000_000
MAX_FOREIGN = 1_000  # distinct foreign global names recorded (a checkpoint holds a handful)
MAX_TUPLE_DEPTH = 100  # tuples inside tuples; a state dict's deepest is a size in a storage id


def _natural(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _data(value: object) -> bool:
    """An allow-listed global itself (a class such as `builtins.object`), or a vocabulary one."""
    if isinstance(value, Opaque):
        return value.allowed and not value.called
    return isinstance(value, Global)


class _TooLong(Exception):
    pass


class _Bounded:
    """The stream genops reads, refusing any argument or line longer than MAX_ARG_BYTES before
    it is read (a length field can claim gigabytes)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw

    def read(self, size: int = -1) -> bytes:
        if size < 0 or size > MAX_ARG_BYTES:
            raise _TooLong(size)
        return self._raw.read(size)

    def readline(self) -> bytes:
        line = self._raw.readline(MAX_ARG_BYTES + 1)
        if len(line) > MAX_ARG_BYTES:
            raise _TooLong(len(line))
        return line

    def tell(self) -> int:
        return self._raw.tell()


@dataclass
class Parsed:
    value: object
    storages: dict[str, Storage]  # every storage a persistent id declared, by key
    end: int  # stream position after STOP
    foreign: tuple[str, ...] = ()  # globals outside the vocabulary, first-seen order, distinct
    foreign_capped: bool = False  # more than MAX_FOREIGN distinct names: the rest not recorded
    unlisted: tuple[str, ...] = ()  # those of `foreign` outside the allow-list of data


def parse(stream: IO[bytes], storages: dict[str, Storage] | None = None) -> Parsed:
    """Run one pickle (up to its STOP) as data. Raises RefusedPickle for anything outside the
    vocabulary and CorruptModelError for a malformed or oversized stream."""
    machine = _Machine({} if storages is None else storages)
    try:
        value = machine.run(pickletools.genops(_Bounded(stream)))  # type: ignore[arg-type]
    except _TooLong as error:
        raise CorruptModelError(
            f"pickle argument of {error.args[0]:,} bytes exceeds the {MAX_ARG_BYTES:,}-byte limit"
        ) from None
    except (ValueError, EOFError, UnicodeDecodeError, OverflowError) as error:
        raise CorruptModelError(f"malformed pickle ({error})") from None
    except RecursionError:
        raise CorruptModelError("pickle values nested too deeply to compare") from None
    return Parsed(
        value,
        machine.storages,
        stream.tell(),
        tuple(machine.foreign),
        machine.foreign_capped,
        tuple(name for name, allowed in machine.foreign.items() if not allowed),
    )


class _Machine:
    def __init__(self, storages: dict[str, Storage]) -> None:
        self.stack: list[object] = []
        self.marks: list[int] = []
        self.memo: dict[int, object] = {}
        self.storages = storages
        self.foreign: dict[str, bool] = {}  # name -> on the allow-list of data
        self.foreign_capped = False
        # Nesting of each tuple that holds tuples, by id, with the tuple kept alive so that no
        # later object can take its id; a tuple missing here holds no tuple (depth 1).
        self.depths: dict[int, tuple[tuple[object, ...], int]] = {}

    def run(self, ops: Iterator[tuple[pickletools.OpcodeInfo, object, int | None]]) -> object:
        for count, (opcode, arg, _pos) in enumerate(ops):
            if count >= MAX_OPS:
                raise CorruptModelError(f"pickle longer than {MAX_OPS:,} opcodes")
            name = opcode.name
            if name == "STOP":
                if len(self.stack) != 1 or self.marks:
                    raise CorruptModelError("pickle stops with a malformed stack")
                return self.stack.pop()
            self.step(name, arg, count)
            if len(self.stack) > MAX_STACK:
                raise CorruptModelError(f"pickle stack deeper than {MAX_STACK:,}")
        raise CorruptModelError("pickle ends without STOP")

    # Opcodes that push their argument (or a constant) unchanged.
    _PUSH_ARG = frozenset(
        {
            "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT",
            "BINFLOAT", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "UNICODE",
            "SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "BINSTRING", "SHORT_BINSTRING",
            "STRING", "BYTEARRAY8",
        }
    )  # fmt: skip
    _CONSTANTS: Mapping[str, Callable[[], object]] = MappingProxyType(
        {
            "NONE": lambda: None,
            "NEWTRUE": lambda: True,
            "NEWFALSE": lambda: False,
            "EMPTY_LIST": list,
            "EMPTY_DICT": dict,
            "EMPTY_TUPLE": tuple,
            "EMPTY_SET": list,
        }
    )

    def pop(self) -> object:
        if not self.stack or (self.marks and len(self.stack) <= self.marks[-1]):
            raise CorruptModelError("pickle pops from an empty stack")
        return self.stack.pop()

    def pop_mark(self) -> list[object]:
        if not self.marks:
            raise CorruptModelError("pickle closes a MARK it never opened")
        start = self.marks.pop()
        items = self.stack[start:]
        del self.stack[start:]
        return items

    def top(self) -> object:
        if not self.stack:
            raise CorruptModelError("pickle reads an empty stack")
        return self.stack[-1]

    def step(self, name: str, arg: object, count: int) -> None:
        stack = self.stack
        if name in self._PUSH_ARG:
            stack.append(arg)
        elif name in self._CONSTANTS:
            stack.append(self._CONSTANTS[name]())
        elif name in ("PROTO", "FRAME"):
            pass
        elif name == "MARK":
            if len(self.marks) >= MAX_MARKS:
                raise CorruptModelError(f"pickle nests more than {MAX_MARKS} MARKs")
            self.marks.append(len(stack))
        elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
            n = int(name[-1])
            items = [self.pop() for _ in range(n)][::-1]
            stack.append(self._tuple(items))
        elif name == "TUPLE":
            stack.append(self._tuple(self.pop_mark()))
        elif name == "LIST":
            stack.append(self.pop_mark())
        elif name == "DICT":
            self.stack.append(self._pairs({}, self.pop_mark()))
        elif name == "APPEND":
            value = self.pop()
            self._extend([value])
        elif name in ("APPENDS", "ADDITEMS"):
            self._extend(self.pop_mark())
        elif name == "SETITEM":
            value = self.pop()
            key = self.pop()
            self._set_items([key, value])
        elif name == "SETITEMS":
            self._set_items(self.pop_mark())
        elif name == "FROZENSET":
            stack.append(self._tuple(self.pop_mark()))
        elif name == "POP":
            self.pop()
        elif name == "POP_MARK":
            self.pop_mark()
        elif name == "DUP":
            stack.append(self.top())
        elif name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
            index = len(self.memo) if name == "MEMOIZE" else arg
            # A pickler numbers memo entries in order, so an index beyond the opcode count
            # cannot come from one; refusing it keeps the memo's size bounded.
            if not _natural(index) or index > count:  # type: ignore[operator]
                raise CorruptModelError(f"pickle memo index {brief(index)} is out of range")
            self.memo[index] = self.top()  # type: ignore[index]
        elif name in ("GET", "BINGET", "LONG_BINGET"):
            if arg not in self.memo:
                raise CorruptModelError(
                    f"pickle reads memo entry {brief(arg)} that was never stored"
                )
            stack.append(self.memo[arg])
        elif name in ("GLOBAL", "INST"):
            module, _, attribute = str(arg).partition(" ")
            value = self._global(module, attribute)
            if name == "INST":
                self._call(value, tuple(self.pop_mark()))
            else:
                stack.append(value)
        elif name == "STACK_GLOBAL":
            second = self.pop()
            first = self.pop()
            if not isinstance(first, str) or not isinstance(second, str):
                raise CorruptModelError("STACK_GLOBAL with names that are not strings")
            stack.append(self._global(first, second))
        elif name == "REDUCE":
            args = self.pop()
            func = self.pop()
            if not isinstance(args, tuple):
                raise CorruptModelError("REDUCE with arguments that are not a tuple")
            self._call(func, args)
        elif name == "NEWOBJ":
            args = self.pop()
            cls = self.pop()
            if not isinstance(args, tuple):
                raise CorruptModelError("NEWOBJ with arguments that are not a tuple")
            self._new(cls, args)
        elif name == "OBJ":
            items = self.pop_mark()
            if not items:
                raise CorruptModelError("OBJ without a class")
            self._call(items[0], tuple(items[1:]))
        elif name == "NEWOBJ_EX":
            # cls.__new__(cls, *args, **kwargs): only ever a foreign class (protocol 4's
            # __getnewargs_ex__); the keyword arguments are kept as one more argument.
            kwargs = self.pop()
            args = self.pop()
            cls = self.pop()
            if not isinstance(cls, Opaque) or not isinstance(args, tuple):
                raise RefusedPickle("opcode NEWOBJ_EX", "opcode")
            self._new(cls, (*args, kwargs))
        elif name == "BUILD":
            state = self.pop()
            target = self.top()
            if isinstance(target, Opaque):
                target.state.append(state)  # kept as data; no __setstate__ exists to run
                return
            # OrderedDict state dicts carry `_metadata` (module versions) as their __dict__.
            if not isinstance(target, dict) or not isinstance(state, (dict, type(None))):
                raise CorruptModelError(f"BUILD on a {type(target).__name__}: not state-dict data")
        elif name == "BINPERSID":
            stack.append(storage_of(self.pop(), self.storages))
        elif name == "PERSID":
            # torch.save with pickle_protocol=0 writes its storage tuple's repr as a text
            # persistent id, which torch.load rejects too ("saved_id must be a tuple").
            raise CorruptModelError(
                f"a text persistent id {brief(arg)} (pickle protocol 0): not a storage "
                "reference; torch.load cannot read this file either"
            )
        else:
            # EXT1/2/4 name globals through the copyreg registry; NEXT_BUFFER /
            # READONLY_BUFFER read out-of-band data.
            raise RefusedPickle(f"opcode {name}", "opcode")

    def _tuple(self, items: list[object]) -> tuple[object, ...]:
        depth = 1 + max(
            (self.depths.get(id(i), ((), 1))[1] for i in items if isinstance(i, tuple)), default=0
        )
        if depth > MAX_TUPLE_DEPTH:
            raise CorruptModelError(f"pickle nests tuples deeper than {MAX_TUPLE_DEPTH} levels")
        built = tuple(items)
        if depth > 1:
            self.depths[id(built)] = (built, depth)
        return built

    def _global(self, module: str, name: str) -> object:
        value = resolve_global(module, name)
        if isinstance(value, Opaque) and value.name not in self.foreign:
            if len(self.foreign) < MAX_FOREIGN:
                self.foreign[value.name] = value.allowed
            else:
                self.foreign_capped = True
        return value

    def _call(self, func: object, args: tuple[object, ...]) -> None:
        """REDUCE, INST, OBJ: `func(*args)` under a real unpickler."""
        if isinstance(func, Opaque):
            if func.called or not func.allowed:
                # torch.load would call what the file chose, with the file's arguments.
                raise RefusedPickle(func.name + ("(...)" if func.called else ""), "call")
            index = CALLS_ARGUMENT.get(func.name)
            if index is not None and index < len(args) and not _data(args[index]):
                # An allow-listed function that calls one of its arguments calls that.
                called = args[index]
                name = called.name if isinstance(called, Opaque) else type(called).__name__
                raise RefusedPickle(f"{name} (through {func.name})", "call")
            self.stack.append(Opaque(func.name, True, args, allowed=True))
            return
        if not isinstance(func, Global) or (func.module, func.name) not in CALLABLES:
            kind = type(func).__name__
            raise CorruptModelError(f"pickle calls a {kind}, which is not callable data")
        self.stack.append(CALLABLES[(func.module, func.name)](args))

    def _new(self, cls: object, args: tuple[object, ...]) -> None:
        """NEWOBJ, NEWOBJ_EX: `cls.__new__(cls, *args)`, an object built without calling
        what the file chose (its state comes by BUILD); kept as a placeholder of `cls`."""
        if isinstance(cls, Opaque) and not cls.called:
            if args and not cls.allowed and any(a != {} for a in args):
                # `cls.__new__(cls, *args)` with the file's arguments is a call it chose: a
                # lazy `map`/`itertools.starmap` of os.system, run by whatever iterates it.
                raise RefusedPickle(f"{cls.name}.__new__", "call")
            self.stack.append(Opaque(cls.name, True, args, allowed=cls.allowed))
        else:
            self._call(cls, args)

    def _extend(self, items: list[object]) -> None:
        target = self.top()
        if isinstance(target, Opaque):  # a list or set subclass: its items, as data
            start = len(target.entries)
            target.entries.extend((start + i, item) for i, item in enumerate(items))
        elif isinstance(target, list):
            target.extend(items)
        else:
            raise CorruptModelError(f"pickle appends to a {type(target).__name__}")

    def _set_items(self, items: list[object]) -> None:
        target = self.top()
        if isinstance(target, Opaque):  # a dict subclass (defaultdict, a config): as data
            if len(items) % 2:
                raise CorruptModelError("pickle sets dict items from an odd number of values")
            target.entries.extend(zip(items[::2], items[1::2], strict=True))
        elif isinstance(target, dict):
            self._pairs(target, items)
        else:
            raise CorruptModelError(f"pickle sets an item on a {type(target).__name__}")

    @staticmethod
    def _pairs(target: dict[object, object], items: list[object]) -> dict[object, object]:
        if len(items) % 2:
            raise CorruptModelError("pickle sets dict items from an odd number of values")
        for index in range(0, len(items), 2):
            set_item(target, items[index], items[index + 1])
        return target
