"""The outcome of inspecting one of many files: its report, or the one-line reason it could not
be inspected. Pure data; the CLI fills it in and the renderer summarises it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

from inspector.counts import TEXT_LIMIT, shortened
from inspector.model import Check

if TYPE_CHECKING:  # annotations only: the command line makes outcomes before any report
    from inspector.report.analysis import Report


@dataclass(frozen=True)
class Outcome:
    path: str
    report: Report | None = None
    error: str | None = None
    directory: bool = False  # a directory that holds no model file (not an unreadable file)

    def __post_init__(self) -> None:
        # An error quotes the file (a 16 MiB version string): one line of bounded length.
        if self.error is not None:
            limit = len(self.path) + 2 + TEXT_LIMIT
            object.__setattr__(self, "error", shortened(self.error, limit))

    @property
    def checks(self) -> Counter[Check]:
        if self.report is None:
            return Counter()
        return Counter(check.status for check in self.report.checks)
