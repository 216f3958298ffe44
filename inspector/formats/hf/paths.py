"""Files of a checkpoint directory named by its own (hostile) index: a name is a path relative
to the directory, never absolute, never through `..`, and never a link whose target lies
outside the directory (a folder a stranger sends can hold `model.safetensors -> ~/.ssh/id_rsa`;
the rest of the tool refuses such links alike: `formats.source.Source.inside`)."""

from __future__ import annotations

from pathlib import PurePosixPath

from inspector.errors import CorruptModelError, RefusedModelError
from inspector.formats.source import Source

MAX_NAME_CHARS = 1024  # a shard's file name; longer is no name a filesystem keeps


def member(root: Source, name: object, what: str) -> Source:
    """The regular file `name` (from an index `what`) inside `root`. Raises CorruptModelError for
    a name that is no relative path inside the directory, RefusedModelError for a link out of
    it, NotFoundError where there is no such regular file."""
    if (
        not isinstance(name, str)
        or not name
        or len(name) > MAX_NAME_CHARS
        or "\0" in name
        or "\\" in name
    ):
        raise CorruptModelError(f"{what} names {_shown(name)}: not a file name; refused")
    parts = PurePosixPath(name).parts
    if PurePosixPath(name).is_absolute() or ".." in parts:
        raise CorruptModelError(
            f"{what} names {_shown(name)}: a path out of the checkpoint directory; refused"
        )
    path = root / "/".join(parts)
    if not path.inside():
        raise RefusedModelError(
            f"{path}: a symbolic link out of the checkpoint directory {root}; links out are "
            "never followed (a Hugging Face cache snapshot links into ../../blobs: pass "
            "a copy made with `cp -rL`)"
        )
    return path.checked()  # never a FIFO or a device: reading one could block forever


def _shown(name: object) -> str:
    """The name as a message may show it: quoted, control characters escaped, cut short."""
    if not isinstance(name, str):
        return f"a JSON {type(name).__name__}"
    return repr(name[:80]) + ("..." if len(name) > 80 else "")
