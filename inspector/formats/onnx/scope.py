"""The structures of an indexed ONNX graph: scopes (the main graph and each subgraph), the
values named in them and the nodes that read and produce them."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from inspector.formats.onnx.stored import Stored
from inspector.formats.onnx.wire import Graph, Node, ValueInfo


class Kind(Enum):
    STORED = "stored"
    INPUT = "graph input"
    NODE = "node output"


@dataclass(frozen=True)
class ValueId:
    scope: int
    name: str


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


@dataclass(frozen=True)
class LoopState:
    body: ValueId  # the body input holding the state
    outer: ValueId | None  # its initial value, an input of the Loop/Scan node
    position: int  # which input of the Loop/Scan node
    unchanged: bool  # the body returns it as it came: a constant threaded through the loop


@dataclass(eq=False)
class Scope:
    id: int
    path: str
    graph: Graph
    parent: Scope | None
    owner: GNode | None
    names: dict[str, Value] = field(default_factory=dict)
    nodes: list[GNode] = field(default_factory=list)
