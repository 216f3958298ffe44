"""The two directions of a Keras Bidirectional, lowered into two loops or ops: both read one
sequence, the backward one through a reversal of it (tf2onnx writes `ReverseSequence`, the TFLite
converter `REVERSE_V2`; Keras `Bidirectional` feeds its backward layer `go_backwards=True`,
keras/src/layers/rnn/bidirectional.py). A full-integer TFLite conversion reverses the int8
sequence and each loop reads it through a dequantization of its own, so values are compared
through the ops that only change how they are stored."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence

from inspector.formats.lowered.cell import Lowered
from inspector.formats.opgraph import Node, OpGraph, ValueId, Weight
from inspector.model import Direction, TensorRole

# ONNX's op and the TFLite op of the same use (no ONNX op reverses along an axis alone, so the
# view keeps TFLite's name)
_REVERSALS = frozenset({"ReverseSequence", "REVERSE_V2"})
_STORAGE_ONLY = frozenset({"QuantizeLinear", "DequantizeLinear"})
_DEPTH = 4  # a bounded walk: a crafted graph may loop


def stored_as(graph: OpGraph, value: ValueId) -> ValueId:
    """The value before the (de)quantizations that lead to it."""
    for _ in range(_DEPTH):
        producer = graph.producer(value)
        source = producer.input(0) if producer is not None else None
        if producer is None or producer.op not in _STORAGE_ONLY or source is None:
            break
        value = source
    return value


def reads(graph: OpGraph, node: Node) -> set[ValueId]:
    """The computed values an op reads (its operands, and the outer values its loop bodies
    name: an ONNX body reads outer values by name), each as stored before (de)quantization."""
    inner = {scope.id for body in node.children for scope in graph.descendants(body)}
    values = [v for v in node.inputs if v is not None]
    for body in node.children:
        for scope in graph.descendants(body):
            values += [
                v for n in scope.nodes for v in n.inputs if v is not None and v.scope not in inner
            ]
    return {stored_as(graph, v) for v in values if v not in graph.static}


def _reversals(graph: OpGraph, node: Node) -> dict[ValueId, Node]:
    """The sequences an op reads reversed in time, each with the op that reversed it."""
    found = {}
    for value in reads(graph, node):
        producer = graph.producer(value)
        source = producer.input(0) if producer is not None else None
        if producer is not None and producer.op in _REVERSALS and source is not None:
            found[stored_as(graph, source)] = producer
    return found


def pairs(
    graph: OpGraph, nodes: Sequence[Node], cell: Callable[[int], Hashable | None]
) -> dict[int, int]:
    """Which of `nodes` is the backward direction of which (forward index -> backward index):
    the backward one reads, reversed, a sequence the forward one reads as it is, and both
    compute the same cell (`cell(i)` names node i's; None: it pairs with none). Each node is in
    one pair at most; a backward one takes the first forward one in `nodes` order not yet
    paired. Found by lookup, by sequence and cell: a file of thousands of layers reading one
    sequence is not every layer against every other."""
    cells = [cell(index) for index in range(len(nodes))]
    readers: dict[tuple[ValueId, Hashable], list[int]] = {}
    for index, node in enumerate(nodes):
        if cells[index] is not None:
            for value in reads(graph, node):
                readers.setdefault((value, cells[index]), []).append(index)
    heads: dict[tuple[ValueId, Hashable], int] = {}  # where each list's unpaired entries begin
    found: dict[int, int] = {}
    used: set[int] = set()
    for back, node in enumerate(nodes):
        if cells[back] is None or back in used:
            continue
        for source in _reversals(graph, node):
            key = (source, cells[back])
            entries = readers.get(key, [])
            head = heads.get(key, 0)
            while head < len(entries) and entries[head] in used:
                head += 1
            heads[key] = head
            while head < len(entries) and (entries[head] in used or entries[head] == back):
                head += 1
            if head < len(entries):
                found[entries[head]] = back
                used |= {entries[head], back}
                break
    return found


def reversal(graph: OpGraph, backward: Node) -> str:
    """The file's own name of the op that reversed what `backward` reads."""
    return ", ".join(sorted({op.native for op in _reversals(graph, backward).values()}))


def paired(forward: Lowered, backward: Lowered, note: str) -> Lowered:
    """`forward` made one layer of two directions, `backward`'s tensors its backward half."""
    tensors: list[tuple[Weight, TensorRole, Direction | None]] = [
        (stored, role, Direction.FORWARD) for stored, role, _ in forward.tensors
    ]
    tensors += [(stored, role, Direction.BACKWARD) for stored, role, _ in backward.tensors]
    forward.tensors = tensors
    forward.directions = 2
    forward.members |= backward.members
    forward.state_inputs |= backward.state_inputs
    forward.first_step |= backward.first_step
    forward.fillers |= backward.fillers
    forward.name = f"{forward.name}+{backward.name.removeprefix('unrolled:')}"
    forward.notes.append(note)
    forward.warnings.extend(backward.warnings)
    return forward
