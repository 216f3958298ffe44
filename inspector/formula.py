"""The closed-form parameter count of a recurrent layer, with its derivation.

Per direction, with d the input width, u the units and g the gate count:

    g·(u·d + u·u) + b·g·u            (b bias vectors: 0, 1 or 2)
    + 3·u                            (LSTM peepholes)
    g·(u·d + u·p) + b·g·u + p·u      (PyTorch LSTM with proj_size p: the recurrent weights act
                                      on the projected state, weight_hr is p·u; nn.LSTM docs)
    g·(k·d·u + k·u·u) + b·g·u        (ConvLSTM, k the product of the kernel size)

The count never depends on the sequence length: the same weights are applied at every step.

A recurrent block of a state-space or linear-recurrent language model (Mamba, RWKV, ...) is not
a stack of gates: its count is the sum of its tensors' shapes, each written in the block's
dimensions by the block table (`inspector.blocks`), e.g. a Mamba mixer
(transformers modeling_mamba.py MambaMixer):

    2·d_inner·d_model + d_inner·d_conv + d_inner + (dt_rank + 2·d_state)·d_inner
    + d_inner·dt_rank + d_inner + d_inner·d_state + d_inner + d_model·d_inner
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from inspector.blocks import LLAMA_CPP, BlockSpec, resolved
from inspector.cells import bias_vectors, gate_count
from inspector.dims import integer, names
from inspector.model import BiasConvention, CellKind

_DOT = "·"


@dataclass(frozen=True)
class Derivation:
    kind: CellKind
    gates: int
    units: int
    input_dim: int
    directions: int
    bias: BiasConvention
    peepholes: bool = False
    kernel_elems: int = 1  # product of a ConvLSTM kernel size; 1 otherwise
    projection: int = 0  # PyTorch proj_size; 0: none

    @property
    def bias_vectors(self) -> int:
        return bias_vectors(self.bias)

    @property
    def per_direction(self) -> int:
        g, u, d, k, p = self.gates, self.units, self.input_dim, self.kernel_elems, self.projection
        recurrent = p or u
        count = g * (k * u * d + k * u * recurrent) + self.bias_vectors * g * u + p * u
        if self.peepholes:
            count += 3 * u
        return count

    @property
    def total(self) -> int:
        return self.directions * self.per_direction

    def expression(self) -> str:
        """The formula with the numbers substituted, e.g. ``4·(16·8 + 16·16 + 16)``."""
        g, u, d = self.gates, self.units, self.input_dim
        if self.kind is CellKind.CONV_LSTM:
            k = self.kernel_elems
            terms = [f"{k}{_DOT}{d}{_DOT}{u}", f"{k}{_DOT}{u}{_DOT}{u}"]
        else:
            terms = [f"{u}{_DOT}{d}", f"{u}{_DOT}{self.projection or u}"]
        b = self.bias_vectors
        if b:
            terms.append(f"{u}" if b == 1 else f"{b}{_DOT}{u}")
        inner = " + ".join(terms)
        expr = inner if g == 1 else f"{g}{_DOT}({inner})"
        if self.peepholes:
            expr += f" + 3{_DOT}{u}"
        if self.projection:
            expr += f" + {self.projection}{_DOT}{u}"
        if self.directions > 1:
            expr = f"{self.directions} × ({expr})"
        return expr


def derive(
    kind: CellKind,
    units: int,
    input_dim: int,
    *,
    directions: int = 1,
    bias: BiasConvention = BiasConvention.SINGLE,
    peepholes: bool = False,
    kernel_size: tuple[int, ...] = (),
    projection: int = 0,
) -> Derivation:
    kernel_elems = 1
    for size in kernel_size:
        kernel_elems *= size
    return Derivation(
        kind=kind,
        gates=gate_count(kind),
        units=units,
        input_dim=input_dim,
        directions=directions,
        bias=bias,
        peepholes=peepholes,
        kernel_elems=kernel_elems,
        projection=projection,
    )


# --- recurrent blocks (inspector.blocks) -------------------------------------------------


@dataclass(frozen=True)
class MemberCount:
    """One tensor a block's dimensions say is stored: its shape in the table's expressions and
    in numbers (None for an axis whose dimensions are unknown)."""

    name: str  # the block table's
    axes: tuple[str, ...]
    shape: tuple[int | None, ...]
    label: str = ""  # as the file names it (llama.cpp's name in a GGUF file); "" the table's

    @property
    def params(self) -> int | None:
        if any(size is None for size in self.shape):
            return None
        count = 1
        for size in self.shape:
            count *= size or 0
        return count


@dataclass(frozen=True)
class BlockDerivation:
    """A recurrent block's closed-form count: the sum over the tensors its configuration says
    it stores of the product of their shapes (`inspector.blocks.BlockSpec`). `unknown` names
    the dimensions neither the configuration nor the tensors gave."""

    kind: CellKind
    spec: str
    dims: tuple[tuple[str, int], ...]
    members: tuple[MemberCount, ...]
    unknown: tuple[str, ...] = ()

    @property
    def total(self) -> int:
        return sum(member.params or 0 for member in self.members)

    @property
    def complete(self) -> bool:
        return not self.unknown and all(m.params is not None for m in self.members)

    def expression(self) -> str:
        """Each tensor's shape multiplied out, named by its tensor, e.g.
        ``in_proj.weight 64·16 + conv1d.weight 32·1·4 + conv1d.bias 32 + ...``."""
        terms = []
        for member in self.members:
            sizes = _DOT.join("?" if size is None else str(size) for size in member.shape)
            terms.append(f"{member.label or member.name} {sizes}")
        return " + ".join(terms)


def derive_block(
    spec: BlockSpec,
    dims: Mapping[str, int],
    present: Iterable[str] | Mapping[str, tuple[int, ...]] = (),
    layout: str | None = None,
) -> BlockDerivation:
    """The count `dims` give for `spec`'s block. A member behind a flag counts where the flag
    is 1, or, where the dimensions do not give the flag, where the file stores it (`present`:
    the member names stored; given as a mapping to their shapes, a tensor stored as
    transformers' save_pretrained splits it, `Member.resaved`, is held to that split).
    `layout`: whose names and shapes (None: transformers';
    `blocks.LLAMA_CPP`: a GGUF file's); a tensor that layout does not store is not counted."""
    stored = frozenset(present)
    shapes: Mapping[str, tuple[int, ...]] = present if isinstance(present, Mapping) else {}
    values = resolved(spec, dims)
    members = []
    for member in spec.members:
        if layout == LLAMA_CPP and member.llama_cpp is None:
            continue
        if member.flag is not None:
            flag = values.get(member.flag)
            if not (flag if flag is not None else member.name in stored):
                continue
        axes = member.shape_in(layout)
        shape = tuple(integer(axis, values) for axis in axes)
        if member.resaved and layout is None and shapes.get(member.name) != shape:
            resaved = tuple(integer(axis, values) for axis in member.resaved)
            if shapes.get(member.name) == resaved:  # save_pretrained's split (Member.resaved)
                axes, shape = member.resaved, resaved
        label = member.llama_cpp.name if layout == LLAMA_CPP and member.llama_cpp else ""
        members.append(MemberCount(member.name, axes, shape, label))
    unknown = sorted(
        {name for member in members for axis in member.axes for name in names(axis)} - set(values)
    )
    return BlockDerivation(
        kind=spec.kind,
        spec=spec.name,
        dims=tuple((name, values[name]) for name in spec.dims if name in values),
        members=tuple(members),
        unknown=tuple(unknown),
    )
