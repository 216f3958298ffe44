"""The constants a TorchScript archive's code records for each class, read as text, never run.

`torch.jit.save` writes each scripted class to `code/__torch__/<module path>.py` (the class
`__torch__.torch.nn.modules.rnn.LSTM` in `code/__torch__/torch/nn/modules/rnn.py`), with the
module's `Final` attributes as annotated literals (torch/csrc/jit/serialization/
python_print.cpp, `printModuleMetadata`):

    class LSTM(Module):
      __parameters__ = ["weight_ih_l0", ...]
      hidden_size : Final[int] = 8
      bidirectional : Final[bool] = False
      mode : Final[str] = "LSTM"

Only such lines are matched, by a regular expression; their values are parsed as the literal
ints, floats, bools and short strings they are.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

MAX_CODE_BYTES = 4 * 1024 * 1024  # one code file read for constants; the rest is ignored
_CLASS = re.compile(r"^class ([A-Za-z_][A-Za-z0-9_]*)\(")
_FINAL = re.compile(
    r"^  ([A-Za-z_][A-Za-z0-9_]*) : Final\[(int|float|bool|str)\] = "
    r"(-?[0-9]{1,18}|-?[0-9]{1,18}\.[0-9]{0,18}(?:e-?[0-9]{1,3})?|True|False|\"[^\"\\\\]{0,200}\")$"
)

Scalar = bool | int | float | str


def code_file(class_name: str) -> str | None:
    """`__torch__.torch.nn.modules.rnn.LSTM` -> `code/__torch__/torch/nn/modules/rnn.py`."""
    module = class_name.rpartition(".")[0]
    if not module.startswith("__torch__") or not re.fullmatch(r"[A-Za-z0-9_.]+", module):
        return None
    return "code/" + module.replace(".", "/") + ".py"


def final_constants(text: str) -> Mapping[str, Mapping[str, Scalar]]:
    """Each class in the file with its `Final` constants."""
    classes: dict[str, dict[str, Scalar]] = {}
    current: dict[str, Scalar] | None = None
    for line in text.splitlines():
        opened = _CLASS.match(line)
        if opened is not None:
            current = classes.setdefault(opened[1], {})
            continue
        found = _FINAL.match(line) if current is not None else None
        if found is not None and current is not None:
            current[found[1]] = _literal(found[2], found[3])
    return classes


def _literal(kind: str, text: str) -> Scalar:
    if kind == "bool":
        return text == "True"
    if kind == "str":
        return text[1:-1]
    if kind == "int" and "." not in text and "e" not in text:
        return int(text)
    return float(text)
