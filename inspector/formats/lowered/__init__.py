"""Recurrences that are not RNN/LSTM/GRU nodes: exporters often lower them.

- tf2onnx turns Keras SimpleRNN, GRU(reset_after=False) and masked layers into a `Loop` whose
  body computes one step; some tools build LSTMs from `Scan`. The body multiplies a state it
  carries from step to step by a weight: that weight is the recurrent kernel.
- The TFLite converter lowers Keras 3 layers into a `WHILE` loop of the same kind, and writes
  `unroll=True` layers as one copy of the step per time step (per gate with Keras
  `implementation=1`).
- The torch dynamo exporter unrolls `nn.RNN` into MatMul/Add/Tanh steps: one weight is reused at
  every step, each use depending on the previous one. Reuse along a chain of steps is the
  parameter sharing that makes a recurrence; a weight used twice side by side is not one. On
  long sequences the exporter may store one copy of the weight per step: steps are therefore
  linked by structure (a product whose result, through one step's elementwise ops, feeds a
  product with a weight of the same shape), and the copies are reported.

The cell kind comes from the recurrent weight's shape (it holds g·h × h values for g gates) and
is cross-checked against the activations of one step (LSTM: 3 sigmoids and 2 tanh; GRU: 2 and
1; simple RNN: one tanh or relu). What cannot be settled is reported as a warning.
"""

from __future__ import annotations

from inspector.formats.lowered.cell import Lowered
from inspector.formats.lowered.loops import LoopDetector
from inspector.formats.lowered.single_step import SingleStepDetector
from inspector.formats.lowered.unrolled import UnrolledDetector
from inspector.formats.lowered.walk import MAX_VISITS, WEIGHTED, Detector, Walker
from inspector.formats.opgraph import Node, OpGraph

__all__ = ["MAX_VISITS", "Lowered", "find"]


def detectors(walk: Walker) -> tuple[Detector, ...]:
    """The detectors in the order they run: each skips the nodes an earlier one explained."""
    return (LoopDetector(walk), UnrolledDetector(walk), SingleStepDetector(walk))


def find(graph: OpGraph, fused: set[Node]) -> tuple[list[Lowered], list[str]]:
    """Every lowered recurrence, and warnings about structures that look recurrent but could
    not be analysed."""
    walk = Walker(graph)
    found: list[Lowered] = []
    covered = set(fused)
    for detector in detectors(walk):
        new = detector.find(covered)
        for item in new:
            covered |= item.members
        found += new
    warnings = []
    recognised = {g for item in found for g in item.members if g.op in ("Loop", "Scan")}
    for gnode in graph.nodes:
        if gnode.op in ("Loop", "Scan") and gnode not in recognised and _looks_recurrent(gnode):
            warnings.append(
                f"{gnode.native} '{gnode.label}' in {gnode.scope.path} applies weights or "
                "activations at every iteration but was not recognised as a recurrent cell; "
                "its weights are counted in the total, not checked"
            )
    if walk.budget_hit:
        warnings.append(
            "the search for lowered recurrences stopped early on this large graph; "
            "some may not be reported"
        )
    return found, warnings


def _looks_recurrent(gnode: Node) -> bool:
    for body in gnode.children:
        for inner in body.nodes:
            if inner.op in WEIGHTED or inner.op in ("Sigmoid", "Tanh"):
                return True
    return False
