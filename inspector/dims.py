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

import functools
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


@functools.lru_cache(maxsize=4096)  # the table's few hundred expressions, parsed once each
def _tokens(text: str) -> tuple[str, ...]:
    out, position = [], 0
    text = text.rstrip()
    while position < len(text):
        found = _TOKEN.match(text, position)
        if found is None:
            raise ExpressionError(f"cannot read {text!r} at {position}")
        out.append(found.group(found.lastgroup or "op"))
        position = found.end()
    return tuple(out)


# A parsed expression: a number, a name, a name's axis, or an operator and its two operands.
_Node = tuple


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.position = 0

    def _peek(self) -> str | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def _take(self) -> str:
        token = self._peek()
        if token is None:
            raise ExpressionError("expression ends early")
        self.position += 1
        return token

    def run(self) -> _Node:
        node = self._sum()
        if self._peek() is not None:
            raise ExpressionError(f"unexpected {self._peek()!r}")
        return node

    def _sum(self) -> _Node:
        node = self._product()
        while self._peek() in ("+", "-"):
            node = (self._take(), node, self._product())
        return node

    def _product(self) -> _Node:
        node = self._factor()
        while self._peek() in ("*", "//"):
            node = (self._take(), node, self._factor())
        return node

    def _factor(self) -> _Node:
        token = self._take()
        if token == "(":
            node = self._sum()
            if self._take() != ")":
                raise ExpressionError("unbalanced parenthesis")
            return node
        if token[0].isdigit():
            return ("number", Fraction(token))
        if not (token[0].isalpha() or token[0] == "_"):
            raise ExpressionError(f"unexpected {token!r}")
        if self._peek() == "[":
            self._take()
            index = int(self._take())
            if self._take() != "]":
                raise ExpressionError("unbalanced bracket")
            return ("axis", token, index)
        return ("name", token)


@functools.lru_cache(maxsize=4096)  # the table's few hundred expressions, parsed once each
def _parse(text: str) -> _Node:
    return _Parser(text).run()


def _value(
    node: _Node, values: Mapping[str, Fraction | int], axis: AxisLookup | None
) -> Fraction | None:
    kind = node[0]
    if kind == "number":
        return node[1]
    if kind == "name":
        found = values.get(node[1])
        return None if found is None else Fraction(found)
    if kind == "axis":
        size = axis(node[1], node[2]) if axis is not None else None
        return None if size is None else Fraction(size)
    left, right = _value(node[1], values, axis), _value(node[2], values, axis)
    if left is None or right is None:
        return None
    if kind == "+":
        return left + right
    if kind == "-":
        return left - right
    if kind == "*":
        return left * right
    return None if right == 0 else Fraction(left // right)


def evaluate(
    text: str, values: Mapping[str, Fraction | int], axis: AxisLookup | None = None
) -> Fraction | None:
    """The value of `text`, or None where a name or axis it reads is not known (or it divides
    by zero). Raises ExpressionError for text that does not parse."""
    return _value(_parse(text), values, axis)


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
