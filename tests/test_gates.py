"""CI gates through the command line: limits from the fixture manifests (Keras's own counts),
exit codes, and the one-line verdicts on stderr."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import h5py
import pytest
from typer.testing import CliRunner

from conftest import FIXTURES, manifest_entries
from inspector.cli.app import app
from inspector.cli.quantities import parse_count, parse_size
from inspector.errors import UsageError

runner = CliRunner()
TRUTH = {e["file"]: e for e in manifest_entries("keras-h5")}
GATED = ["keras2/lstm_u16_d8.h5", "keras2/embedding_lstm_dense.h5", "keras2/trained_adam.h5"]
VERDICT = re.compile(r"^rnninspect: gate failed: (?P<file>\S+): (?P<limit>--[a-z-]+)[ :]")


def run(*args: str):
    return runner.invoke(app, list(args))


def verdicts(stderr: str) -> list[re.Match[str]]:
    lines = stderr.strip().splitlines()
    matches = [VERDICT.match(line) for line in lines]
    assert all(matches), stderr
    return [m for m in matches if m]


@pytest.mark.parametrize("file", GATED)
def test_max_params_at_the_total_passes_and_just_below_fails(file: str) -> None:
    total = TRUTH[file]["total_params"]
    at = run(str(FIXTURES / file), "--max-params", str(total), "--format", "json")
    assert at.exit_code == 0, at.stderr
    assert at.stderr == ""
    below = run(str(FIXTURES / file), "--max-params", str(total - 1), "--format", "json")
    assert below.exit_code == 1
    assert json.loads(below.stdout)["total_params"] == total  # the report is still printed
    (verdict,) = verdicts(below.stderr)
    assert verdict["limit"] == "--max-params"
    assert f"the model has {total:,} params, 1 over the limit" in below.stderr


@pytest.mark.parametrize("file", GATED)
def test_max_size_counts_the_weights_at_their_stored_dtype(file: str) -> None:
    size = TRUTH[file]["weights_bytes"]
    assert run(str(FIXTURES / file), "--max-size", f"{size}B").exit_code == 0
    result = run(str(FIXTURES / file), "--max-size", str(size - 10))
    assert result.exit_code == 1
    assert result.stdout.startswith(str(FIXTURES / file))  # the table is still printed
    (verdict,) = verdicts(result.stderr)
    assert verdict["limit"] == "--max-size"
    assert f"the weights take {size:,} bytes" in result.stderr
    assert "10 bytes over the limit" in result.stderr


def test_float16_weights_take_half_the_bytes() -> None:
    file = "keras2/lstm_float16.h5"
    params, size = TRUTH[file]["total_params"], TRUTH[file]["weights_bytes"]
    assert size == 2 * params
    assert run(str(FIXTURES / file), "--max-size", str(size)).exit_code == 0
    assert run(str(FIXTURES / file), "--max-size", str(size - 1)).exit_code == 1


def test_max_layer_params_names_every_layer_over_the_limit() -> None:
    file = "keras2/embedding_lstm_dense.h5"
    layers = {layer["name"]: layer["params"] for layer in TRUTH[file]["layers"]}
    limit = sorted(layers.values())[-2]  # only the heaviest layer is over
    heaviest = max(layers, key=lambda name: layers[name])
    result = run(str(FIXTURES / file), "--max-layer-params", str(limit))
    assert result.exit_code == 1
    (verdict,) = verdicts(result.stderr)
    assert verdict["limit"] == "--max-layer-params"
    excess = layers[heaviest] - limit
    assert f"layer '{heaviest}' has {layers[heaviest]:,} params, {excess:,} over" in result.stderr
    two = run(str(FIXTURES / file), "--max-layer-params", str(sorted(layers.values())[0]))
    assert len(verdicts(two.stderr)) == len(layers) - 1


def test_human_forms_on_the_command_line() -> None:
    file = "keras2/lstm_u16_d8.h5"  # 1,600 params, 6,400 bytes
    assert TRUTH[file]["total_params"] == 1600 and TRUTH[file]["weights_bytes"] == 6400
    assert run(str(FIXTURES / file), "--max-params", "1.6k").exit_code == 0
    assert run(str(FIXTURES / file), "--max-params", "1.5k").exit_code == 1
    assert run(str(FIXTURES / file), "--max-size", "6.4kB").exit_code == 0
    assert run(str(FIXTURES / file), "--max-size", "6KiB").exit_code == 1  # 6,144 bytes
    # Limits are floored to whole units: 0.0061MiB is 6,396.3 bytes, so 6,396 are allowed.
    assert run(str(FIXTURES / file), "--max-size", "0.0062MiB").exit_code == 0
    assert run(str(FIXTURES / file), "--max-size", "0.0061MiB").exit_code == 1


@pytest.mark.parametrize(
    "args",
    [
        ("--max-size", "12XB"),
        ("--max-size", "-5MB"),
        ("--max-params", "lots"),
        ("--max-layer-params", "10MB"),
    ],
)
def test_bad_limits_are_one_line_usage_errors(args: tuple[str, str]) -> None:
    result = run(str(FIXTURES / "keras2/lstm_u16_d8.h5"), *args)
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"rnninspect: error: {args[0]}: ")
    assert args[1] in lines[0]


def _unverified(tmp_path: Path) -> Path:
    """The LSTM fixture with `units` gone from its config and no recurrent kernel listed:
    nothing says how many units it has, so its check can only be `unverified`."""
    path = tmp_path / "no_units.h5"
    shutil.copy(FIXTURES / "keras2/lstm_u16_d8.h5", path)
    with h5py.File(path, "r+") as handle:
        config = json.loads(handle.attrs["model_config"])
        del config["config"]["layers"][1]["config"]["units"]
        handle.attrs["model_config"] = json.dumps(config)
        handle["model_weights/lstm"].attrs["weight_names"] = [
            b"lstm/lstm_cell/kernel:0",
            b"lstm/lstm_cell/bias:0",
        ]
    return path


def test_strict_fails_unverified_checks(tmp_path: Path) -> None:
    path = _unverified(tmp_path)
    plain = run(str(path), "--format", "json")
    assert plain.exit_code == 0
    assert [layer["check"] for layer in json.loads(plain.stdout)["recurrent_layers"]] == [
        "unverified"
    ]
    strict = run(str(path), "--format", "json", "--strict")
    assert strict.exit_code == 1
    gated, ungated = json.loads(strict.stdout), json.loads(plain.stdout)
    assert ungated["gates"] == []
    assert gated.pop("gates") == [
        {
            "limit": "--strict",
            "unit": "layers",
            "allowed": 0,
            "measured": 1,
            "layer": None,
            "passed": False,
            "over": [{"layer": "lstm", "measured": 1, "note": gated_note(strict.stderr)}],
        }
    ]
    ungated.pop("gates")
    assert gated == ungated
    (verdict,) = verdicts(strict.stderr)
    assert verdict["limit"] == "--strict"
    assert "layer 'lstm' check is unverified" in strict.stderr


def gated_note(stderr: str) -> str:
    """The check's status and reason, as the stderr verdict words them."""
    return stderr.split("check is ", 1)[1].strip()


def test_strict_passes_when_every_check_is_ok() -> None:
    result = run(str(FIXTURES / "keras2/bidir_gru_concat.h5"), "--strict")
    assert result.exit_code == 0
    assert result.stderr == ""


def test_gates_apply_to_every_file_given() -> None:
    files = ["keras2/simplernn_u1_f1.h5", "keras2/simplernn_u2_f1.h5", "keras2/simplernn_u1_f3.h5"]
    result = run("--max-params", "4", "--format", "json", *(str(FIXTURES / f) for f in files))
    assert result.exit_code == 1
    failed = {m["file"] for m in verdicts(result.stderr)}
    expected = {str(FIXTURES / f) for f in files if TRUTH[f]["total_params"] > 4}
    assert failed == expected


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("250000", 250_000),
        ("200k", 200_000),
        ("1.5M", 1_500_000),
        ("2G", 2 * 10**9),
        ("7B", 7 * 10**9),
        ("1_000", 1000),
        ("1,000,000", 10**6),
        ("1.2345k", 1234),
    ],
)
def test_parse_count(text: str, count: int) -> None:
    assert parse_count(text) == count


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("800000", 800_000),
        ("50MB", 50 * 10**6),
        ("50mb", 50 * 10**6),
        ("200k", 200_000),
        ("1.5M", 1_500_000),
        ("2GiB", 2 * 2**30),
        ("512KiB", 512 * 1024),
        ("3 GB", 3 * 10**9),
        ("10B", 10),
        ("1Ki", 1024),
    ],
)
def test_parse_size(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["12XB", "", "MB", "1.2.3M", "-1", "1e6", "2GiBs", "5 M B"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(UsageError):
        parse_size(text)


def test_parse_size_floors_exactly_as_decimal_arithmetic_does() -> None:
    """Sizes are parsed in integers; the decimal module (an independent exact reference) agrees
    on seeded numbers with fractions, every suffix."""
    import random
    from decimal import ROUND_FLOOR, Decimal

    from inspector.cli.quantities import SIZE_SUFFIXES

    rng = random.Random(13)
    for _ in range(2000):
        number = f"{rng.randint(0, 10**6)}.{rng.randint(0, 10**9):0{rng.randint(1, 9)}d}"
        suffix = rng.choice(sorted(SIZE_SUFFIXES))
        exact = (Decimal(number) * SIZE_SUFFIXES[suffix]).to_integral_value(ROUND_FLOOR)
        assert parse_size(number + suffix) == int(exact), number + suffix
    assert parse_size("1.3MiB") == 1_363_148


def test_a_number_with_too_many_digits_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="expected a size"):
        parse_size("9" * 5000 + "MB")
