"""One exception hierarchy. Raised where the problem is found; turned into a single line on
stderr and an exit code only in the CLI."""

from __future__ import annotations


class InspectorError(Exception):
    """A file could not be inspected (exit code 2). The message is one line for the user:
    what was expected, what was found, and what to do next where that helps."""

    exit_code = 2


class NotFoundError(InspectorError):
    """The path does not exist or is not a readable file."""


class NotAModelError(InspectorError):
    """The file is readable but is no model format rnninspect knows."""


class RefusedModelError(NotAModelError):
    """The file would import or run code if it were loaded (a pickle naming a global outside
    the data a state dict is made of); it is refused, never executed."""


class UnsupportedModelError(InspectorError):
    """A known container holding something this version cannot report on."""


class CorruptModelError(InspectorError):
    """A known format whose content is truncated, malformed or inconsistent."""


class UsageError(InspectorError):
    """The command line asked for something impossible."""


class ValuesUnavailableError(InspectorError):
    """One tensor's values cannot be read (external data outside the model's folder or missing,
    a dtype or an op value comparison does not decode); `compare` reports the pair unverified."""


class RemoteError(InspectorError):
    """A store or server holding a model answered wrongly: refused (403), missing (404),
    failed (5xx), stalled past `--timeout`, reset the connection, redirected elsewhere, sent more
    or fewer bytes than a range asked for, or is not reachable. The message never holds a
    credential. `status`: the HTTP status when there was one; `reset`: the connection failed
    (both tell whether a retry may help)."""

    def __init__(self, message: str, status: int | None = None, reset: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.reset = reset
