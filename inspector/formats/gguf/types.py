"""The ggml tensor types and the GGUF metadata value types, as data.

A ggml tensor is stored in blocks: `elements` values packed into `size` bytes (1 and the
item size for plain types). A tensor's row (ne0, GGUF's fastest dimension) must be a whole
number of blocks, and its bytes are `ne0 / elements · size · ne1 · ne2 · ne3` (ggml.c,
`ggml_nbytes`; `type_traits` gives `blck_size` and `type_size`). The gguf package keeps the
same numbers as `GGML_QUANT_SIZES` (gguf-py/gguf/constants.py); tests hold this table to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

QK_K = 256  # elements in a K-quant super-block (ggml-common.h)


@dataclass(frozen=True)
class GgmlType:
    code: int  # enum ggml_type
    name: str  # as ggml_type_name() and llama.cpp's tools print it
    elements: int  # per block
    size: int  # bytes per block

    @property
    def quantized(self) -> bool:
        return self.elements > 1

    def nbytes(self, elements: int) -> int:
        """Bytes of `elements` values (a whole number of blocks)."""
        return elements // self.elements * self.size


def _table(*types: GgmlType) -> Mapping[int, GgmlType]:
    return MappingProxyType({t.code: t for t in types})


# enum ggml_type (ggml/include/ggml.h) with each type's block (ggml-common.h block_* structs).
GGML_TYPES: Mapping[int, GgmlType] = _table(
    GgmlType(0, "F32", 1, 4),
    GgmlType(1, "F16", 1, 2),
    GgmlType(2, "Q4_0", 32, 2 + 16),
    GgmlType(3, "Q4_1", 32, 2 + 2 + 16),
    GgmlType(6, "Q5_0", 32, 2 + 4 + 16),
    GgmlType(7, "Q5_1", 32, 2 + 2 + 4 + 16),
    GgmlType(8, "Q8_0", 32, 2 + 32),
    # block_q8_1 holds two ggml_half (d, s) since ggml moved them from float in 2024
    # (`static_assert(sizeof(block_q8_1) == 2*sizeof(ggml_half) + QK8_1)`); gguf-py still
    # says 4 + 4 + 32. ggml reads files with its own size, so this table follows ggml.
    GgmlType(9, "Q8_1", 32, 2 + 2 + 32),
    GgmlType(10, "Q2_K", QK_K, 2 + 2 + QK_K // 16 + QK_K // 4),
    GgmlType(11, "Q3_K", QK_K, 2 + QK_K // 4 + QK_K // 8 + 12),
    GgmlType(12, "Q4_K", QK_K, 2 + 2 + QK_K // 2 + 12),
    GgmlType(13, "Q5_K", QK_K, 2 + 2 + QK_K // 2 + QK_K // 8 + 12),
    GgmlType(14, "Q6_K", QK_K, 2 + QK_K // 2 + QK_K // 4 + QK_K // 16),
    GgmlType(15, "Q8_K", QK_K, 4 + QK_K + QK_K // 8),
    GgmlType(16, "IQ2_XXS", QK_K, 2 + QK_K // 4),
    GgmlType(17, "IQ2_XS", QK_K, 2 + QK_K // 4 + QK_K // 32),
    GgmlType(18, "IQ3_XXS", QK_K, 2 + QK_K // 4 + QK_K // 8),
    GgmlType(19, "IQ1_S", QK_K, 2 + QK_K // 8 + QK_K // 16),
    GgmlType(20, "IQ4_NL", 32, 2 + 16),
    GgmlType(21, "IQ3_S", QK_K, 2 + QK_K // 4 + QK_K // 8 + QK_K // 32 + 4),
    GgmlType(22, "IQ2_S", QK_K, 2 + QK_K // 4 + QK_K // 16),
    GgmlType(23, "IQ4_XS", QK_K, 2 + 2 + QK_K // 2 + QK_K // 64),
    GgmlType(24, "I8", 1, 1),
    GgmlType(25, "I16", 1, 2),
    GgmlType(26, "I32", 1, 4),
    GgmlType(27, "I64", 1, 8),
    GgmlType(28, "F64", 1, 8),
    GgmlType(29, "IQ1_M", QK_K, QK_K // 8 + QK_K // 16 + QK_K // 32),
    GgmlType(30, "BF16", 1, 2),
    GgmlType(34, "TQ1_0", QK_K, 2 + 4 * 13),
    GgmlType(35, "TQ2_0", QK_K, 2 + 64),
    GgmlType(39, "MXFP4", 32, 1 + 16),
    GgmlType(40, "NVFP4", 64, 4 + 32),
    GgmlType(41, "Q1_0", 128, 2 + 16),
)

# Codes ggml once had and removed (ggml.h keeps them as comments); ggml refuses them since
# their block size is 0. Named so that the message says what the file holds.
REMOVED_TYPES: Mapping[int, str] = MappingProxyType(
    {
        4: "Q4_2",
        5: "Q4_3",
        31: "Q4_0_4_4",
        32: "Q4_0_4_8",
        33: "Q4_0_8_8",
        36: "IQ4_NL_4_4",
        37: "IQ4_NL_4_8",
        38: "IQ4_NL_8_8",
    }
)


@dataclass(frozen=True)
class ValueType:
    """A GGUF metadata value type (enum gguf_type, ggml/include/gguf.h)."""

    code: int
    name: str
    struct: str | None  # struct format character of a fixed-size scalar; None: string, array

    @property
    def size(self) -> int:
        return _SIZES[self.struct] if self.struct else 0


_SIZES = {"B": 1, "b": 1, "H": 2, "h": 2, "I": 4, "i": 4, "f": 4, "?": 1, "Q": 8, "q": 8, "d": 8}

STRING = 8
ARRAY = 9

VALUE_TYPES: Mapping[int, ValueType] = MappingProxyType(
    {
        v.code: v
        for v in (
            ValueType(0, "UINT8", "B"),
            ValueType(1, "INT8", "b"),
            ValueType(2, "UINT16", "H"),
            ValueType(3, "INT16", "h"),
            ValueType(4, "UINT32", "I"),
            ValueType(5, "INT32", "i"),
            ValueType(6, "FLOAT32", "f"),
            ValueType(7, "BOOL", "?"),
            ValueType(STRING, "STRING", None),
            ValueType(ARRAY, "ARRAY", None),
            # From GGUF version 2 on (64-bit values).
            ValueType(10, "UINT64", "Q"),
            ValueType(11, "INT64", "q"),
            ValueType(12, "FLOAT64", "d"),
        )
    }
)


# `general.file_type`: enum llama_ftype (llama.h), the type most tensors were quantized to,
# as llama.cpp's tools name it (LLAMA_FTYPE_MOSTLY_Q4_K_M prints as Q4_K_M).
FILE_TYPES: Mapping[int, str] = MappingProxyType(
    {
        0: "ALL_F32",
        1: "MOSTLY_F16",
        2: "MOSTLY_Q4_0",
        3: "MOSTLY_Q4_1",
        7: "MOSTLY_Q8_0",
        8: "MOSTLY_Q5_0",
        9: "MOSTLY_Q5_1",
        10: "MOSTLY_Q2_K",
        11: "MOSTLY_Q3_K_S",
        12: "MOSTLY_Q3_K_M",
        13: "MOSTLY_Q3_K_L",
        14: "MOSTLY_Q4_K_S",
        15: "MOSTLY_Q4_K_M",
        16: "MOSTLY_Q5_K_S",
        17: "MOSTLY_Q5_K_M",
        18: "MOSTLY_Q6_K",
        19: "MOSTLY_IQ2_XXS",
        20: "MOSTLY_IQ2_XS",
        21: "MOSTLY_Q2_K_S",
        22: "MOSTLY_IQ3_XS",
        23: "MOSTLY_IQ3_XXS",
        24: "MOSTLY_IQ1_S",
        25: "MOSTLY_IQ4_NL",
        26: "MOSTLY_IQ3_S",
        27: "MOSTLY_IQ3_M",
        28: "MOSTLY_IQ2_S",
        29: "MOSTLY_IQ2_M",
        30: "MOSTLY_IQ4_XS",
        31: "MOSTLY_IQ1_M",
        32: "MOSTLY_BF16",
        36: "MOSTLY_TQ1_0",
        37: "MOSTLY_TQ2_0",
        38: "MOSTLY_MXFP4_MOE",
        39: "MOSTLY_NVFP4",
        40: "MOSTLY_Q1_0",
        1024: "GUESSED",
    }
)
