"""What `rnninspect compare` found, as frozen data: one result per pair of layers, each with its
status, the conventions reconciled, and where values differ. Nothing here formats for display
(see `inspector.render.compare`)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from inspector.cells import Convention
from inspector.model import Direction, FileFormat

DEFAULT_ATOL = 1e-6
DEFAULT_RTOL = 1e-5


@dataclass(frozen=True)
class Tolerance:
    """Defaults suit float32 exports: a float32 holds ~7 significant digits, so a value that
    survived an export unchanged is bit-identical, and one recomputed (a folded transpose or
    sum) differs by a few units in the last place, far below these bounds."""

    atol: float = DEFAULT_ATOL
    rtol: float = DEFAULT_RTOL


@dataclass(frozen=True)
class Delta:
    elements: int
    mismatched: int  # elements outside the tolerance
    exact: bool  # every element bit-for-bit equal (NaNs in the same places)
    max_abs: float
    max_rel: float
    at: tuple[int, ...]  # the element with the largest absolute difference
    source_value: float
    export_value: float

    @property
    def close(self) -> bool:
        return self.mismatched == 0


class BiasForm(Enum):
    """How a layout stores a direction's input and recurrent biases."""

    STACKED = "stacked"  # ONNX B [dirs, 2·g·u]: Wb then Rb
    ONE_TENSOR = "one tensor"  # Keras GRU reset_after (2, g·u) rows, CuDNN (2·g·u,)
    SEPARATE = "separate"  # PyTorch bias_ih / bias_hh, a lowered graph's two Adds


class Status(Enum):
    IDENTICAL = "identical"  # same counts, same values after layout conversion
    EQUIVALENT = "equivalent"  # same function in another convention (named), or within tolerance
    VALUES_DIFFER = "values differ"
    MISSING = "missing in export"
    EXTRA = "extra in export"  # a recurrent layer the source does not have
    LOWERED = "lowered in export"  # no recurrent op left: a Loop or an unrolled chain
    SHAPE_DIFFERS = "shape differs"
    CELL_DIFFERS = "cell differs"  # another cell kind, or GRU reset_after vs linear_before_reset
    UNVERIFIED = "not verified"  # counts agree but values could not be read

    @property
    def passes(self) -> bool:
        # `lowered in export` is only given once every weight was located and matched: the
        # export computes the same function with plain ops, a faithful export.
        return self in (Status.IDENTICAL, Status.EQUIVALENT, Status.LOWERED)


class PairKind(Enum):
    RECURRENT = "recurrent"
    LAYER = "layer"


class Reconcile(Enum):
    """A convention difference the comparison reconciled."""

    LAYOUT = "layout"  # matrices (d, g·u) vs (g·u, d)
    DIRECTIONS = "directions"  # per-direction tensors vs a stacked [dirs, ...] axis
    GATE_ORDER = "gate order"
    BIAS_PADDED = "bias zero-padded"  # a single bias vs input + zero recurrent bias
    BIAS_HALVES = "bias halves"  # two bias vectors stored apart vs concatenated
    BIAS_SUMMED = "bias summed"  # input and recurrent biases traded, their sum kept
    BIAS_ADDED = "zero bias added"  # use_bias=False vs stored zero biases
    BIAS_DROPPED = "zero bias dropped"  # all-zero source biases a converter did not store
    RESET_AFTER = "reset_after"  # Keras reset_after / ONNX linear_before_reset / PyTorch GRU
    TRANSPOSED = "transposed"  # a plain layer's weight stored transposed
    TOLERANCE = "within tolerance"  # not bit-identical, every element within atol/rtol
    DEQUANTIZED = "dequantized"  # quantized weights compared after (q - zero_point) · scale
    # A recurrent block's tensors under another naming (inspector.blocks: transformers' vs
    # llama.cpp's names), stored in another shape (axes of one squeezed or split per group) or
    # as a function of the source's values (llama.cpp's A = -exp(A_log)).
    RENAMED = "renamed"
    RESHAPED = "reshaped"
    CONVERTED = "converted"


@dataclass(frozen=True)
class Reconciled:
    what: Reconcile
    source: Convention | None = None
    export: Convention | None = None
    source_order: tuple[str, ...] = ()
    export_order: tuple[str, ...] = ()
    params: int = 0  # parameters added or moved by the convention
    directions: int = 0  # DIRECTIONS: how many
    value: bool | None = None  # reset_after / linear_before_reset
    max_abs: float = 0.0
    tensor: str | None = None  # TRANSPOSED: which tensor


class Field(Enum):
    CELL = "cell"
    UNITS = "units"
    INPUT_DIM = "input width"
    DIRECTIONS = "directions"
    RESET_AFTER = "reset_after"
    PARAMS = "parameters"
    DIMENSION = "dimension"  # a recurrent block's (d_state, d_inner, ...)
    BLOCK = "block"  # a recurrent block of another table entry (Mamba vs Zamba's per-head)
    TRANSPOSED = "transposed"  # a block's tensor stored with its axes reversed


@dataclass(frozen=True)
class Mismatch:
    field: Field
    source: str | int | bool | None
    export: str | int | bool | None


class Side(Enum):
    SOURCE = "source"
    EXPORT = "export"


@dataclass(frozen=True)
class Unmatched:
    """A tensor with no counterpart on the other side."""

    side: Side
    name: str
    role: str
    shape: tuple[int, ...]
    params: int
    counted: bool = True  # False: beside the layer (a folded constant), not a failure


@dataclass(frozen=True)
class Spot:
    tensor: str
    index: tuple[int, ...]


@dataclass(frozen=True)
class Difference:
    """One block (a gate of one tensor of one direction, or a plain tensor) outside tolerance."""

    role: str
    direction: Direction | None
    gate: str | None  # the source's name for the gate
    export_gate: str | None  # the export's name, where it differs
    source: Spot | None  # None: the source has no such tensor (an implicit zero bias)
    export: Spot | None
    delta: Delta


@dataclass(frozen=True)
class Lowering:
    type: str  # Loop, Scan, unrolled
    naming: Convention | None  # whose gate order the located blocks matched
    order: tuple[str, ...] = ()


@dataclass(frozen=True)
class PairResult:
    kind: PairKind
    status: Status
    source: str | None
    export: str | None
    source_type: str | None
    export_type: str | None
    source_params: int | None
    export_params: int | None
    reconciled: tuple[Reconciled, ...] = ()
    differences: tuple[Difference, ...] = ()
    mismatches: tuple[Mismatch, ...] = ()
    unmatched: tuple[Unmatched, ...] = ()
    compared: int = 0  # elements compared
    max_abs: float | None = None
    max_rel: float | None = None
    lowering: Lowering | None = None
    unread: tuple[str, ...] = ()  # why values could not be read


@dataclass(frozen=True)
class FileSide:
    path: str
    format: FileFormat
    convention: Convention
    params: int
    paired: int | None = None  # params the pairs cover on this side
    # everything else, by name: params = paired + Σ outside (an entry may be negative: a split
    # tensor a pair counts that another row holds, or that the file does not store)
    outside: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True)
class CompareReport:
    source: FileSide
    export: FileSide
    tolerance: Tolerance
    pairs: tuple[PairResult, ...]

    @property
    def passes(self) -> bool:
        return all(pair.status.passes for pair in self.pairs)
