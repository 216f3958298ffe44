"""Hostile and damaged torch.save files, crafted opcode by opcode: each kind of attack on a
pickle reader (code execution through a global, memo and nesting bombs, oversized length fields,
storages that are missing or point out of the archive) must give one line and exit code 2,
without running anything and without allocating what the file claims."""

from __future__ import annotations

import io
import json
import math
import pickle
import struct
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import FIXTURES, entry_id, manifest_entries
from inspector import inspect_file
from inspector.cli.app import app
from inspector.errors import CorruptModelError, RefusedModelError
from inspector.formats.torch import pickle_data

runner = CliRunner()
MAGIC = 0x1950A86A20F9469CFC6C


# --- a pickle written opcode by opcode, the way torch.save writes a state dict --------------


def _str(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _int(value: int) -> bytes:
    if value < 1 << 31:
        return b"J" + struct.pack("<i", value)
    raw = value.to_bytes(8, "little")
    return b"\x8a" + bytes([len(raw)]) + raw  # LONG1


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _tuple(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"


def _tensor(key: str, numel: int, size: tuple[int, ...], offset: int = 0) -> bytes:
    """torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict())."""
    stride = tuple(math.prod(size[i + 1 :]) for i in range(len(size)))
    storage = _global("torch", "FloatStorage")
    pid = b"(" + _str("storage") + storage + _str(key) + _str("cpu") + _int(numel) + b"t"
    hooks = _global("collections", "OrderedDict") + b")R"
    sizes = _tuple(*map(_int, size))
    strides = _tuple(*map(_int, stride))
    args = b"(" + pid + b"Q" + _int(offset) + sizes + strides + b"\x89" + hooks + b"t"
    return _global("torch._utils", "_rebuild_tensor_v2") + args + b"R"


def _state_dict(*entries: tuple[str, bytes]) -> bytes:
    body = b"".join(_str(name) + value for name, value in entries)
    return b"\x80\x02" + _global("collections", "OrderedDict") + b")R(" + body + b"u."


def _zip(path: Path, data_pkl: bytes, storages: dict[str, bytes], folder: str = "model") -> None:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{folder}/data.pkl", data_pkl)
        archive.writestr(f"{folder}/byteorder", "little")
        for key, raw in storages.items():
            archive.writestr(f"{folder}/data/{key}", raw)
        archive.writestr(f"{folder}/version", "3\n")


def _legacy(path: Path, data_pkl: bytes, storages: dict[str, bytes]) -> None:
    head = [
        pickle.dumps(MAGIC, protocol=2),
        pickle.dumps(1001, protocol=2),
        pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2),
        data_pkl,
        pickle.dumps(sorted(storages), protocol=2),
    ]
    body = b"".join(struct.pack("<q", len(raw) // 4) + raw for _, raw in sorted(storages.items()))
    path.write_bytes(b"".join(head) + body)


WEIGHT = _tensor("0", 6, (2, 3))
FLOATS = bytes(24)


def test_crafted_state_dict_reads(tmp_path: Path) -> None:
    """The builder above writes what torch.save writes: the hostile variants below differ from
    a readable file only in what they attack."""
    for write in (_zip, _legacy):
        path = tmp_path / f"{write.__name__}.pt"
        write(path, _state_dict(("fc.weight", WEIGHT)), {"0": FLOATS})
        report = inspect_file(path).to_dict()
        assert report["format"] == "pytorch"
        assert report["total_params"] == 6
        assert report["layers"][0]["name"] == "fc"


def test_a_compressed_storage_is_inflated_only_within_a_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A repacked archive can deflate a huge zero tensor into a few KB (torch.save never
    compresses): compare inflates a compressed storage only up to a bound and otherwise says
    the values were not verified, in one line of the comparison, never gigabytes of memory."""
    from inspector.formats.torch import values

    numel = 4096
    path = tmp_path / "deflated.pt"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            "model/data.pkl", _state_dict(("fc.weight", _tensor("0", numel, (numel,))))
        )
        archive.writestr("model/byteorder", "little")
        archive.writestr("model/data/0", bytes(4 * numel))
        archive.writestr("model/version", "3\n")
    assert path.stat().st_size < 4 * numel // 4  # it really is compressed
    result = CliRunner().invoke(app, ["compare", str(path), str(path), "-f", "json"])
    assert result.exit_code == 0, result.output  # within the bound: compared, identical
    monkeypatch.setattr(values, "MAX_INFLATED_SPAN", 4 * numel - 1)
    result = CliRunner().invoke(app, ["compare", str(path), str(path), "-f", "json"])
    assert "over the" in result.output and "limit for inflating" in result.output, result.output


# --- every kind of attack -----------------------------------------------------------------

_EVAL = (
    b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93"  # STACK_GLOBAL builtins.eval
    + _tuple(_str("__import__('os').system('touch /tmp/rnninspect-pwned')"))
    + b"R."
)
_MODULE = b"\x80\x02" + _global("torch.nn.modules.rnn", "LSTM") + b")\x81."


def _deep_lists(depth: int) -> bytes:
    return b"\x80\x02" + b"]" * depth + b"a" * (depth - 1) + b"."


def _shared_bomb(levels: int) -> bytes:
    """Each list holds the previous one twice: walking it naively visits 2**levels lists."""
    out = b"\x80\x02]q\x00"
    for level in range(1, levels + 1):
        previous = b"h" + bytes([level - 1])
        out += b"0(" + previous + previous + b"lq" + bytes([level])  # POP, [prev, prev], PUT
    return out + b"."


def _unknown_zip_version(path: Path) -> None:
    """Found by the mutation suite: a central-directory entry claiming zip version 21.5 makes
    zipfile raise NotImplementedError."""
    _zip(path, _state_dict(("w", WEIGHT)), {"0": FLOATS})
    data = bytearray(path.read_bytes())
    central = data.index(b"PK\x01\x02")
    data[central + 6 : central + 8] = struct.pack("<H", 215)  # version needed to extract
    path.write_bytes(bytes(data))


CASES: dict[str, tuple[Callable[[Path], None], str]] = {
    "os-system-global": (
        lambda p: _zip(p, b"cos\nsystem\n(S'touch /tmp/rnninspect-pwned'\ntR.", {}),
        "os.system",
    ),
    "builtins-eval-stack-global": (lambda p: _legacy(p, _EVAL, {}), "builtins.eval"),
    "whole-module": (lambda p: _zip(p, _MODULE, {}), "torch.nn.modules.rnn.LSTM"),
    "torchscript-class-alone": (
        lambda p: _zip(
            p, b"\x80\x02" + _global("__torch__.torch.nn.modules.rnn", "LSTM") + b".", {}
        ),
        "__torch__.torch.nn.modules.rnn.LSTM",
    ),
    "ext-opcode": (lambda p: _zip(p, b"\x80\x02\x82\x01.", {}), "EXT1"),
    "protocol-0-persistent-id": (lambda p: _zip(p, b"P0\n.", {}), "persistent id"),
    "huge-memo-index": (
        lambda p: _zip(p, b"\x80\x02]r\xff\xff\xff\xff.", {}),
        "memo index",
    ),
    "memo-never-stored": (lambda p: _zip(p, b"\x80\x02j\x00\x00\x00\x10.", {}), "never stored"),
    "deep-nesting": (lambda p: _zip(p, _deep_lists(5_000), {}), "nested deeper"),
    "mark-bomb": (lambda p: _zip(p, b"\x80\x02" + b"(" * 100_000 + b".", {}), "MARKs"),
    "shared-container-bomb": (lambda p: _zip(p, _shared_bomb(60), {}), "no tensors"),
    "huge-string-length": (
        lambda p: _zip(p, b"\x80\x04\x8d" + struct.pack("<Q", 1 << 40) + b"x.", {}),
        "limit",
    ),
    "line-without-end": (
        lambda p: _zip(p, b"S'" + b"a" * (pickle_data.MAX_ARG_BYTES + 10), {}),
        "limit",
    ),
    "missing-storage": (
        lambda p: _zip(p, _state_dict(("w", WEIGHT)), {}),
        "no member 'model/data/0'",
    ),
    "storage-key-escapes": (
        lambda p: _zip(p, _state_dict(("w", _tensor("../../etc/passwd", 6, (2, 3)))), {}),
        "not a plain name",
    ),
    "member-escapes-archive": (
        lambda p: _zip(p, _state_dict(("w", WEIGHT)), {"0": FLOATS}, folder=".."),
        "outside the archive",
    ),
    "storage-size-lies": (
        lambda p: _zip(p, _state_dict(("w", _tensor("0", 1 << 40, (2, 3)))), {"0": FLOATS}),
        "damaged",
    ),
    "view-past-storage": (
        lambda p: _zip(p, _state_dict(("w", _tensor("0", 6, (4, 3)))), {"0": FLOATS}),
        "reaches element",
    ),
    "legacy-storage-truncated": (
        lambda p: p.write_bytes(_legacy_bytes(p)[:-8]),
        "truncated",
    ),
    "not-a-torch-pickle": (lambda p: p.write_bytes(pickle.dumps({"a": 1}, protocol=2)), "pickle"),
    "unknown-zip-version": (_unknown_zip_version, "zip file version"),
    "tar-layout": (lambda p: _tar_layout(p), "tar layout"),
    "truncated-pickle": (lambda p: _zip(p, _state_dict(("w", WEIGHT))[:-20], {}), "malformed"),
}


def _tar_layout(path: Path) -> None:
    """torch < 0.4 wrote a tar of sys_info, pickle, storages and tensors (torch/serialization.py
    `legacy_load`); recognised, refused as unsupported, never extracted."""
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as archive:
        for name in ("sys_info", "pickle", "storages", "tensors"):
            member = tarfile.TarInfo(name)
            member.size = 1
            archive.addfile(member, io.BytesIO(b"."))


def _legacy_bytes(path: Path) -> bytes:
    _legacy(path, _state_dict(("w", WEIGHT)), {"0": FLOATS})
    return path.read_bytes()


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_file_is_one_line_and_exit_2(tmp_path: Path, case: str) -> None:
    make, expected = CASES[case]
    path = tmp_path / f"{case}.pt"
    make(path)
    result = runner.invoke(app, [str(path)])
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("rnninspect: error: ")
    assert expected in lines[0]
    assert "internal error" not in lines[0]
    assert "Traceback" not in result.output
    assert not Path("/tmp/rnninspect-pwned").exists()


def test_refusals_name_the_global(tmp_path: Path) -> None:
    path = tmp_path / "module.pt"
    _zip(path, _MODULE, {})
    with pytest.raises(RefusedModelError, match=r"torch\.nn\.modules\.rnn\.LSTM stands where"):
        inspect_file(path)


def test_opcode_count_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An endless stream of cheap opcodes stops at the cap (lowered here to keep the test to a
    count, not a clock)."""
    monkeypatch.setattr(pickle_data, "MAX_OPS", 1_000)
    path = tmp_path / "ops.pt"
    _zip(path, b"\x80\x02N" + b"0N" * 2_000 + b".", {})
    with pytest.raises(CorruptModelError, match="1,000 opcodes"):
        inspect_file(path)


def test_data_pkl_is_parsed_as_a_stream(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A deflated data.pkl of a few KB can expand to the 256 MiB cap of string arguments; it is
    read in pieces the size of one opcode's argument, never whole (which would hold the raw
    pickle beside every string taken from it: twice the memory)."""
    padding = b"B" + struct.pack("<I", 1 << 20) + bytes(1 << 20)  # BINBYTES, popped again
    data_pkl = _state_dict(("w", WEIGHT)).replace(b"\x80\x02", b"\x80\x03" + padding + b"0", 1)
    path = tmp_path / "padded.pt"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("model/data.pkl", data_pkl)
        archive.writestr("model/data/0", FLOATS)
    requests: list[int] = []
    read = zipfile.ZipExtFile.read

    def counted(self: zipfile.ZipExtFile, n: int | None = -1) -> bytes:
        requests.append(-1 if n is None else n)
        return read(self, n)

    monkeypatch.setattr(zipfile.ZipExtFile, "read", counted)
    assert inspect_file(path).totals.total == 6
    assert -1 not in requests
    assert max(requests) <= (1 << 20) + 8, "data.pkl was read whole before parsing"


# --- globals outside the vocabulary: placeholders, never called ---------------------------

# Globals a pickle exploit calls, and code-running calls a deny-list missed (issue 23): CPython's
# pickle.loads runs a command with each. Whole dotted names, including attribute chains.
CODE_GLOBALS = (
    ("builtins", "eval"),
    ("builtins", "exec"),
    ("builtins", "getattr"),
    ("os", "system"),
    ("posix", "system"),
    ("nt", "system"),
    ("subprocess", "Popen"),
    ("subprocess", "check_output"),
    ("importlib", "import_module"),
    ("runpy", "run_path"),
    ("torch", "load"),
    ("torch.serialization", "load"),
    ("timeit", "timeit"),
    ("pydoc", "pipepager"),
    ("logging", "os." + "path." * 60 + "os.system"),
    ("torch.nn.modules.rnn", "LSTM"),  # a class called (not built): code chosen by the file
    ("__main__", "Tagger"),
)
# Data types on the allow-list: called (REDUCE) as real checkpoints do.
DATA_GLOBALS = (
    ("argparse", "Namespace"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy", "dtype"),
    ("collections", "defaultdict"),
    ("builtins", "slice"),
    ("pathlib", "PosixPath"),
    ("datetime", "datetime"),
)
# Classes outside the list that checkpoints build (NEWOBJ + BUILD, never a call): read, named
# as code torch.load would import and run.
BUILT_CLASSES = (
    ("torch.optim.lr_scheduler", "StepLR"),
    ("omegaconf.dictconfig", "DictConfig"),
    ("transformers.models.bert.configuration_bert", "BertConfig"),
    ("__main__", "Config"),
)


def _od(*entries: tuple[str, bytes]) -> bytes:
    """An OrderedDict with `entries`, left on the stack (no PROTO, no STOP)."""
    return (
        _global("collections", "OrderedDict")
        + b")R("
        + b"".join(_str(n) + v for n, v in entries)
        + b"u"
    )


def _dict(*entries: tuple[str, bytes]) -> bytes:
    """A plain dict {name: value, ...}, left on the stack."""
    return b"}(" + b"".join(_str(n) + v for n, v in entries) + b"u"


def _checkpoint(*entries: tuple[str, bytes]) -> bytes:
    """A whole pickle of a plain dict, the way torch.save writes a training checkpoint."""
    return b"\x80\x02" + _dict(*entries) + b"."


def _built(module: str, name: str, state: bytes) -> bytes:
    """cls.__new__(cls) then BUILD with `state`: how protocol 2 pickles a plain object."""
    return _global(module, name) + b")\x81" + state + b"b"


def _called(module: str, name: str, *args: bytes) -> bytes:
    return _global(module, name) + _tuple(*args) + b"R"


def _inspect_json(path: Path, *options: str) -> tuple[int, dict | None, str]:
    result = runner.invoke(app, [str(path), "--format", "json", *options])
    payload = json.loads(result.stdout) if result.exit_code in (0, 1) else None
    return result.exit_code, payload, result.stderr


def _id(value: object) -> str:
    return str(value)[:60]


PLACES = ("root", "beside", "state-dict-key", "state-dict-entry", "in-args", "in-module")
# Every global by REDUCE beside a state dict and inside a module; every place and calling
# opcode for one global (`-m fuzz`: every global at every place by every opcode).
CALLS = [(m, n, where, "REDUCE") for m, n in CODE_GLOBALS for where in ("beside", "in-module")]
CALLS += [
    ("os", "system", where, opcode)
    for where in PLACES
    for opcode in ("REDUCE", "INST", "OBJ")
    if where not in ("beside", "in-module") or opcode != "REDUCE"
]
ALL_CALLS = [
    (m, n, where, opcode)
    for m, n in CODE_GLOBALS
    for where in PLACES
    for opcode in ("REDUCE", "INST", "OBJ")
]


@pytest.mark.parametrize(
    "module,name,where,opcode",
    [*CALLS, *(pytest.param(*c, marks=pytest.mark.fuzz) for c in ALL_CALLS if c not in CALLS)],
    ids=_id,
)
def test_a_call_outside_the_allow_list_is_refused_wherever_it_sits(
    tmp_path: Path, module: str, name: str, where: str, opcode: str
) -> None:
    """torch.load runs every call a pickle makes, wherever it sits: a call of anything outside
    the allow-list refuses the file, naming the whole global (escaped, capped), exit 2."""
    argument = _str("touch /tmp/rnninspect-pwned")
    call = {
        "REDUCE": _called(module, name, argument),
        "INST": b"(" + argument + b"i" + f"{module}\n{name}\n".encode(),
        "OBJ": b"(" + _global(module, name) + argument + b"o",
    }[opcode]
    module_state = _dict(("_parameters", _od(("w", WEIGHT))), ("_modules", _od()), ("hook", call))
    body = {
        "root": b"\x80\x02" + call + b".",
        "beside": _checkpoint(("model", _od(("fc.weight", WEIGHT))), ("args", call)),
        "state-dict-key": _checkpoint(("model", call), ("epoch", _int(3))),
        "state-dict-entry": b"\x80\x02" + _od(("w", WEIGHT), ("hook", call)) + b".",
        "in-args": _checkpoint(
            ("state_dict", _od(("w", WEIGHT), ("x", _called("argparse", "Namespace", call)))),
        ),
        "in-module": b"\x80\x02" + _built("__main__", "Net", module_state) + b".",
    }[where]
    path = tmp_path / "hostile.pt"
    _zip(path, body, {"0": FLOATS})
    result = runner.invoke(app, [str(path)])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert "torch.load would run code from this file" in line and "never unpickles" in line
    dotted = f"{module}.{name}"
    assert (dotted in line) if len(dotted) <= 120 else (f"[{len(dotted):,} characters]" in line)
    assert len(line) < 600
    assert not Path("/tmp/rnninspect-pwned").exists()


@pytest.mark.parametrize("module,name", CODE_GLOBALS, ids=_id)
def test_a_global_only_named_beside_the_state_dict_is_named_as_code(
    tmp_path: Path, module: str, name: str
) -> None:
    """Named but never called (a GLOBAL stored as a value): torch.load would import it, so the
    warning says it would run code from this file; the state dict is read, nothing runs."""
    path = tmp_path / "named.pt"
    body = _checkpoint(("model", _od(("fc.weight", WEIGHT))), ("hook", _global(module, name)))
    _zip(path, body, {"0": FLOATS})
    code, report, errors = _inspect_json(path)
    assert code == 0, errors
    assert report is not None and report["total_params"] == 6
    (flagged,) = [w for w in report["warnings"] if "would import and run code" in w]
    dotted = f"{module}.{name}"
    assert (dotted in flagged) if len(dotted) <= 120 else (f"[{len(dotted):,} char" in flagged)


@pytest.mark.parametrize("module,name", DATA_GLOBALS, ids=_id)
def test_data_global_beside_the_state_dict_is_named(tmp_path: Path, module: str, name: str) -> None:
    """Called (REDUCE), built (NEWOBJ + BUILD) and filled (SETITEMS) as placeholders; on the
    allow-list, so never called code."""
    built = _built(module, name, _dict(("lr", _int(1))))
    value = _called(module, name, _int(1)) + b"(" + _str("k") + _int(2) + b"u"
    path = tmp_path / "beside.pt"
    body = _checkpoint(("state_dict", _od(("w", WEIGHT))), ("args", value), ("cfg", built))
    _legacy(path, body, {"0": FLOATS})
    code, report, errors = _inspect_json(path)
    assert code == 0, errors
    assert report is not None and report["total_params"] == 6
    (named,) = [w for w in report["warnings"] if "outside a state dict" in w]
    assert f"{module}.{name}" in named and "never imported or called" in named
    assert not any("run code" in w for w in report["warnings"])


@pytest.mark.parametrize("module,name", BUILT_CLASSES, ids=_id)
def test_classes_built_beside_the_state_dict_are_named_as_code(
    tmp_path: Path, module: str, name: str
) -> None:
    built = _built(module, name, _dict(("lr", _int(1))))
    path = tmp_path / "beside.pt"
    _zip(path, _checkpoint(("state_dict", _od(("w", WEIGHT))), ("cfg", built)), {"0": FLOATS})
    code, report, errors = _inspect_json(path)
    assert code == 0, errors
    assert report is not None and report["total_params"] == 6
    (flagged,) = [w for w in report["warnings"] if "would import and run code" in w]
    assert f"{module}.{name}" in flagged


def test_tensors_inside_a_foreign_object_are_not_counted(tmp_path: Path) -> None:
    """BUILD state is kept as data: a tensor inside it is found and listed, never a parameter."""
    holder = _built("__main__", "Config", _dict(("w", _tensor("1", 4, (4,)))))
    path = tmp_path / "held.pt"
    body = _checkpoint(("model", _od(("fc.weight", WEIGHT))), ("cfg", holder))
    _zip(path, body, {"0": FLOATS, "1": bytes(16)})
    code, report, _ = _inspect_json(path)
    assert code == 0 and report is not None
    assert report["total_params"] == 6
    assert any("1 tensor(s) inside objects" in w and "cfg.w" in w for w in report["warnings"])


def test_a_foreign_object_holding_the_only_tensors_is_refused(tmp_path: Path) -> None:
    """A whole module under a key no checkpoint convention uses: no state dict to read."""
    module = _built("__main__", "Net", _dict(("_parameters", _od(("w", WEIGHT)))))
    path = tmp_path / "module.pt"
    _zip(path, _checkpoint(("my_net", module)), {"0": FLOATS})
    result = runner.invoke(app, [str(path)])
    assert result.exit_code == 2
    assert "__main__.Net" in result.stderr and "neither a state dict nor a module" in result.stderr


def test_foreign_names_are_escaped_capped_and_deduplicated(tmp_path: Path) -> None:
    """Names come from the file: a control character, a 10,000-character name, a name used
    twenty times; the warning stays one short line per name and names each once."""
    long = "x" * 10_000
    odd = b"\x8c\x07a\nb\x1b[2J\x8c\x01C\x93)\x81"  # STACK_GLOBAL 'a\nb\x1b[2J'.'C'
    repeated = [(f"r{i}", _called("argparse", "Namespace")) for i in range(20)]
    body = _checkpoint(
        ("model", _od(("w", WEIGHT))),
        ("odd", odd),
        ("long", b"\x8c\x04mod1X" + struct.pack("<I", len(long)) + long.encode() + b"\x93)\x81"),
        *repeated,
    )
    path = tmp_path / "names.pt"
    _zip(path, b"\x80\x04" + body[2:], {"0": FLOATS})
    code, report, errors = _inspect_json(path)
    assert code == 0, errors
    assert report is not None
    (named,) = [w for w in report["warnings"] if "outside a state dict" in w]
    assert "\n" not in named and "\x1b" not in named and "a\\nb\\x1b[2J.C" in named
    assert named.count("argparse.Namespace") == 1
    assert long not in named and "xxx...[10,005 characters]...xxx" in named
    assert len(named) < 600


def test_foreign_names_recorded_are_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Distinct names beyond MAX_FOREIGN (lowered here) are counted as 'more than', not kept."""
    monkeypatch.setattr(pickle_data, "MAX_FOREIGN", 5)
    names = [(f"k{i}", _global("pkg", f"C{i}") + b")\x81") for i in range(12)]
    path = tmp_path / "many.pt"
    _zip(path, _checkpoint(("model", _od(("w", WEIGHT))), *names), {"0": FLOATS})
    code, report, _ = _inspect_json(path)
    assert code == 0 and report is not None
    (named,) = [w for w in report["warnings"] if "outside a state dict" in w]
    assert "more than 5 global(s)" in named and "pkg.C4" in named and "pkg.C5" not in named


def test_newobj_ex_only_builds_a_placeholder(tmp_path: Path) -> None:
    """NEWOBJ_EX on a vocabulary entry is refused; on a foreign class it gives a placeholder."""
    bad = b"\x80\x04" + _global("collections", "OrderedDict") + b")}\x92."
    path = tmp_path / "bad.pt"
    _zip(path, bad, {})
    result = runner.invoke(app, [str(path)])
    assert result.exit_code == 2 and "NEWOBJ_EX" in result.stderr
    good = _checkpoint(("model", _od(("w", WEIGHT))), ("cfg", _global("pkg", "Cfg") + b")}\x92"))
    _zip(path, b"\x80\x04" + good[2:], {"0": FLOATS})
    code, report, _ = _inspect_json(path)
    assert code == 0 and report is not None and report["total_params"] == 6
    assert any("pkg.Cfg" in w for w in report["warnings"])


def test_tensor_keys_are_named_by_a_short_tag(tmp_path: Path) -> None:
    """A pickled optimizer keys its state by parameter tensors: the path shows `<tensor>`, not
    the tensor's whole description."""
    state = _called("collections", "defaultdict", _global("builtins", "dict"))
    state += b"(" + WEIGHT + _dict(("exp_avg", _tensor("1", 4, (4,)))) + b"u"
    path = tmp_path / "keys.pt"
    body = _checkpoint(("model", _od(("fc.weight", WEIGHT))), ("opt_obj", state))
    _zip(path, body, {"0": FLOATS, "1": bytes(16)})
    code, report, _ = _inspect_json(path)
    assert code == 0 and report is not None and report["total_params"] == 6
    (held,) = [w for w in report["warnings"] if "inside objects" in w]
    assert "opt_obj.<tensor>.exp_avg" in held and "TensorData" not in held


# --- issue 23: huge counts, deep nesting, file strings in messages --------------------------


def _long(value: int) -> bytes:
    """LONG4: an integer of any size, as a crafted pickle writes it."""
    raw = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8b" + struct.pack("<I", len(raw)) + raw


def _view(
    size: bytes, stride: bytes, offset: bytes = b"J\x00\x00\x00\x00", numel: int = 6
) -> bytes:
    """A _rebuild_tensor_v2 call with raw size/stride/offset arguments."""
    pid = b"(" + _str("storage") + _global("torch", "FloatStorage") + _str("0") + _str("cpu")
    pid += _long(numel) + b"t"
    hooks = _global("collections", "OrderedDict") + b")R"
    args = b"(" + pid + b"Q" + offset + size + stride + b"\x89" + hooks + b"t"
    return _global("torch._utils", "_rebuild_tensor_v2") + args + b"R"


HUGE = 10**5000  # 5,000 digits: Python refuses to turn it into a str at all
COUNT_CASES: dict[str, bytes] = {
    "stride-0-view-64-dims": _view(b"(" + _long(1 << 62) * 64 + b"t", b"(" + _int(0) * 64 + b"t"),
    "4000-digit-dims": _view(b"(" + _long(10**4000) + b"t", b"(" + _int(1) + b"t"),
    "5000-digit-stride": _view(b"(" + _int(2) + b"t", b"(" + _long(HUGE) + b"t"),
    "5000-digit-offset": _view(b"(" + _int(2) + b"t", b"(" + _int(1) + b"t", _long(HUGE)),
    "negative-5000-digit-offset": _view(b"(" + _int(2) + b"t", b"(" + _int(1) + b"t", _long(-HUGE)),
    "5000-digit-storage-numel": _view(b"(" + _int(2) + b"t", b"(" + _int(1) + b"t", numel=HUGE),
}


@pytest.mark.parametrize("case", sorted(COUNT_CASES))
def test_huge_counts_are_a_bad_file_in_one_short_line(tmp_path: Path, case: str) -> None:
    path = tmp_path / "counts.pt"
    _zip(path, _state_dict(("w", COUNT_CASES[case])), {"0": FLOATS})
    result = runner.invoke(app, [str(path), "--timeout", "0"])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert "internal error" not in line and len(line) < 400
    assert not any(run.isdigit() and len(run) > 20 for run in line.replace(",", "").split())


def test_a_huge_legacy_version_is_shown_short(tmp_path: Path) -> None:
    """A legacy file whose protocol version is a 16 MiB string or a 5,000-digit number: one
    short line that says how long it is."""
    for version in ("v" * (16 * 1024 * 1024 - 64), HUGE):
        path = tmp_path / "version.pt"
        head = [pickle.dumps(MAGIC, protocol=2), pickle.dumps(version, protocol=2)]
        path.write_bytes(b"".join(head))
        result = runner.invoke(app, [str(path)])
        assert result.exit_code == 2, result.output[:200]
        (line,) = result.stderr.strip().splitlines()
        assert "protocol" in line and len(line) < 400


@pytest.mark.parametrize("depth", [150, 1_000_000])
@pytest.mark.parametrize("container", ["tuple", "frozenset"])
def test_deep_nesting_as_a_dict_key_is_one_line(tmp_path: Path, depth: int, container: str) -> None:
    """A dict key nested a million deep: hashing it would overflow the C stack (a segfault and
    a core file without the worker, `--timeout 0`). Refused while it is built."""
    if container == "frozenset":
        nested = b"(" * depth + b"N" + b"\x91" * depth  # MARK ... FROZENSET
    else:
        nested = b"N" + b"\x85" * depth  # TUPLE1
    path = tmp_path / "deep.pt"
    _zip(path, b"\x80\x04}" + nested + b"Ns.", {})
    result = runner.invoke(app, [str(path), "--timeout", "0"])
    assert result.exit_code == 2, result.output[:300]
    (line,) = result.stderr.strip().splitlines()
    assert ("nest" in line or "MARK" in line) and "internal error" not in line


# The crafted files of fixtures/pickle_verdicts/, with picklescan's and modelscan's verdicts
# recorded by their generator: ours follows the allow-list (README, "Safety and limits").
VERDICTS = manifest_entries("pickle-verdict")


@pytest.mark.parametrize("entry", VERDICTS, ids=entry_id)
def test_pickle_verdicts_follow_the_allow_list(entry: dict) -> None:
    stem = Path(entry["file"]).stem
    code, report, errors = _inspect_json(FIXTURES / entry["file"])
    if entry["calls_a_global"]:
        assert code == 2 and "torch.load would run code from this file" in errors
        return
    assert code == 0 and report is not None, errors
    flagged = any("would import and run code" in w for w in report["warnings"])
    assert flagged == (not stem.startswith("data_"))


def test_where_the_scanners_differ_from_us() -> None:
    """The README's comparison, as the scanners' recorded verdicts show it: calls their
    deny-lists miss, which the allow-list refuses (tested above)."""
    verdicts = {Path(e["file"]).stem: e for e in VERDICTS}
    missed_by_modelscan = {s for s, e in verdicts.items() if not e["modelscan"]["issues"]}
    missed_by_picklescan = {s for s, e in verdicts.items() if not e["picklescan"]["dangerous"]}
    assert {"call_timeit", "call_pydoc_pipepager", "call_attribute_chain"} <= missed_by_modelscan
    assert "call_attribute_chain" in missed_by_picklescan
    assert verdicts["named_os_system"]["picklescan"]["dangerous"] == ["os system"]


@pytest.mark.parametrize("where", ["state-dict", "module"])
def test_a_5000_digit_key_is_named_by_its_size(tmp_path: Path, where: str) -> None:
    """Python cannot turn a 5,000-digit integer into a str: a key of one is named by its size."""
    entry = _long(HUGE) + WEIGHT
    state = _global("collections", "OrderedDict") + b")R(" + entry + b"u"
    body = {
        "state-dict": b"\x80\x02" + state + b".",
        "module": b"\x80\x02"
        + _built("__main__", "Net", _dict(("_parameters", state), ("_modules", _od())))
        + b".",
    }[where]
    path = tmp_path / "key.pt"
    _zip(path, body, {"0": FLOATS})
    code, report, errors = _inspect_json(path, "--timeout", "0")
    assert code == 0, errors
    assert report is not None and report["total_params"] == 6
    assert "an integer of 16,610 bits" in json.dumps(report)


# Gadgets through the allow-list: an allowed function that calls its argument, or an object
# built with the file's arguments that something allowed consumes. Each is a call of code the
# file chose under torch.load, so each is refused, naming what would run.
_CMD = _str("touch /tmp/rnninspect-pwned")
_LAZY_MAP = _global("builtins", "map") + _tuple(_global("os", "system"), b"]" + _CMD + b"a")
GADGETS = {
    # list(map(os.system, [cmd])): map.__new__ with the file's arguments, run by list()
    "lazy-map": (_called("builtins", "list", _LAZY_MAP + b"\x81"), "builtins.map.__new__"),
    # copyreg._reconstructor(cls, subprocess.Popen, cmd) runs Popen.__init__(obj, cmd)
    "reconstructor-base": (
        _called(
            "copyreg", "_reconstructor", _global("__main__", "X"),
            _global("subprocess", "Popen"), _CMD,
        ),
        "subprocess.Popen (through copyreg._reconstructor)",
    ),
    # torch._tensor._rebuild_from_type_v2(os.system, cls, (cmd,), {}) runs os.system(cmd)
    "rebuild-from-type": (
        _called(
            "torch._tensor", "_rebuild_from_type_v2", _global("os", "system"),
            _global("torch", "Tensor"), _tuple(_CMD), b"}",
        ),
        "os.system (through torch._tensor._rebuild_from_type_v2)",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(GADGETS))
def test_gadgets_through_the_allow_list_are_refused(tmp_path: Path, case: str) -> None:
    payload, named = GADGETS[case]
    path = tmp_path / "gadget.pt"
    _zip(path, _checkpoint(("model", _od(("w", WEIGHT))), ("extra", payload)), {"0": FLOATS})
    result = runner.invoke(app, [str(path)])
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert named in line and "torch.load would run code from this file" in line
    assert not Path("/tmp/rnninspect-pwned").exists()


def test_an_object_built_without_arguments_is_read(tmp_path: Path) -> None:
    """What every whole module and config object is: cls.__new__(cls) then its state."""
    built = _built("__main__", "Config", _dict(("lr", _int(1))))
    path = tmp_path / "built.pt"
    _zip(path, _checkpoint(("model", _od(("w", WEIGHT))), ("cfg", built)), {"0": FLOATS})
    code, report, errors = _inspect_json(path)
    assert code == 0 and report is not None, errors
