"""Where a model is: a local path, or the URL of an object in a store rnninspect reads remotely.

A command-line argument of the form `scheme://...` is a URL; anything else is a path. Only the
stores in `SCHEMES` are read: fsspec knows protocols that reach the local disk (`file`, `local`,
`simplecache::`), read archives or chain filesystems (`zip::`, `reference`) or talk to other
services (`github`, `ftp`, `sftp`), and none of those is a model store a URL may make the tool
open. A URL's text can carry secrets (`https://user:password@host/`, a presigned URL's
`?X-Amz-Signature=...`): `str(url)` never shows them, so every message, report and `--output`
file built from it is safe to share; only the reader that opens it sees `Url.text`.

Nothing here does I/O or imports a filesystem library: the command line builds locations at
start-up (`inspector.formats.source.open_source` opens them).
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from inspector.errors import UsageError

# URL scheme -> the fsspec protocol that reads it (s3fs, gcsfs, fsspec's HTTP, huggingface_hub).
SCHEMES = {
    "s3": "s3",
    "gs": "gcs",
    "gcs": "gcs",
    "http": "http",
    "https": "https",
    "hf": "hf",
}


class Url:
    """A model's URL. `text` is the URL as given (secrets included); `str()` hides the user
    information and the query. `timeout`: seconds one request may take (None: the transport's
    own default), set by the command from `--timeout`. (A plain class rather than a
    dataclass: every command line imports this module, and a dataclass costs a millisecond to
    build.)"""

    __slots__ = ("text", "timeout")

    def __init__(self, text: str, timeout: float | None = None) -> None:
        self.text = text
        self.timeout = timeout

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Url) and (self.text, self.timeout) == (other.text, other.timeout)

    def __hash__(self) -> int:
        return hash((self.text, self.timeout))

    def __repr__(self) -> str:
        return f"Url({str(self)!r})"

    def __str__(self) -> str:
        return redact(self.text)

    @property
    def scheme(self) -> str:
        return self.text.split("://", 1)[0].lower()

    @property
    def protocol(self) -> str:
        """The fsspec protocol that reads this URL."""
        return SCHEMES[self.scheme]

    @property
    def is_http(self) -> bool:
        return self.scheme in ("http", "https")

    @property
    def key(self) -> str:
        """The object's path in its store, without the scheme (`bucket/models/m.onnx`); for
        HTTP the whole URL, which is how fsspec's HTTP filesystem names a file."""
        if self.is_http:
            return self.text
        return self.text.split("://", 1)[1]

    @property
    def name(self) -> str:
        """The last component of the path (`m.onnx`; '' for a prefix ending in '/')."""
        path = urlsplit(self.text).path if self.is_http else self.key
        return path.rsplit("/", 1)[-1]

    @property
    def suffix(self) -> str:
        name = self.name
        dot = name.rfind(".")
        return name[dot:] if 0 < dot < len(name) - 1 else ""

    def child(self, name: str) -> Url:
        """The URL of `name` below this one taken as a directory (query and fragment kept off:
        they belong to the object the user named)."""
        if self.is_http:
            parts = urlsplit(self.text)
            path = parts.path.rstrip("/") + "/" + name
            return Url(parts._replace(path=path, query="", fragment="").geturl(), self.timeout)
        return Url(self.text.rstrip("/") + "/" + name, self.timeout)

    def parent(self) -> Url:
        """The URL of the directory (prefix) holding this object."""
        if self.is_http:
            parts = urlsplit(self.text)
            path = parts.path.rstrip("/").rsplit("/", 1)[0] + "/"
            return Url(parts._replace(path=path, query="", fragment="").geturl(), self.timeout)
        head, _, _ = self.text.rstrip("/").rpartition("/")
        return Url(head if "://" in head else self.text, self.timeout)

    def bounded(self, timeout: float) -> Url:
        """This URL with requests bounded by `timeout` seconds (0: the transport's default)."""
        return Url(self.text, timeout if timeout > 0 else None)


Location = Path | Url


def redact(text: str) -> str:
    """A URL without its secrets: user information becomes `***@` and a query `?***` (a
    presigned URL's signature, an access token); the fragment is dropped."""
    try:
        parts = urlsplit(text)
    except ValueError:
        return text.split("://", 1)[0] + "://***"
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rpartition("@")[2]
    query = "***" if parts.query else ""
    return parts._replace(netloc=netloc, query=query, fragment="").geturl()


def _scheme(text: str, separator: str) -> str | None:
    """The scheme before `separator` (`://`, or fsspec's chaining `::`), if `text` has one."""
    head, found, _ = text.partition(separator)
    if (
        found
        and head[:1].isalpha()
        and head.isascii()
        and all(c.isalnum() or c in "+.-" for c in head)
    ):
        return head.lower()
    return None


def is_url(text: str) -> bool:
    return _scheme(text, "://") is not None or _scheme(text, "::") is not None


def parse_location(text: str) -> Location:
    """A command-line argument as a path or a URL. Raises UsageError for a URL of a scheme
    rnninspect does not read (`file://`, fsspec's chained `zip::`/`simplecache::`)."""
    scheme = _scheme(text, "://")
    if scheme is None:
        if _scheme(text, "::") is not None:
            raise UsageError(
                f"{redact(text)}: chained fsspec URLs are not read; give the model's own URL "
                f"({', '.join(f'{s}://' for s in SCHEMES)})"
            )
        return Path(text)
    if scheme not in SCHEMES:
        local = " (a local file is given as a path)" if scheme in ("file", "local") else ""
        raise UsageError(
            f"{redact(text)}: the {scheme}:// scheme is not read{local}; rnninspect reads "
            f"{', '.join(f'{s}://' for s in SCHEMES)} URLs"
        )
    url = Url(text)
    if url.is_http and not urlsplit(text).hostname:
        raise UsageError(f"{url}: no host in the URL")
    if not url.is_http and not url.key.strip("/"):
        raise UsageError(f"{url}: no bucket or repository in the URL")
    return url
