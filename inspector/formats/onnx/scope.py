"""The structures of an indexed ONNX graph: scopes (the main graph and each subgraph), the
values named in them, the nodes that read and produce them, and the tensors whose values the file
stores (initializers, sparse initializers and the values of Constant nodes, with their shape and
element type: metadata only)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum

from inspector.counts import checked_shape
from inspector.formats.onnx.dtypes import DTYPES, DType, dtype_of
from inspector.formats.onnx.wire import Graph, Node, SparseMeta, TensorMeta, ValueInfo
from inspector.formats.opgraph import LoopState, ValueId

__all__ = [
    "GNode",
    "Kind",
    "LoopState",
    "Origin",
    "Scope",
    "Stored",
    "Value",
    "ValueId",
    "constant_stored",
    "sparse_stored",
    "stored_of",
]


class Origin(Enum):
    INITIALIZER = "initializer"
    SPARSE = "sparse initializer"
    CONSTANT = "Constant node"


@dataclass(frozen=True)
class Stored:
    """A tensor whose values are stored in the file."""

    key: str  # unique in the model
    name: str
    location: str
    origin: Origin
    shape: tuple[int, ...]
    dtype: DType
    meta: TensorMeta | None  # None for Constant value_float(s)/value_int(s)

    @property
    def elements(self) -> int:
        return math.prod(self.shape)


def constant_stored(node: Node, location: str, key: str, name: str) -> Stored | None:
    """The tensor a Constant node stores (onnx Constant-13+ attributes), or None."""
    for attr in node.attributes:
        if attr.name == "value" and attr.t is not None:
            return stored_of(attr.t, location, key, name, Origin.CONSTANT)
        if attr.name == "sparse_value" and attr.sparse:
            return sparse_stored(attr.sparse[0], location, key, name)
        if attr.name == "value_float":
            return Stored(key, name, location, Origin.CONSTANT, (), DTYPES[1], None)
        if attr.name == "value_int":
            return Stored(key, name, location, Origin.CONSTANT, (), DTYPES[7], None)
        if attr.name == "value_string":
            return Stored(key, name, location, Origin.CONSTANT, (), DTYPES[8], None)
        if attr.name in ("value_floats", "value_ints", "value_strings"):
            code = {"value_floats": 1, "value_ints": 7, "value_strings": 8}[attr.name]
            shape = (attr.list_count,)
            return Stored(key, name, location, Origin.CONSTANT, shape, DTYPES[code], None)
    return None


def stored_of(meta: TensorMeta, location: str, key: str, name: str, origin: Origin) -> Stored:
    # The room is checked against the payload the proto holds (`_Reader._check_payloads`);
    # external data and a structure-only file keep theirs elsewhere.
    shape = checked_shape(meta.dims, f"tensor '{name}' in {location}")
    return Stored(key, name, location, origin, shape, dtype_of(meta.data_type), meta)


def sparse_stored(sparse: SparseMeta, location: str, key: str, name: str) -> Stored:
    """A sparse tensor counts the values it stores, not its dense size."""
    values = sparse.values
    where = f"sparse tensor '{name}' in {location}"
    count = math.prod(checked_shape(values.dims, where)) if values is not None else 0
    dtype = dtype_of(values.data_type if values is not None else None)
    return Stored(key, name, location, Origin.SPARSE, (count,), dtype, values)


class Kind(Enum):
    STORED = "stored"
    INPUT = "graph input"
    NODE = "node output"


@dataclass
class Value:
    id: ValueId
    kind: Kind
    stored: Stored | None = None
    info: ValueInfo | None = None  # declared type (graph input, value_info, output)
    producer: GNode | None = None
    output_index: int = 0


@dataclass(eq=False)
class GNode:
    """A node together with the scope it sits in."""

    node: Node
    scope: Scope
    index: int  # position in its graph
    order: int  # position in the whole model, graphs depth-first
    inputs: tuple[ValueId | None, ...] = ()  # None: empty name (absent optional input)
    implicit: tuple[ValueId, ...] = ()  # outer-scope values its subgraphs read
    children: tuple[Scope, ...] = ()

    @property
    def op(self) -> str:
        return self.node.op_type

    @property
    def label(self) -> str:
        return self.node.name or f"{self.node.op_type}_{self.index}"

    def input(self, position: int) -> ValueId | None:
        return self.inputs[position] if position < len(self.inputs) else None


@dataclass(eq=False)
class Scope:
    id: int
    path: str
    graph: Graph
    parent: Scope | None
    owner: GNode | None
    names: dict[str, Value] = field(default_factory=dict)
    nodes: list[GNode] = field(default_factory=list)
