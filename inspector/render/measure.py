"""How wide a line of text comes out in a browser, without a browser: the pictures place every
label from these widths, so none overlaps another or leaves its picture.

The widths are per character, in em, the wider of the two faces a browser picks for the
pictures' font stack (`FONT`) on the systems people use: Liberation Sans (Arial's metrics, also
Helvetica's) and DejaVu Sans (the Linux default, Verdana-like and wider). They were measured in
Chromium with `getComputedTextLength()` at 100px, rounded up. A character outside the table
counts as a full em (CJK ideographs are one em; a wider glyph is rare in a name).
"""

from __future__ import annotations

FONT = "Arial,'Liberation Sans','DejaVu Sans',Helvetica,sans-serif"

# U+0020..U+007E, thousandths of an em: regular, then bold.
_ASCII = (
    (318, 401, 460, 838, 637, 951, 780, 275, 391, 391, 500, 838, 318, 361, 318, 337, 637, 637,
     637, 637, 637, 637, 637, 637, 637, 637, 337, 337, 838, 838, 838, 557, 1016, 710, 687, 723,
     771, 667, 611, 778, 752, 295, 500, 667, 558, 863, 749, 788, 667, 788, 723, 667, 611, 732,
     685, 989, 686, 667, 686, 391, 337, 391, 838, 557, 500, 613, 635, 550, 635, 616, 345, 635,
     634, 278, 278, 580, 278, 975, 634, 612, 635, 635, 396, 521, 393, 634, 592, 818, 592, 592,
     525, 637, 337, 637, 838),
    (348, 457, 521, 838, 696, 1002, 873, 307, 458, 458, 523, 838, 380, 416, 380, 366, 696, 696,
     696, 696, 696, 696, 696, 696, 696, 696, 400, 400, 838, 838, 838, 611, 1000, 774, 763, 734,
     831, 684, 684, 821, 837, 373, 557, 775, 638, 996, 837, 851, 733, 851, 771, 680, 703, 813,
     774, 1104, 771, 725, 726, 458, 366, 458, 838, 557, 500, 675, 716, 593, 716, 679, 406, 716,
     712, 343, 343, 666, 343, 1042, 712, 688, 716, 716, 494, 596, 479, 712, 652, 924, 646, 652,
     583, 712, 366, 712, 838),
)  # fmt: skip
# The few non-ASCII characters the pictures write themselves.
_OTHER = {
    **{chr(0x2080 + digit): 439 for digit in range(10)},  # subscript digits
    "ⱼ": 220,
    "·": 380,
    "×": 838,
    "−": 838,
    "≠": 838,
    "–": 557,
}
ELLIPSIS = "…"


def text_width(text: str, size: float, bold: bool = False) -> float:
    """The advance width of `text` in px at font size `size`, never less than a browser's."""
    table = _ASCII[bold]
    total = 0
    for char in text:
        code = ord(char)
        total += table[code - 32] if 32 <= code < 127 else _OTHER.get(char, 1000)
    return total * size / 1000


def fit(text: str, width: float, size: float, bold: bool = False) -> str:
    """`text`, or its head and tail around an ellipsis (`model/enc…/kernel:0`), so that it is
    at most `width` px wide: the tail of a name (`kernel`, `weight_ih_l0`) says the most."""
    if text_width(text, size, bold) <= width:
        return text
    room = width - text_width(ELLIPSIS, size, bold)
    head: list[str] = []
    tail: list[str] = []
    left, right = 0, len(text) - 1
    while left <= right:  # a character at a time, alternating sides, while it still fits
        from_head = len(head) <= len(tail)
        char = text[left] if from_head else text[right]
        room -= text_width(char, size, bold)
        if room < 0:
            break
        if from_head:
            head.append(char)
            left += 1
        else:
            tail.append(char)
            right -= 1
    return "".join(head) + ELLIPSIS + "".join(reversed(tail))
