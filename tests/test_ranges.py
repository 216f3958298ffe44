"""The range cache every remote read goes through (inspector/formats/ranges.py), and the URL
type (inspector/location.py): what is fetched, in how many requests, and what is refused.
Counted on an in-memory object; the servers' side is tests/test_remote*.py."""

from __future__ import annotations

import io
import pickle

import pytest

from inspector.errors import RemoteError, UsageError
from inspector.formats.ranges import (
    LARGE_READ,
    MAX_READAHEAD,
    PAGE_BYTES,
    Pages,
    RangeFile,
    RangeView,
)
from inspector.location import Url, parse_location, redact

DATA = bytes(range(256)) * (40 * PAGE_BYTES // 256)


class Counted:
    def __init__(self, data: bytes, extra: int = 0) -> None:
        self.data = data
        self.extra = (
            extra  # bytes a misbehaving server adds to (or, negative, cuts from) each answer
        )
        self.calls: list[tuple[int, int]] = []

    def __call__(self, start: int, end: int) -> bytes:
        self.calls.append((start, end))
        return self.data[start : end + self.extra]


def test_reads_are_exact_and_each_page_is_fetched_once() -> None:
    fetch = Counted(DATA)
    pages = Pages(fetch, len(DATA), "m")
    view = RangeView(pages)
    assert view[5 * PAGE_BYTES + 3] == DATA[5 * PAGE_BYTES + 3]
    assert view[PAGE_BYTES - 10 : PAGE_BYTES + 10] == DATA[PAGE_BYTES - 10 : PAGE_BYTES + 10]
    assert (
        view[5 * PAGE_BYTES : 5 * PAGE_BYTES + 100] == DATA[5 * PAGE_BYTES : 5 * PAGE_BYTES + 100]
    )
    assert len(view) == len(DATA) and view[-1] == DATA[-1]
    fetched = [start // PAGE_BYTES for start, _ in fetch.calls]
    assert fetched == [5, 0, 39]  # page 5; pages 0 and 1 in one range; the last page
    assert pages.fetched == sum(end - start for start, end in fetch.calls)


def test_a_forward_walk_reads_ahead_in_growing_runs() -> None:
    fetch = Counted(DATA)
    handle = RangeFile(Pages(fetch, len(DATA), "m"))
    while handle.read(4096):
        pass
    sizes = [(end - start) // PAGE_BYTES for start, end in fetch.calls]
    assert sizes[:5] == [1, 2, 3, 5, 9] and max(sizes) <= MAX_READAHEAD + 1
    assert sum(sizes) == 40 and len(sizes) < 10  # 40 pages, each once, in few requests


def test_a_large_read_is_one_range_and_not_kept() -> None:
    fetch = Counted(DATA)
    pages = Pages(fetch, len(DATA), "m")
    assert pages.read(7, LARGE_READ) == DATA[7 : 7 + LARGE_READ]
    assert pages.read(7, LARGE_READ) == DATA[7 : 7 + LARGE_READ]
    assert fetch.calls == [(7, 7 + LARGE_READ)] * 2


@pytest.mark.parametrize(
    ("extra", "says"), [(10, "does not honour Range"), (-10, "before the")], ids=["more", "fewer"]
)
def test_an_answer_of_the_wrong_length_is_refused(extra: int, says: str) -> None:
    pages = Pages(Counted(DATA, extra), len(DATA), "https://***@host/m.onnx?***")
    with pytest.raises(RemoteError, match=says):
        pages.read(0, 100)


def test_a_range_file_seeks_like_a_file() -> None:
    handle = RangeFile(Pages(Counted(DATA), len(DATA), "m"))
    assert handle.seek(-4, io.SEEK_END) == len(DATA) - 4 and handle.read() == DATA[-4:]
    assert handle.read(10) == b""
    buffer = bytearray(6)
    handle.seek(100)
    assert handle.readinto(buffer) == 6 and bytes(buffer) == DATA[100:106]


SECRET_URLS = [
    (
        "https://user:pass@host:8443/m.onnx?X-Amz-Signature=abc#frag",
        "https://***@host:8443/m.onnx?***",
    ),
    ("http://host/m.h5", "http://host/m.h5"),
    ("s3://bucket/models/m.keras", "s3://bucket/models/m.keras"),
]


@pytest.mark.parametrize(("text", "shown"), SECRET_URLS)
def test_a_url_shows_no_secret(text: str, shown: str) -> None:
    url = parse_location(text)
    assert isinstance(url, Url)
    assert str(url) == shown == redact(text) and "pass" not in repr(url)
    assert pickle.loads(pickle.dumps(url)) == url  # forked lanes and workers carry it


def test_names_and_members_of_a_url() -> None:
    url = Url("https://host/models/sm/?token=x")
    assert (
        url.child("variables/variables.index").text
        == "https://host/models/sm/variables/variables.index"
    )
    assert Url("s3://b/a/m.safetensors.index.json").parent().text == "s3://b/a"
    assert Url("hf://org/repo/model.safetensors").suffix == ".safetensors"
    assert Url("https://host/a/m.onnx?x=1").name == "m.onnx"


@pytest.mark.parametrize(
    "text",
    [
        "file:///etc/passwd",
        "memory://m",
        "zip://a::s3://b/c",
        "simplecache::s3://b/c",
        "https:///m",
    ],
)
def test_an_unread_scheme_is_a_usage_error(text: str) -> None:
    with pytest.raises(UsageError):
        parse_location(text)


def test_a_path_stays_a_path() -> None:
    from pathlib import Path

    assert parse_location("models/m.h5") == Path("models/m.h5")
    assert parse_location("./odd://name") == Path("./odd://name")
