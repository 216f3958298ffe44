"""A run's output over one or many files, produced a file at a time in input order.

`rnninspect DIR` may read thousands of files, each report up to a bound of its own
(`supervise.Limits.result_bytes`): the command writes each file's part of the output as soon as
that file's outcome arrives (a JSON array element, its CSV rows, its report's tables, its HTML
section) and keeps only what the end needs (each file's summary row; a single file's report), so
what it holds does not grow with what the files hold (issue 23). The text is byte for byte what
rendering every report at the end wrote (an HTML page of many files has a line per file, and its
index follows the sections it is shown above): `add` and `end` return whole lines without the final
newline, which the writer adds.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from inspector.render.blocks import Flavour
from inspector.render.text import Style
from inspector.render.view import LayerView

if TYPE_CHECKING:  # each output imports only what it writes: every module is start-up time
    from inspector.render.html import HtmlPage
    from inspector.render.summary import Summary
    from inspector.report.analysis import Report
    from inspector.report.batch import Outcome


class Assembly:
    """`output_format` is a `--format` value; `scanned`: a directory was scanned (the output is
    the summary, a JSON array, CSV under one header even without reports); `several`: more
    than one target (reports, then the summary)."""

    def __init__(
        self, output_format: str, view: LayerView, style: Style, *, scanned: bool, several: bool
    ) -> None:
        self.format = output_format
        self.view = view
        self.style = style
        self.scanned = scanned
        self.several = several
        self.flavour = Flavour.MARKDOWN if output_format == "markdown" else Flavour.TEXT
        self.kept: list[Report] = []  # a single file's report
        self.summary: Summary | None = None  # the many-files summary, as the rows arrive
        self.page: HtmlPage | None = None  # the HTML page, a section at a time
        self.found = False  # a file was found (not only directories without model files)
        self.opened = False  # the JSON array's "[" or the CSV header is written
        self.pending: str | None = None  # the last JSON element: its comma waits for the next

    def add(self, outcome: Outcome) -> str | None:
        """The text to write now for this file (None: nothing yet)."""
        self.found |= not outcome.directory
        if self.format in ("table", "markdown") and (self.scanned or self.several):
            self._summary().add(outcome)
        if self.format == "html":
            return self._page().add(outcome)  # an unreadable file has its index row
        report = outcome.report
        if report is None:
            return None
        if self.format == "json" and (self.scanned or self.several):
            from inspector.render.report import json_element

            return self._element(json_element(report))
        if self.format == "csv":
            from inspector.render.csv_rows import csv_header, csv_lines

            rows = csv_lines(report, self.view)
            head = "" if self.opened else csv_header()
            self.opened = True
            return "\n".join(text for text in (head, rows) if text) or None
        if self.format in ("table", "markdown") and self.several and not self.scanned:
            from inspector.render import render_reports

            # `render_reports` joins reports with this separator; the summary follows the last.
            separator = "\n\n---\n" if self.flavour is Flavour.MARKDOWN else "\n"
            return render_reports([report], self.flavour, self.view, self.style) + separator
        if not (self.format in ("table", "markdown") and self.scanned):
            self.kept.append(report)
        return None

    def _summary(self) -> Summary:
        if self.summary is None:
            from inspector.render.summary import Summary

            self.summary = Summary(self.style, self.view)
        return self.summary

    def _page(self) -> HtmlPage:
        if self.page is None:
            from inspector.render.html import HtmlPage

            # A directory's page, or several files', opens with an index of every file.
            self.page = HtmlPage(listed=self.scanned or self.several)
        return self.page

    def _element(self, element: str) -> str | None:
        earlier, self.pending = self.pending, element
        if earlier is None:
            return None
        head = "" if self.opened else "[\n"
        self.opened = True
        return f"{head}{earlier},"

    def end(self) -> str | None:
        """What is left to write once every file was added (None: nothing)."""
        if self.format == "json":
            if self.pending is not None:
                return ("" if self.opened else "[\n") + self.pending + "\n]"
            if self.scanned:
                return "[]"
            return json.dumps(self.kept[0].to_dict(), indent=2) if self.kept else None
        if self.format == "csv":
            if self.opened or not (self.scanned and self.found):
                return None  # a scan that found no file: stderr said so
            from inspector.render.csv_rows import csv_header

            return csv_header()
        if self.format == "html":
            # A scan's page lists its files, the unreadable ones too; else a page of nothing
            # is not written (stderr said why).
            return self._page().end(always=self.scanned)
        if self.scanned or self.several:
            return self._summary().render(self.flavour)
        from inspector.render import render_reports

        return render_reports(self.kept, self.flavour, self.view, self.style) if self.kept else None
