"""An index over a decoded ONNX model: its structure (`structure.Structure`), plus which values
are static (computable from stored tensors alone), which Loop/Scan body inputs are aliases of
outer constants, and which stored tensors each static value derives from.

The names other modules import from here (the structures, stored tensors and dtypes) are
re-exported so that one import gives the whole graph vocabulary.
"""

from __future__ import annotations

from inspector.formats.onnx.dtypes import DTYPES, UNKNOWN_DTYPE, DKind, DType, dtype_of
from inspector.formats.onnx.graph_error import GraphError, one_line
from inspector.formats.onnx.scope import (
    GNode,
    Kind,
    LoopState,
    Origin,
    Scope,
    Stored,
    Value,
    ValueId,
    constant_stored,
)
from inspector.formats.onnx.structure import Structure, carried, passthrough, states
from inspector.formats.onnx.wire import ModelMeta
from inspector.formats.opgraph import StaticRoots

__all__ = [
    "DTYPES",
    "UNKNOWN_DTYPE",
    "DKind",
    "DType",
    "GNode",
    "GraphError",
    "Index",
    "Kind",
    "LoopState",
    "Origin",
    "Scope",
    "Stored",
    "Value",
    "ValueId",
    "constant_stored",
    "dtype_of",
    "one_line",
]


class Index(Structure):
    def __init__(self, model: ModelMeta) -> None:
        super().__init__(model)
        self.static: set[ValueId] = set()
        self.aliases: dict[ValueId, ValueId] = {}
        self._mark_static()
        self._roots = StaticRoots(self._stored, self._operands)

    # --- static values and their stored roots -----------------------------------------

    _NOT_STATIC = frozenset(
        {
            "RandomNormal",
            "RandomUniform",
            "RandomNormalLike",
            "RandomUniformLike",
            "Multinomial",
            "Bernoulli",
            "Dropout",
        }
    )

    def _mark_static(self) -> None:
        for vid, value in self.values.items():
            if value.kind is Kind.STORED or value.stored is not None:
                self.static.add(vid)
        for scope in self.scopes:
            self._alias_passthrough(scope)
            for gnode in self.topological(scope):
                if (
                    gnode.children
                    or gnode.op in self._NOT_STATIC
                    or gnode.node.domain not in ("", "ai.onnx")
                ):
                    continue
                if gnode.op == "Constant":
                    continue  # already marked through its stored value
                inputs = [vid for vid in (*gnode.inputs, *gnode.implicit) if vid is not None]
                if inputs and all(vid in self.static for vid in inputs):
                    for output in gnode.node.outputs:
                        if output:
                            self.static.add(ValueId(scope.id, output))

    def _alias_passthrough(self, scope: Scope) -> None:
        """A Loop or Scan state that the body hands back unchanged is a constant the exporter
        threads through the loop (tf2onnx passes weights this way): inside the body it is the
        outer value."""
        owner = scope.owner
        if owner is None:
            return
        for body_vid, outer_vid in self.passthrough(scope):
            if outer_vid in self.static:
                self.static.add(body_vid)
                self.aliases[body_vid] = outer_vid

    def states(self, scope: Scope) -> list[LoopState]:
        """The states a Loop/Scan body carries from one iteration to the next."""
        return states(self, scope)

    def passthrough(self, scope: Scope) -> list[tuple[ValueId, ValueId]]:
        """(body input, outer initial value) of each state a Loop/Scan body returns unchanged."""
        return passthrough(self, scope)

    def carried(self, scope: Scope) -> list[tuple[int, int, int]]:
        """(body input, body output, owner input) positions of a Loop/Scan body's states."""
        return carried(self, scope)

    def roots(self, vid: ValueId) -> frozenset[Stored]:
        """The stored tensors a static value is computed from (itself when stored)."""
        return self._roots(vid)

    def _stored(self, vid: ValueId) -> Stored | None:
        value = self.values.get(vid)
        return value.stored if value is not None else None

    def _operands(self, vid: ValueId) -> tuple[ValueId, ...]:
        alias = self.aliases.get(vid)
        if alias is not None:
            return (alias,)
        value = self.values.get(vid)
        if value is None or vid not in self.static or value.producer is None:
            return ()
        producer = value.producer
        return tuple(v for v in (*producer.inputs, *producer.implicit) if v is not None)
