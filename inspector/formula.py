"""The closed-form parameter count of a recurrent layer, with its derivation.

Per direction, with d the input width, u the units and g the gate count:

    g·(u·d + u·u) + b·g·u            (b bias vectors: 0, 1 or 2)
    + 3·u                            (LSTM peepholes)
    g·(u·d + u·p) + b·g·u + p·u      (PyTorch LSTM with proj_size p: the recurrent weights act
                                      on the projected state, weight_hr is p·u; nn.LSTM docs)
    g·(k·d·u + k·u·u) + b·g·u        (ConvLSTM, k the product of the kernel size)

The count never depends on the sequence length: the same weights are applied at every step.
"""

from __future__ import annotations

from dataclasses import dataclass

from inspector.cells import bias_vectors, gate_count
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
