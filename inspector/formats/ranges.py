"""A remote object's bytes, fetched by range a page at a time and kept, behind the two shapes
readers take: a seekable read-only file (`RangeFile`: h5py, zipfile, safetensors, torch) and
a random-access buffer (`RangeView`: the protobuf and flatbuffer walkers, which index a memory
map when the file is local).

A report needs a model's metadata: a safetensors header, an HDF5 file's object headers and
heaps, a zip's central directory, the ONNX or TFLite structure between weight payloads.
`Pages` fetches what a reader touches in PAGE_BYTES pages (adjacent missing pages in one
request) and keeps up to MAX_CACHED_BYTES of them, so a 268 MB model is described from a few
hundred kilobytes. A read of LARGE_READ bytes or more (a tensor's values in `compare`) is
fetched as one range and not kept: memory stays bounded by the largest single tensor.

Every fetch is checked: a server that sends more than the range asked for ignores `Range`
(it would stream the whole object), fewer means the object is shorter than its announced
size; both are a `RemoteError`, never a short or shifted read. Nothing here does I/O itself:
the transport (`inspector.formats.remote`) gives `fetch(start, end) -> bytes`.
"""

from __future__ import annotations

import io
import mmap
from collections import OrderedDict
from collections.abc import Callable
from typing import overload

from inspector.errors import RemoteError

PAGE_BYTES = 64 * 1024  # one request's worth of metadata; also the head detection reads
LARGE_READ = 4 * PAGE_BYTES  # reads this large go to the transport uncached
MAX_CACHED_BYTES = 64 * 1024 * 1024
MAX_READAHEAD = 16  # pages fetched ahead of a reader that walks forward (a GGUF vocabulary)

Fetch = Callable[[int, int], bytes]


class Pages:
    """The pages of one object of `size` bytes fetched so far; `name` is what messages call it
    (a URL without secrets). `fetched` counts the bytes received."""

    def __init__(self, fetch: Fetch, size: int, name: str, page: int = PAGE_BYTES) -> None:
        self._fetch = fetch
        self.size = size
        self.name = name
        self.page = page
        self.fetched = 0
        self._cache: OrderedDict[int, bytes] = OrderedDict()
        self._max_pages = max(4, MAX_CACHED_BYTES // page)
        self._next = -1  # the page after the last one fetched
        self._ahead = 0  # pages fetched ahead: doubles while the reader walks forward

    def read(self, start: int, length: int) -> bytes:
        """Up to `length` bytes at `start` (fewer at the end of the object)."""
        end = min(self.size, start + max(length, 0))
        if start >= end:
            return b""
        if end - start >= LARGE_READ:
            return self._get(start, end)
        first, last = start // self.page, (end - 1) // self.page
        self._load(first, last)
        if first == last:
            data = self._cache[first]
            base = first * self.page
            return data[start - base : end - base]
        joined = b"".join(self._cache[index] for index in range(first, last + 1))
        base = first * self.page
        return joined[start - base : end - base]

    def byte(self, position: int) -> int:
        index = position // self.page
        data = self._cache.get(index)
        if data is None:
            self._load(index, index)
            data = self._cache[index]
        return data[position - index * self.page]

    def _load(self, first: int, last: int) -> None:
        """Fetch the missing pages of [first, last], each run of adjacent ones in one range;
        a run that starts where the last fetch ended also takes the pages after it, twice as
        many each time (up to MAX_READAHEAD), so a reader walking forward makes few requests
        and one jumping about fetches what it touches."""
        index = first
        while index <= last:
            if index in self._cache:
                self._cache.move_to_end(index)
                index += 1
                continue
            self._ahead = min(max(1, 2 * self._ahead), MAX_READAHEAD) if index == self._next else 0
            end = min(last + self._ahead, (self.size - 1) // self.page)
            run = index
            while run + 1 <= end and run + 1 not in self._cache:
                run += 1
            self._next = run + 1
            start = index * self.page
            data = self._get(start, min(self.size, (run + 1) * self.page))
            for page in range(index, run + 1):
                offset = (page - index) * self.page
                self._cache[page] = data[offset : offset + self.page]
            while len(self._cache) > self._max_pages:
                self._cache.popitem(last=False)
            index = run + 1

    def _get(self, start: int, end: int) -> bytes:
        data = self._fetch(start, end)
        self.fetched += len(data)
        wanted = end - start
        if len(data) > wanted:
            raise RemoteError(
                f"{self.name}: the server sent {len(data):,} bytes for a range of {wanted:,}: "
                "it does not honour Range requests, so only metadata cannot be read; refused"
            )
        if len(data) < wanted:
            raise RemoteError(
                f"{self.name}: the object ends at byte {start + len(data):,}, before the "
                f"{self.size:,} bytes its size announced; it changed or the server is wrong"
            )
        return data


class RangeFile(io.RawIOBase):
    """A read-only, seekable file over `Pages`; each handle has its own position and all share
    the pages (h5py, zipfile and a `.keras` weights window open the same object)."""

    def __init__(self, pages: Pages) -> None:
        super().__init__()
        self._pages = pages
        self._pos = 0

    @property
    def name(self) -> str:
        return self._pages.name

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._pages.size}[whence]
        if base + offset < 0:
            raise OSError(22, "negative seek position")
        self._pos = base + offset
        return self._pos

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self._pages.read(self._pos, len(buffer))
        memoryview(buffer).cast("B")[: len(data)] = data
        self._pos += len(data)
        return len(data)

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            size = max(0, self._pages.size - self._pos)
        data = self._pages.read(self._pos, size)
        self._pos += len(data)
        return data


class RangeView:
    """The object's bytes as a buffer: `len(view)`, `view[i]` (an int) and `view[a:b]`
    (bytes), as the protobuf and flatbuffer walkers index a memory map."""

    def __init__(self, pages: Pages) -> None:
        self._pages = pages

    def __len__(self) -> int:
        return self._pages.size

    @overload
    def __getitem__(self, index: int) -> int: ...

    @overload
    def __getitem__(self, index: slice) -> bytes: ...

    def __getitem__(self, index: int | slice) -> int | bytes:
        size = self._pages.size
        if isinstance(index, slice):
            start, stop, step = index.indices(size)
            if step != 1:
                raise ValueError("a range view is sliced contiguously")
            return self._pages.read(start, stop - start)
        if index < 0:
            index += size
        if not 0 <= index < size:
            raise IndexError("index out of range")
        return self._pages.byte(index)


Buffer = bytes | mmap.mmap | RangeView  # a file's bytes: in memory, memory-mapped, or by range
