"""Which layers a report lists: its own small module, because the command line reads it before
any report exists (inspector/cli/inspection.py), and importing the report renderer then would be
start-up time."""

from __future__ import annotations

from enum import Enum


class LayerView(Enum):
    """Which rows the layer table shows; totals always cover every layer."""

    WEIGHTED = "weighted"  # layers that hold parameters
    ALL = "all"
    RECURRENT = "recurrent"
