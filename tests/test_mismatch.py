"""Mismatch explanations name the dimension that disagrees, with both values, and never print
a negative count. Each case takes a file written by Keras and edits only its configuration, so
the stored tensors stay the framework's and the configuration contradicts them in one way."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import h5py
import onnx
import pytest

from conftest import FIXTURES
from inspector import inspect_file

NEGATIVE = re.compile(r"(?<![\w·])-\d")

Edit = Callable[[dict], None]


def _layer(config: dict, index: int = 1) -> dict:
    return config["config"]["layers"][index]["config"]


def _set_input_last(width: int) -> Edit:
    def edit(config: dict) -> None:
        _layer(config, 0)["batch_input_shape"][-1] = width

    return edit


def _set(key: str, value: object) -> Edit:
    def edit(config: dict) -> None:
        _layer(config)[key] = value

    return edit


# (fixture, edit, words the reason must contain: the dimension and both values)
CASES = {
    "input width from the config vs the kernel": (
        "keras2/lstm_u16_d8.h5",
        _set_input_last(10),
        ["input width: 10 from the config, 8 in the kernel"],
    ),
    "units from the config vs the recurrent kernel": (
        "keras2/lstm_u16_d8.h5",
        _set("units", 12),
        ["units: 12 from the config, 16 in the recurrent kernel"],
    ),
    "no bias in the config, one stored": (
        "keras2/lstm_u16_d8.h5",
        _set("use_bias", False),
        [
            "bias vectors: the formula expects 0 of 4·16",
            "use_bias is off",
            "hold 1 vector(s) of 4·16",
        ],
    ),
    "GRU reset_after off in the config, two bias vectors stored": (
        "keras2/gru_u8_d4_reset_after.h5",
        _set("reset_after", False),
        ["bias vectors: the formula expects 1 of 3·8", "hold 2 vector(s) of 3·8"],
    ),
    "ConvLSTM input channels from the config vs the kernel": (
        "keras2/convlstm2d.h5",
        _set_input_last(3),
        ["input width: 3 from the config, 1 in the kernel"],
    ),
    # The kind that once printed "-53 vector(s)": a wide config width against a narrow kernel.
    "ConvLSTM data_format flipped to channels_first": (
        "keras2/convlstm2d.h5",
        _set("data_format", "channels_first"),
        ["input width: 6 from the config, 1 in the kernel"],
    ),
}


def _crafted(tmp_path: Path, fixture: str, edit: Edit) -> Path:
    path = tmp_path / Path(fixture).name
    shutil.copyfile(FIXTURES / fixture, path)
    with h5py.File(path, "r+") as handle:
        raw = handle.attrs["model_config"]
        config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        edit(config)
        handle.attrs["model_config"] = json.dumps(config)
    return path


@pytest.mark.parametrize("case", sorted(CASES))
def test_mismatch_says_which_dimension_disagrees(tmp_path: Path, case: str) -> None:
    fixture, edit, expected = CASES[case]
    report = inspect_file(_crafted(tmp_path, fixture, edit)).to_dict()
    (layer,) = report["recurrent_layers"]
    assert layer["check"] == "mismatch"
    reason = layer["reason"]
    assert f"stored tensors hold {layer['params']:,} parameters" in reason
    for words in expected:
        assert words in reason, reason
    assert not NEGATIVE.search(reason), reason


def test_untouched_fixtures_stay_ok(tmp_path: Path) -> None:
    """The edits above are what makes each case fail: the same copy unedited is ok."""
    for fixture in sorted({fixture for fixture, _, _ in CASES.values()}):
        report = inspect_file(_crafted(tmp_path, fixture, lambda config: None)).to_dict()
        assert [layer["check"] for layer in report["recurrent_layers"]] == ["ok"]


def test_onnx_hidden_size_against_the_recurrent_weights(tmp_path: Path) -> None:
    """The same kind in ONNX: the op's hidden_size attribute against R's shape."""
    model = onnx.load(FIXTURES / "onnx/torch_legacy_lstm_h16_d8.onnx")
    (node,) = [n for n in model.graph.node if n.op_type == "LSTM"]
    (hidden,) = [a for a in node.attribute if a.name == "hidden_size"]
    hidden.i = 12
    path = tmp_path / "hidden_size_12.onnx"
    onnx.save(model, path)
    (layer,) = inspect_file(path).to_dict()["recurrent_layers"]
    assert layer["check"] == "mismatch"
    assert "units: 12 from the config, 16 in the recurrent kernel" in layer["reason"]
    assert not NEGATIVE.search(layer["reason"])
