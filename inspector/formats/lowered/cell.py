"""What a lowered-recurrence detector reports (`Lowered`), the weights it gathers around one step
before the cell kind is settled (`Cell`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from inspector.formats.opgraph import Node, ValueId, Weight
from inspector.model import BiasConvention, CellKind, Direction, TensorRole


@dataclass
class Lowered:
    """A recurrence found in lowered form, with the stored tensors that make its cell."""

    name: str
    type: str
    location: str
    kind: CellKind | None
    units: int | None
    input_dim: int | None
    bias: BiasConvention
    tensors: list[tuple[Weight, TensorRole, Direction | None]]
    members: set[Node]  # nodes whose stored inputs belong to this layer's row
    state_inputs: set[tuple[Node, int]] = field(default_factory=set)  # initial-state uses
    directions: int = 1
    peepholes: bool = False
    consistent: bool = True  # the tensors fit one cell of `kind`
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    sequence: ValueId | None = None  # the value the input projection reads
    gates_last: bool | None = None  # see RecurrentLayer.gates_last
    reversed: bool = False  # an unrolled chain whose steps read the sequence last to first
    # Where an unrolled chain's first step reads constants that are no weight of the cell: the
    # zero initial state, or the state's product the converter folded to constants (U·h0 + b
    # with h0 = 0, a copy of the recurrent bias). Each reader's total says what it does with
    # them (TFLite: initial states; ONNX counts them, as its definition of the total says).
    first_step: set[tuple[Node, int]] = field(default_factory=set)
    # All-zero constants filling a product's bias operand beside the cell's real bias: TOCO
    # gives every FULLY_CONNECTED a bias, zeros where the source's product had none (Keras's
    # recurrent MatMul). They hold no parameter, so they are no bias of the cell (`settle`);
    # the reader names them.
    fillers: set[Weight] = field(default_factory=set)

    @property
    def claimed(self) -> set[Weight]:
        return {stored for stored, _, _ in self.tensors}


@dataclass
class Cell:
    """Weights found around one step, before the kind is settled: each role's weights in the
    order found, each once. Detectors add through the methods, whose sets beside the lists keep
    a check constant-time however many weights a crafted cell gathers (an unrolled chain with a
    kernel copy per step gathers one per step)."""

    recurrent: list[Weight] = field(default_factory=list)
    kernel: list[Weight] = field(default_factory=list)
    biases: list[tuple[Weight, TensorRole]] = field(default_factory=list)
    peepholes: list[Weight] = field(default_factory=list)
    # Product bias operands by whether their bytes are all zero (see Lowered.fillers)
    zero_operand: dict[Weight, bool] = field(default_factory=dict)
    fused_width: int | None = None  # input width when x and h share one kernel (concat)
    state_width: int | None = None
    activations: dict[str, int] = field(default_factory=dict)
    # How the products apply the stored matrices: True where one reads (outputs, inputs) (Gemm
    # transB=1, a Transpose on the way, W @ x), False where x @ W reads (inputs, outputs).
    transposed: set[bool] = field(default_factory=set)
    _recurrent: set[Weight] = field(default_factory=set, repr=False)
    _kernel: set[Weight] = field(default_factory=set, repr=False)
    _biases: set[Weight] = field(default_factory=set, repr=False)
    _peepholes: set[Weight] = field(default_factory=set, repr=False)

    def add_recurrent(self, weights: Iterable[Weight]) -> None:
        _add(self.recurrent, self._recurrent, weights)

    def add_kernel(self, weights: Iterable[Weight]) -> None:
        _add(self.kernel, self._kernel, weights)

    def add_peephole(self, weight: Weight) -> None:
        _add(self.peepholes, self._peepholes, (weight,))

    def add_bias(self, weight: Weight, role: TensorRole) -> bool:
        """A bias, unless the weight is one already (then False)."""
        if weight in self._biases:
            return False
        self._biases.add(weight)
        self.biases.append((weight, role))
        return True

    def is_recurrent(self, weight: Weight) -> bool:
        return weight in self._recurrent

    def is_kernel(self, weight: Weight) -> bool:
        return weight in self._kernel

    def holds(self, weight: Weight) -> bool:
        """Whether the weight has a role in the cell already."""
        held = (self._recurrent, self._kernel, self._biases, self._peepholes)
        return any(weight in role for role in held)

    def note_operand(self, weight: Weight, zero: bool) -> None:
        """Record a bias found as a product's bias operand, and whether it is all zero."""
        self.zero_operand[weight] = zero

    def fillers(self) -> set[Weight]:
        """The all-zero bias operands, where the cell has another bias that is not one (the
        zeros are then the converter's, the other its real bias); none otherwise (an all-zero
        bias alone may be the model's own, as initialised)."""
        zeros = {weight for weight, zero in self.zero_operand.items() if zero}
        real = [weight for weight, _ in self.biases if weight not in zeros]
        return zeros if zeros and real else set()


def _add(into: list[Weight], held: set[Weight], weights: Iterable[Weight]) -> None:
    for weight in weights:
        if weight not in held:
            held.add(weight)
            into.append(weight)


def squeezed(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(d for d in shape if d != 1) or (1,)


def matrix(shape: tuple[int, ...]) -> tuple[int, ...]:
    """A weight's two matrix dimensions, without the leading 1-dimensions some exporters add
    ((1, g·h, h) for one direction); a matrix keeps its own 1-dimensions (a cell of one unit
    stores its recurrent weight as (g, 1)). Other shapes are squeezed."""
    while len(shape) > 2 and shape[0] == 1:
        shape = shape[1:]
    return shape if len(shape) == 2 else squeezed(shape)
