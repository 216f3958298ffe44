"""Where a reader gets its bytes: one small interface over a local path and a URL.

Every reader takes a `Source` and never knows where the bytes come from. A source names itself
for messages (`str(source)`: the path, or the URL without secrets), gives its `size`, opens as
a seekable read-only file (`open()`: what h5py, zipfile and the safetensors and torch readers
read) or a random-access buffer (`view()`: a memory map locally, pages fetched by range
remotely; what the protobuf and flatbuffer walkers index), and reaches the members of a
directory format (`source / "variables/variables.index"`, `source.parent / location`) without
ever leaving it. How a remote object is fetched (page size, cache, retries, timeouts) is
decided once, where its URL is opened (`inspector.formats.remote`), not in the readers.

A local source keeps the bounds rnninspect always had: files are opened read-only, a FIFO, a
device or a socket is refused before it is opened (`detect.require_regular`), and a member of
a directory that is a symbolic link leading out of it is never opened.

How a reader plugs in: `read(path: Source) -> Model` in its module, with `path.open()` where it
opened the file, `path.size` for `path.stat().st_size`, `with path.view() as buf:` for a memory
map, `h5py.File(path.open(), "r")` / `zipfile.ZipFile(path.open())` for libraries that took a
path, and `path / name` (or `path.parent / name`) for files beside it; messages keep `{path}`. A
directory format checks each member before anything opens it (`member.inside()`,
`member.checked()`) and says what it was read from in `Model.stored_bytes` (`tree_bytes` sums
a directory); a single file's size is the source's own.
"""

from __future__ import annotations

import mmap
import os
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import BinaryIO

from inspector.errors import NotFoundError, UnsupportedModelError
from inspector.formats.detect import HEAD_BYTES, is_model_dir, require_regular
from inspector.formats.ranges import Buffer

_DRIVE = re.compile(r"^[A-Za-z]:")


class Source(ABC):
    """A model file or directory, local or remote (see the module's docstring)."""

    @abstractmethod
    def __str__(self) -> str:
        """What messages and reports call it (never a credential)."""

    @property
    @abstractmethod
    def name(self) -> str:
        """The last component of its path (`model.onnx`)."""

    @property
    def suffix(self) -> str:
        name = self.name
        dot = name.rfind(".")
        return name[dot:] if 0 < dot < len(name) - 1 else ""

    @property
    @abstractmethod
    def parent(self) -> Source:
        """The directory holding it: where files that travel with a model are looked up."""

    @abstractmethod
    def _member(self, relative: str) -> Source: ...

    def __truediv__(self, relative: str) -> Source:
        """A file or directory inside this directory, by a relative path of '/'-separated
        names. A name that points outside (absolute, `..`, a drive letter, a NUL) raises
        UnsupportedModelError; a local member that is a link leading out is refused when it
        is opened (`inside()` tells beforehand)."""
        parts = re.split(r"[\\/]", relative)
        if (
            not relative
            or relative.startswith(("/", "\\"))
            or _DRIVE.match(relative) is not None
            or ".." in parts
            or "\x00" in relative
        ):
            raise UnsupportedModelError(
                f"{self}: '{relative}' names a file outside this directory; not opened"
            )
        return self._member(relative)

    @abstractmethod
    def inside(self) -> bool:
        """Whether it lies inside the directory it was reached from (a local link may lead
        out); what the user named is always inside."""

    @abstractmethod
    def is_file(self) -> bool: ...

    @abstractmethod
    def is_dir(self) -> bool: ...

    def exists(self) -> bool:
        return self.is_file() or self.is_dir()

    @property
    @abstractmethod
    def size(self) -> int:
        """Bytes in the file. Raises NotFoundError (RemoteError for a URL)."""

    @abstractmethod
    def open(self) -> BinaryIO:
        """A new read-only, seekable handle at offset 0. Raises NotFoundError (RemoteError
        for a URL), UnsupportedModelError for a link out of its directory."""

    @abstractmethod
    def view(self) -> AbstractContextManager[Buffer]:
        """Context manager: the whole file as a buffer (b"" when empty)."""

    @abstractmethod
    def head(self) -> bytes:
        """The first HEAD_BYTES, what detection reads (b"" for a SavedModel directory)."""

    @abstractmethod
    def stored_size(self) -> int | None:
        """The file's size where it is stored (`--max-file-size`); None for a directory (its
        reader tells: `Model.stored_bytes`) or when it cannot be told."""

    @abstractmethod
    def tree_bytes(self, max_entries: int) -> int | None:
        """Bytes of every regular file below this directory, links not followed; a listing
        of more than `max_entries` entries raises UnsupportedModelError instead of being
        walked. None where a folder cannot be listed (a web server's)."""

    def checked(self) -> Source:
        """This file, refused (NotFoundError, UnsupportedModelError) unless it may be read:
        locally a regular file (never a FIFO, a device or a socket) that does not lead out of
        the directory it was reached from. Nothing is opened."""
        return self


class LocalSource(Source):
    """A path on this machine. `root`: the directory a member was reached from (None for what
    the user named), which a link may not lead out of."""

    def __init__(self, path: Path, root: Path | None = None) -> None:
        self.path = path
        self._root = root

    def __str__(self) -> str:
        return str(self.path)

    def __repr__(self) -> str:
        return f"LocalSource({str(self.path)!r})"

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def suffix(self) -> str:
        return self.path.suffix

    @property
    def parent(self) -> LocalSource:
        return LocalSource(self.path.parent, self._root)

    def _member(self, relative: str) -> LocalSource:
        return LocalSource(self.path / relative, self._root or self.path)

    def inside(self) -> bool:
        if self._root is None:
            return True
        try:
            return self.path.resolve().is_relative_to(self._root.resolve())
        except (OSError, RuntimeError, ValueError):
            return False

    def is_file(self) -> bool:
        try:
            return self.path.is_file()
        except (OSError, ValueError):
            return False

    def is_dir(self) -> bool:
        try:
            return self.path.is_dir()
        except (OSError, ValueError):
            return False

    def exists(self) -> bool:  # also a FIFO or a device, which `checked()` refuses by name
        try:
            return self.path.exists()
        except (OSError, ValueError):
            return False

    def checked(self) -> LocalSource:
        if not self.inside():
            raise UnsupportedModelError(
                f"{self.path}: is a link out of {self._root}; links are never followed"
            )
        require_regular(self.path)
        return self

    @property
    def size(self) -> int:
        self.checked()
        try:
            return self.path.stat().st_size
        except OSError as error:
            raise NotFoundError(f"{self}: cannot be read ({error.strerror or error})") from None

    def open(self) -> BinaryIO:
        self.checked()
        try:
            return self.path.open("rb")
        except OSError as error:
            raise NotFoundError(f"{self}: cannot be read ({error.strerror or error})") from None

    @contextmanager
    def view(self) -> Iterator[Buffer]:
        with self.open() as handle:
            if os.fstat(handle.fileno()).st_size == 0:
                yield b""
                return
            try:
                mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
            except (OSError, ValueError) as error:
                raise NotFoundError(f"{self}: cannot be memory-mapped ({error})") from None
            with mapped:
                yield mapped

    def head(self) -> bytes:
        if is_model_dir(self):
            return b""
        with self.open() as handle:
            try:
                return handle.read(HEAD_BYTES)
            except OSError as error:
                raise NotFoundError(f"{self}: cannot be read ({error.strerror or error})") from None

    def stored_size(self) -> int | None:
        try:
            return None if self.path.is_dir() else self.path.stat().st_size
        except OSError:
            return None

    def tree_bytes(self, max_entries: int) -> int:
        total = 0
        seen = 0
        pending = [self.path]
        while pending:
            with os.scandir(pending.pop()) as listing:
                for item in listing:
                    seen += 1
                    if seen > max_entries:
                        raise UnsupportedModelError(
                            f"{self}: the directory lists more than {max_entries:,} entries; "
                            "refused"
                        )
                    if item.is_dir(follow_symlinks=False):
                        pending.append(Path(item.path))
                    elif item.is_file(follow_symlinks=False):
                        total += item.stat(follow_symlinks=False).st_size
        return total
