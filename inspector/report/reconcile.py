"""How a recurrent layer's split, the row that holds it and the total fit together.

A row (layer) holds stored tensors; a recurrent layer's split shows the tensors its formula is
checked against. They differ in known ways, each named here rather than left to the reader:

- the row holds tensors outside the split (a loop body's scalar constants, a projection, the
  other layers of a nested model);
- the split shows views or graph-computed tensors of stored ones (`Tensor.sources`), so their
  sum may differ from the stored tensors' (a W computed from slices);
- the split reads tensors another row holds (shared weights) or that no row holds (ONNX weights
  given as graph inputs, not stored in the file).

Identities every report satisfies (tests/test_reconcile.py checks them on every fixture and
real file): for each row, `row = Σ members' recurrent_params + Σ others`; for each recurrent
layer, `split = in_row + Σ outside`; the total is the sum of the rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from inspector.model import Layer, Model, RecurrentLayer, RecurrentTensor, Tensor

MAX_NESTING = 256  # path levels searched for a recurrent layer's row


@dataclass(frozen=True)
class Outside:
    """A split tensor the layer's row does not hold, and where it is instead."""

    item: RecurrentTensor
    held_by: str | None  # the row holding it (or its sources); None: no row, not stored


@dataclass(frozen=True)
class Reconciliation:
    """One recurrent layer against its row."""

    layer: RecurrentLayer
    row: Layer | None
    recurrent: tuple[Tensor, ...]  # the row's tensors this layer's split is, or derives from
    others: tuple[Tensor, ...]  # the row's tensors no recurrent layer of the row uses
    members: tuple[tuple[str, int], ...]  # each recurrent layer of the row: its recurrent_params
    outside: tuple[Outside, ...]

    @property
    def recurrent_params(self) -> int:
        return sum(t.params for t in self.recurrent)

    @property
    def other_params(self) -> int:
        return sum(t.params for t in self.others)

    @property
    def in_row(self) -> int:
        """Params of the split tensors held by (or computed from tensors of) the row."""
        return self.layer.params - sum(o.item.tensor.params for o in self.outside)

    @property
    def plain(self) -> bool:
        """Nothing to say: the row is exactly this layer's split."""
        return (
            self.row is not None
            and not self.others
            and not self.outside
            and len(self.members) == 1
            and self.row.params == self.layer.params
        )


def row_of(
    layer: RecurrentLayer, rows: Sequence[Layer], by_name: dict[str, Layer] | None = None
) -> Layer | None:
    """The row holding a recurrent layer: the row of the same name, else the innermost row whose
    name is a path prefix of it (a nested model, `RNN([cells])`). `by_name`: the rows by name
    (the first of a name), where the caller looks up many layers."""
    if by_name is None:
        by_name = {}
        for row in rows:
            by_name.setdefault(row.name, row)
    name = layer.name
    if name in by_name:
        return by_name[name]
    # Each prefix ending before a separator, innermost first: a dict lookup per prefix rather
    # than a scan of every row per layer (quadratic for a language model's thousand blocks);
    # no real path nests deeper than MAX_NESTING.
    end = len(name)
    for _ in range(MAX_NESTING):
        end = max(name.rfind("/", 0, end), name.rfind(".", 0, end))
        if end <= 0:
            return None
        if name[:end] in by_name:
            return by_name[name[:end]]
    return None


def reconcile(model: Model) -> tuple[Reconciliation, ...]:
    """One reconciliation per recurrent layer, in the model's order. Linear in the rows, the
    layers and their tensors: each row's tensors are attributed once, for all its members."""
    holder = {t.key: row.name for row in model.layers for t in row.tensors}
    by_name: dict[str, Layer] = {}
    for each in model.layers:
        by_name.setdefault(each.name, each)
    rows = {id(layer): row_of(layer, model.layers, by_name) for layer in model.recurrent_layers}
    members: dict[str, list[RecurrentLayer]] = {}
    for layer in model.recurrent_layers:
        row = rows[id(layer)]
        if row is not None:
            members.setdefault(row.name, []).append(layer)
    # Each row tensor goes to the first member whose split is, or derives from, it.
    claimed: dict[tuple[str, str], int] = {}
    for name, layers in members.items():
        for position, layer in enumerate(layers):
            for item in layer.tensors:
                for key in _stored_keys(item.tensor):
                    claimed.setdefault((name, key), position)
    shares = {name: _shares(name, layers, rows, claimed) for name, layers in members.items()}
    out = []
    for layer in model.recurrent_layers:
        row = rows[id(layer)]
        mine: tuple[Tensor, ...] = ()
        others: tuple[Tensor, ...] = ()
        names: tuple[tuple[str, int], ...] = ()
        if row is not None:
            share = shares[row.name]
            mine = share.owned.get(id(layer), ())
            others, names = share.others, share.names
        row_keys = {t.key for t in row.tensors} if row is not None else set()
        outside = []
        for item in layer.tensors:
            keys = _stored_keys(item.tensor)
            if any(key in row_keys for key in keys):
                continue
            holding = next((holder[key] for key in keys if key in holder), None)
            outside.append(Outside(item, holding))
        out.append(Reconciliation(layer, row, mine, others, names, tuple(outside)))
    return tuple(out)


@dataclass(frozen=True)
class _Share:
    """How one row's tensors divide among the recurrent layers it holds."""

    owned: dict[int, tuple[Tensor, ...]]  # id of a member -> the row tensors its split is
    others: tuple[Tensor, ...]  # the row tensors outside every member's split
    names: tuple[tuple[str, int], ...]  # each member's name and the parameters it holds


def _shares(
    name: str,
    layers: Sequence[RecurrentLayer],
    rows: dict[int, Layer | None],
    claimed: dict[tuple[str, str], int],
) -> _Share:
    row = rows[id(layers[0])]
    assert row is not None
    held = [0] * len(layers)
    owned: list[list[Tensor]] = [[] for _ in layers]
    others: list[Tensor] = []
    for tensor in row.tensors:
        owner = claimed.get((name, tensor.key))
        if owner is None:
            others.append(tensor)
        else:
            held[owner] += tensor.params
            owned[owner].append(tensor)
    return _Share(
        {id(layer): tuple(tensors) for layer, tensors in zip(layers, owned, strict=True)},
        tuple(others),
        tuple((layer.name, params) for layer, params in zip(layers, held, strict=True)),
    )


def _stored_keys(tensor: Tensor) -> tuple[str, ...]:
    return tensor.sources or (tensor.key,)
