"""Hostile and damaged torch.save files, crafted opcode by opcode: each kind of attack on a
pickle reader (code execution through a global, memo and nesting bombs, oversized length fields,
storages that are missing or point out of the archive) must give one line and exit code 2,
without running anything and without allocating what the file claims."""

from __future__ import annotations

import io
import math
import pickle
import struct
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inspector import inspect_file
from inspector.cli import app
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
    "torchscript-module": (
        lambda p: _zip(p, b"\x80\x02" + _global("__torch__.torch.nn.modules.rnn", "LSTM"), {}),
        "TorchScript module",
    ),
    "state-dict-then-global": (
        lambda p: _zip(
            p, _state_dict(("w", WEIGHT), ("x", _global("subprocess", "Popen"))), {"0": FLOATS}
        ),
        "subprocess.Popen",
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
    with pytest.raises(RefusedModelError, match=r"whole nn\.Module"):
        inspect_file(path)


def test_opcode_count_is_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An endless stream of cheap opcodes stops at the cap (lowered here to keep the test to a
    count, not a clock)."""
    monkeypatch.setattr(pickle_data, "MAX_OPS", 1_000)
    path = tmp_path / "ops.pt"
    _zip(path, b"\x80\x02N" + b"0N" * 2_000 + b".", {})
    with pytest.raises(CorruptModelError, match="1,000 opcodes"):
        inspect_file(path)
