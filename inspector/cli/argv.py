"""The common command line, `rnninspect MODEL ... [OPTION ...]`, parsed without typer.

Importing typer (and the click it carries) costs a small-file run a fifth of its time, and
every CI hook and pre-commit run pays it. This parser takes only command lines whose meaning
is beyond doubt: model paths and the `inspect` options written `--name VALUE`, `--name=VALUE`
or `-x VALUE`, each at most once, with values of the simple forms below. Anything else (help,
a subcommand, `--`, a value that typer would convert or reject, a repeated or unknown option,
completion) returns None and goes to typer, which gives its usual answer or message; so both
paths always agree, and tests/test_argv.py runs command lines through both to hold them so.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path

from inspector.errors import UsageError
from inspector.location import Location, parse_location

# Values converted here exactly as click converts them; other spellings go to typer.
_COUNT = re.compile(r"[1-9][0-9]{0,17}")  # typer.Option(min=1): 0 is refused there
_SECONDS = re.compile(r"[0-9]{1,12}(\.[0-9]{0,9})?")
FLAG, TEXT, COUNT, SECONDS, CHOICE = "flag", "text", "count", "seconds", "choice"
# The subcommands of inspector/cli/app.py: a first argument naming one is typer's (a test holds
# this list equal to typer's).
COMMANDS = ("inspect", "formula", "explain", "compare", "help")

# option spelling -> (InspectOptions field, kind); the same names as inspector/cli/app.py.
OPTIONS: dict[str, tuple[str, str]] = {
    "--format": ("output_format", CHOICE),
    "-f": ("output_format", CHOICE),
    "--output": ("output", TEXT),
    "-o": ("output", TEXT),
    "--reader": ("reader", TEXT),
    "--all-layers": ("all_layers", FLAG),
    "--weighted-only": ("weighted_only", FLAG),
    "--recurrent-only": ("recurrent_only", FLAG),
    "--max-params": ("max_params", TEXT),
    "--max-size": ("max_size", TEXT),
    "--max-file-size": ("max_file_size", TEXT),
    "--max-layer-params": ("max_layer_params", TEXT),
    "--max-macs": ("max_macs", TEXT),
    "--seq-len": ("seq_len", COUNT),
    "--max-state": ("max_state", TEXT),
    "--context": ("context", COUNT),
    "--state-dtype": ("state_dtype", TEXT),
    "--strict": ("strict", FLAG),
    "--quiet": ("quiet", FLAG),
    "-q": ("quiet", FLAG),
    "--timeout": ("timeout", SECONDS),
    "--jobs": ("jobs", COUNT),
    "-j": ("jobs", COUNT),
    "--max-memory": ("max_memory", TEXT),
}
_PATH_FIELDS = frozenset({"output"})


def parse_inspect(
    args: Sequence[str], environ: Mapping[str, str], formats: Sequence[str]
) -> tuple[list[Location], dict[str, object]] | None:
    """The model paths and the options (InspectOptions field -> value) of `args`
    (sys.argv[1:]), or None when typer must parse them. `formats` are the values --format
    accepts."""
    if any(name.startswith("_") and name.endswith("_COMPLETE") for name in environ):
        return None  # shell completion is typer's
    if args and args[0] in COMMANDS and args[0] != "inspect":
        return None
    rest = iter(args[1:] if args and args[0] == "inspect" else args)  # linear in the count
    models: list[Location] = []
    values: dict[str, object] = {}
    for token in rest:
        if token == "" or token == "-":
            return None  # typer makes "" the current directory; "-" is no file
        if not token.startswith("-"):
            try:
                models.append(parse_location(token))  # a path, or a URL kept whole
            except UsageError:
                return None  # a URL of a scheme not read: typer says so
            continue
        name, equals, attached = token.partition("=")
        spec = OPTIONS.get(name)
        if spec is None or (equals and not name.startswith("--")):
            return None  # unknown, --help, --, -fjson, -o=file
        field, kind = spec
        if field in values:
            return None  # repeated: typer decides which counts
        if kind == FLAG:
            if equals:
                return None  # a flag takes no value: typer says so
            values[field] = True
            continue
        if not equals:
            following = next(rest, None)
            if following is None:
                return None  # a missing value: typer says so
            attached = following
        value = _value(attached, kind, formats)
        if value is None:
            return None
        values[field] = Path(attached) if field in _PATH_FIELDS else value
    if not models:
        return None  # typer asks for MODEL|DIR
    output = values.get("output")
    if any(
        isinstance(path, Path) and _unreadable(path)
        for path in [*models, *([output] if isinstance(output, Path) else [])]
    ):
        return None  # typer refuses it (its Path type checks readable=True)
    return models, values


def _unreadable(path: Path) -> bool:
    """A path that exists but that this process may not read: typer's Path conversion (every
    Path parameter of inspect is `readable=True`) refuses it with its own message."""
    try:
        os.stat(path)
    except OSError:
        return False  # typer takes a path that does not exist (or cannot be stat'ed) as is
    return not os.access(path, os.R_OK)


def _value(text: str, kind: str, formats: Sequence[str]) -> object | None:
    if text == "" or text.startswith("-"):
        return None  # typer would take it as the value, or report a missing one
    if kind == CHOICE:
        return text if text in formats else None
    if kind == COUNT:
        return int(text) if _COUNT.fullmatch(text) else None
    if kind == SECONDS:
        return float(text) if _SECONDS.fullmatch(text) else None
    return text
