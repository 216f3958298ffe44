"""The boolean attributes of a Flex op's TensorFlow NodeDef (`transpose_b` of a FlexMatMul), read
from the op's custom options without TensorFlow or the flexbuffers runtime.

A Flex op (custom code `Flex` + the TensorFlow op name) keeps the node it runs as its custom
options: a FlexBuffer vector of two strings, the op name and the serialized `NodeDef`
(tensorflow/lite/delegates/flex/kernel.cc reads it so). FlexBuffers (flatbuffers/flexbuffers.h)
end with the root: its value, then its packed type (type << 2 | bit width), then its byte width;
a vector's length sits just before its elements, each element's packed type after them, and a
string's length just before its bytes. The NodeDef (tensorflow/core/framework/node_def.proto)
holds `attr` (field 5) entries: key (1) and an AttrValue (2) whose `b` is field 5.

Every offset is checked against the options' bytes; anything that does not fit is read as no
attributes (the op then keeps what its shapes say).
"""

from __future__ import annotations

from inspector.formats.protobuf import LENGTH, VARINT, WireError, fields

MAX_OPTIONS = 1 << 16  # a NodeDef of one op is a few hundred bytes
_VECTOR = 10  # FlexBuffers type codes (flexbuffers.h: FBT_VECTOR, FBT_STRING, FBT_BLOB)
_STRING = 5
_BLOB = 25
_NODE_DEF_ATTR, _ATTR_KEY, _ATTR_VALUE, _ATTR_BOOL = 5, 1, 2, 5


def is_node_def(options: bytes) -> bool:
    """Whether the options hold a NodeDef where a Flex op keeps it."""
    return len(options) <= MAX_OPTIONS and _node_def(options) is not None


def true_attributes(options: bytes) -> frozenset[str]:
    """The names of the NodeDef's boolean attributes that are true; empty when the options are
    not a Flex op's (or are malformed)."""
    node_def = _node_def(options) if len(options) <= MAX_OPTIONS else None
    if node_def is None:
        return frozenset()
    found: set[str] = set()
    try:
        for item in fields(node_def, 0, len(node_def)):
            if item.number != _NODE_DEF_ATTR or item.wire != LENGTH:
                continue
            key, value = "", False
            for part in fields(node_def, item.value, item.end):
                if part.number == _ATTR_KEY and part.wire == LENGTH:
                    key = node_def[part.value : part.end].decode("utf-8", "replace")
                elif part.number == _ATTR_VALUE and part.wire == LENGTH:
                    value = any(
                        inner.number == _ATTR_BOOL and inner.wire == VARINT and inner.value == 1
                        for inner in fields(node_def, part.value, part.end)
                    )
            if value and key:
                found.add(key)
    except WireError:
        return frozenset()
    return frozenset(found)


def _node_def(options: bytes) -> bytes | None:
    """The second string of the root vector, or None."""
    size = len(options)
    if size < 3:
        return None
    width = options[-1]
    packed = options[-2]
    if width not in (1, 2, 4, 8) or packed >> 2 != _VECTOR:
        return None
    root = size - 2 - width
    element = 1 << (packed & 3)
    offset = _uint(options, root, width)
    if offset is None:
        return None
    start = root - offset
    count = _uint(options, start - element, element)
    if count is None or count < 2 or count > 16:
        return None
    types = start + count * element
    if types + count > size:
        return None
    kind = options[types + 1]
    if kind >> 2 not in (_STRING, _BLOB):
        return None
    value = _uint(options, start + element, element)
    if value is None:
        return None
    begin = start + element - value
    child = 1 << (kind & 3)
    length = _uint(options, begin - child, child)
    if length is None or begin < 0 or begin + length > size:
        return None
    return options[begin : begin + length]


def _uint(data: bytes, at: int, width: int) -> int | None:
    if at < 0 or at + width > len(data):
        return None
    return int.from_bytes(data[at : at + width], "little")
