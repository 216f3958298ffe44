"""Arithmetic over named dimensions, the language the block table (`inspector.blocks`) and the
configuration vocabularies write shapes in: `2*d_inner + 2*n_groups*d_state`, `hidden_size //
16`, `conv1d.weight[0] - d_inner`.

The expressions are this project's own table text, never a file's; a file only supplies the
values. Grammar: sums (`+`, `-`) of products (`*`, `//`) of integers, decimal fractions, names
(letters, digits, `_` and `.`, as config keys and tensor names are spelled) optionally indexed
by an axis (`A_log[0]`: the size of that tensor's axis), and parenthesised expressions. Values
are exact fractions, so a configuration's `hidden_size * qk_dim_factor` (64 * 0.5) stays exact.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from fractions import Fraction

_TOKEN = re.compile(
    r"\s*(?:(?P<number>\d+(?:\.\d+)?)|(?P<name>[A-Za-z_][\w.]*)|(?P<op>//|[-+*()\[\]]))"
)

# The size of one axis of a named tensor, or None when there is no such tensor or axis.
AxisLookup = Callable[[str, int], int | None]


class ExpressionError(ValueError):
    """A table expression that does not parse: a bug in the table, caught by its tests."""


def _tokens(text: str) -> list[str]:
    out, position = [], 0
    text = text.rstrip()
    while position < len(text):
        found = _TOKEN.match(text, position)
        if found is None:
            raise ExpressionError(f"cannot read {text!r} at {position}")
        out.append(found.group(found.lastgroup or "op"))
        position = found.end()
    return out


class _Evaluator:
    def __init__(
        self, text: str, values: Mapping[str, Fraction | int], axis: AxisLookup | None
    ) -> None:
        self.tokens = _tokens(text)
        self.position = 0
        self.values = values
        self.axis = axis
        self.missing: set[str] = set()

    def _peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _take(self) -> str:
        token = self._peek()
        if token is None:
            raise ExpressionError("expression ends early")
        self.position += 1
        return token

    def run(self) -> Fraction | None:
        value = self._sum()
        if self._peek() is not None:
            raise ExpressionError(f"unexpected {self._peek()!r}")
        return None if self.missing else value

    def _sum(self) -> Fraction | None:
        value = self._product()
        while self._peek() in ("+", "-"):
            op, right = self._take(), self._product()
            if value is not None and right is not None:
                value = value + right if op == "+" else value - right
            else:
                value = None
        return value

    def _product(self) -> Fraction | None:
        value = self._factor()
        while self._peek() in ("*", "//"):
            op, right = self._take(), self._factor()
            if value is None or right is None:
                value = None
            elif op == "*":
                value = value * right
            elif right == 0:
                value = None
            else:
                value = Fraction(value // right)
        return value

    def _factor(self) -> Fraction | None:
        token = self._take()
        if token == "(":
            value = self._sum()
            if self._take() != ")":
                raise ExpressionError("unbalanced parenthesis")
            return value
        if token[0].isdigit():
            return Fraction(token)
        if not (token[0].isalpha() or token[0] == "_"):
            raise ExpressionError(f"unexpected {token!r}")
        if self._peek() == "[":
            self._take()
            index = int(self._take())
            if self._take() != "]":
                raise ExpressionError("unbalanced bracket")
            size = self.axis(token, index) if self.axis is not None else None
            if size is None:
                self.missing.add(f"{token}[{index}]")
                return None
            return Fraction(size)
        if token not in self.values:
            self.missing.add(token)
            return None
        return Fraction(self.values[token])


def evaluate(
    text: str, values: Mapping[str, Fraction | int], axis: AxisLookup | None = None
) -> Fraction | None:
    """The value of `text`, or None where a name or axis it reads is not known (or it divides
    by zero). Raises ExpressionError for text that does not parse."""
    return _Evaluator(text, values, axis).run()


def integer(
    text: str, values: Mapping[str, Fraction | int], axis: AxisLookup | None = None
) -> int | None:
    """`evaluate`, kept only when the value is a whole number."""
    value = evaluate(text, values, axis)
    return int(value) if value is not None and value.denominator == 1 else None


def names(text: str) -> frozenset[str]:
    """The names `text` reads (indexed tensor names included, without their axis)."""
    return frozenset(token for token in _tokens(text) if token[0].isalpha() or token[0] == "_")


def shown(text: str) -> str:
    """The expression as reports write it: `2·d_inner + 2·n_groups·d_state`."""
    return " ".join(text.split()).replace("*", "·")
