"""Models in object stores and on web servers: a `Source` over fsspec (`rnninspect[remote]`).

`s3://` (s3fs), `gs://` (gcsfs), `https://`/`http://` (fsspec's HTTP filesystem) and `hf://`
(huggingface_hub's HfFileSystem) objects are read by range: each is opened once with fsspec's
own cache off (`cache_type="none"`) and read through `ranges.Pages`, which fetches the pages a
reader touches and checks every answer. This module is imported only for a URL: a local path
never loads fsspec or a store's client.

Credentials and endpoints come from where each client looks: AWS_ACCESS_KEY_ID /
AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, AWS_PROFILE and ~/.aws, AWS_ENDPOINT_URL (MinIO and
other S3-compatible stores); GOOGLE_APPLICATION_CREDENTIALS or gcloud's default credentials,
STORAGE_EMULATOR_HOST; HF_TOKEN and HF_ENDPOINT; user:password in an http(s) URL. None of them
is ever written into a message: errors are described in our own words, and any text a library
gives is scrubbed of URLs' secrets and of credential values (`scrub`).

A server is held to what a range read needs, and anything else is one `RemoteError`:
- a range request must be answered 206 with at most the bytes asked for (a 200 with the whole
  object, or a longer body, is refused before the body is read; `_check_range`);
- an http(s) redirect may stay on the same scheme, host and port; one elsewhere (another host,
  `file://`) is refused (`_check_redirect`);
- each request has `--timeout` seconds (connect and between reads); 5xx, 429 and a reset
  connection are retried twice (RETRIES) where the client does not retry itself (gcsfs and
  huggingface_hub retry on their own, a bounded number of times); 4xx never are.
"""

from __future__ import annotations

import importlib
import os
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO, TypeVar

from inspector.errors import InspectorError, RemoteError, UsageError
from inspector.formats.ranges import PAGE_BYTES, Buffer, Pages, RangeFile, RangeView
from inspector.formats.source import Source
from inspector.location import Url, redact

T = TypeVar("T")

RETRIES = 2  # extra attempts after a 5xx, a 429 or a reset connection
_BACKOFF = 0.25  # seconds before the first retry, doubled each time
# The module each protocol's filesystem lives in (imported before workers fork: `preload`).
_CLIENTS = {
    "s3": ("s3fs", "S3FileSystem"),
    "gcs": ("gcsfs.core", "GCSFileSystem"),
    "http": ("fsspec.implementations.http", "HTTPFileSystem"),
    "https": ("fsspec.implementations.http", "HTTPFileSystem"),
    "hf": ("huggingface_hub", "HfFileSystem"),
}
_PACKAGES = {
    "s3": "s3fs",
    "gcs": "gcsfs",
    "http": "aiohttp",
    "https": "aiohttp",
    "hf": "huggingface_hub",
}
_SELF_RETRYING = frozenset({"gcs", "hf"})
_SECRET_VARIABLES = (
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_ACCESS_KEY_ID",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "GOOGLE_OAUTH_ACCESS_TOKEN",
)


def preload_transport(url: Url) -> None:
    """Import what reading `url` needs (fsspec and the store's client), so forked workers
    inherit it, and start fsspec's I/O thread: in a worker this runs before its bounds are
    armed, as a thread may not start under --max-memory. Raises UsageError when
    `rnninspect[remote]` is not installed."""
    module, _ = _CLIENTS[url.protocol]
    _import(url, module)
    from fsspec.asyn import get_loop

    get_loop()


def _import(url: Url, module: str) -> Any:
    # gcsfs's default class asks Google's storage control API what kind each bucket is (a
    # request beyond the object, and gRPC at import); the plain JSON API reads every bucket.
    os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UsageError(
            f"{url}: reading {url.scheme}:// URLs needs fsspec and "
            f"{_PACKAGES[url.protocol]}: pip install 'rnninspect[remote]'"
        ) from None


# ------------------------------------------------------------------------------ the source


class RemoteSource(Source):
    """An object (or a prefix: a directory) at a URL. Nothing is fetched until asked for; the
    object's pages are fetched once and shared by every handle `open()` and `view()` give."""

    def __init__(self, url: Url) -> None:
        self.url = url
        self._info: dict[str, Any] | None = None
        self._asked = False  # the store was asked for `_info` (None: no such object)
        self._pages: Pages | None = None

    def __str__(self) -> str:
        return str(self.url)

    def __repr__(self) -> str:
        return f"RemoteSource({str(self.url)!r})"

    @property
    def name(self) -> str:
        return self.url.name

    @property
    def parent(self) -> RemoteSource:
        return RemoteSource(self.url.parent())

    def _member(self, relative: str) -> RemoteSource:
        return RemoteSource(self.url.child(relative))

    def inside(self) -> bool:
        return True  # object stores have no links; names are checked by `/`

    def _details(self) -> dict[str, Any] | None:
        """The store's description of the object (type, size), None when there is none."""
        if not self._asked:
            fs = filesystem(self.url)
            try:
                self._info = dict(call(self.url, lambda: fs.info(self.url.key)))
            except RemoteError as error:
                if error.status != 404:
                    raise
            self._asked = True
        return self._info

    def is_file(self) -> bool:
        if self.url.text.endswith("/"):
            return False
        details = self._details()
        return details is not None and details.get("type") == "file"

    def is_dir(self) -> bool:
        if self.url.is_http:  # a web server's folders cannot be listed: a '/' names one
            return self.url.text.endswith("/")
        details = self._details()
        return details is not None and details.get("type") == "directory"

    @property
    def size(self) -> int:
        return self.pages().size

    def pages(self) -> Pages:
        """The object's pages (its size asked for once, nothing else fetched yet)."""
        if self._pages is None:
            self._pages = _open_pages(self)
        return self._pages

    def open(self) -> BinaryIO:
        return RangeFile(self.pages())  # type: ignore[return-value]

    @contextmanager
    def view(self) -> Iterator[Buffer]:
        pages = self.pages()
        yield RangeView(pages) if pages.size else b""

    def head(self) -> bytes:
        from inspector.formats.detect import HEAD_BYTES, is_model_dir

        if self.url.text.endswith("/") or self.is_dir():
            if is_model_dir(self):
                return b""
            raise RemoteError(f"{self}: is a prefix (a directory), expected a model file")
        return self.pages().read(0, HEAD_BYTES)

    def stored_size(self) -> int | None:
        try:
            return None if self.url.text.endswith("/") or self.is_dir() else self.size
        except InspectorError:
            return None

    def tree_bytes(self, max_entries: int) -> int | None:
        if self.url.is_http:
            return None  # a web server's folder cannot be listed to sum its files
        found = listing(self.url)
        if len(found) > max_entries:
            raise RemoteError(
                f"{self}: the prefix lists more than {max_entries:,} objects; refused"
            )
        return sum(size for _, size in found)


def _open_pages(source: RemoteSource) -> Pages:
    url = source.url
    if url.text.endswith("/") or source.is_dir():
        raise RemoteError(f"{url}: is a prefix (a directory), expected a model file")
    fs = filesystem(url)
    details = source._details()
    if details is None:
        raise RemoteError(f"{url}: no such object (404 Not Found)", status=404)
    size = details.get("size")
    if not isinstance(size, int) or size < 0:
        raise RemoteError(
            f"{url}: the server does not say how large the object is (no Content-Length), "
            "so it cannot be read by range; refused"
        )
    raw = call(
        url, lambda: fs.open(url.key, "rb", block_size=PAGE_BYTES, cache_type="none", size=size)
    )

    def fetch(start: int, end: int) -> bytes:
        def one() -> bytes:
            raw.seek(start)
            data: bytes = raw.read(end - start)
            return data

        return call(url, one)

    return Pages(fetch, size, str(url))


# ----------------------------------------------------------------------------- filesystems


# The filesystems made, by (process, protocol, timeout). Those made before a fork stay
# referenced in the forked worker: collected there, their finalizers would close their sessions
# through the parent's event loop, which does not run in the child (a second's wait each, or
# a worker blocked for good when the collection happens on fsspec's own thread).
_MADE: dict[tuple[int, str, float | None], Any] = {}


def filesystem(url: Url) -> Any:
    """The fsspec filesystem reading `url`, made once per process, protocol and timeout (a
    forked worker makes its own: an event loop does not survive a fork)."""
    key = (os.getpid(), url.protocol, url.timeout)
    made = _MADE.get(key)
    if made is None:
        made = _MADE[key] = _make(url)
    return made


def _make(url: Url) -> Any:
    protocol = url.protocol
    module, name = _CLIENTS[protocol]
    cls = getattr(_import(url, module), name)
    timeout = url.timeout
    if protocol == "s3":
        fs = cls(
            skip_instance_cache=True,  # kept in _MADE instead
            anon=_anonymous_s3(),
            config_kwargs={
                "connect_timeout": timeout or 60,
                "read_timeout": timeout or 60,
                "retries": {"total_max_attempts": 1},  # retried here (`call`)
            },
        )
        fs.retries = 1
        return fs
    if protocol == "gcs":
        return cls(
            skip_instance_cache=True,
            session_kwargs=_session_options(url),
            requests_timeout=timeout,
        )
    if protocol in ("http", "https"):
        return cls(skip_instance_cache=True, client_kwargs=_session_options(url))
    _hf_settings(timeout)
    return cls(skip_instance_cache=True, endpoint=os.environ.get("HF_ENDPOINT") or None)


def _anonymous_s3() -> bool:
    """Unsigned requests when AWS_NO_SIGN_REQUEST is set (public buckets, as the AWS CLI's
    --no-sign-request); credentials are otherwise botocore's to find."""
    return os.environ.get("AWS_NO_SIGN_REQUEST", "").lower() in ("1", "true", "yes")


def _hf_settings(timeout: float | None) -> None:
    """huggingface_hub reads its settings from constants (set from HF_HUB_* variables at
    import): --timeout sets its timeouts unless the user did; telemetry stays off unless the
    user turned it on, since with it every request first fetches an "agent harness" registry
    from the Hub and writes it under HF_HOME (rnninspect writes nothing but --output)."""
    from huggingface_hub import constants

    if "HF_HUB_DISABLE_TELEMETRY" not in os.environ:
        constants.HF_HUB_DISABLE_TELEMETRY = True
    if timeout is None:
        return
    for name in ("HF_HUB_DOWNLOAD_TIMEOUT", "HF_HUB_ETAG_TIMEOUT"):
        if name not in os.environ:
            setattr(constants, name, max(1, round(timeout)))


def _session_options(url: Url) -> dict[str, Any]:
    """aiohttp session options: timeouts, the redirect and range checks, proxies from the
    environment."""
    import aiohttp

    trace = aiohttp.TraceConfig()
    trace.on_request_redirect.append(_check_redirect)
    timeout = url.timeout
    return {
        "timeout": aiohttp.ClientTimeout(
            total=None, connect=timeout, sock_connect=timeout, sock_read=timeout
        ),
        "trace_configs": [trace],
        "raise_for_status": _check_range,
        "trust_env": True,
    }


class _Refused(Exception):
    """A server answered in a way a range read must not accept (raised inside aiohttp)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


async def _check_redirect(session: object, context: object, params: Any) -> None:
    """Follow a redirect only within the same scheme, host and port."""
    from yarl import URL

    location = params.response.headers.get("Location", "")
    target = params.url.join(URL(location)) if location else params.url
    where = (target.scheme, target.host, target.port)
    if where != (params.url.scheme, params.url.host, params.url.port):
        raise _Refused(
            f"the server redirects to {redact(str(target))}, outside "
            f"{params.url.scheme}://{params.url.host}: refused (give that URL if you trust it)"
        )


_RANGE = re.compile(r"bytes=(\d+)-(\d+)$")


async def _check_range(response: Any) -> None:
    """A range request answered with the whole object (200) or a longer body is refused
    before its body is read; other statuses are left to the client."""
    asked = _RANGE.match(response.request_info.headers.get("Range", ""))
    if asked is None or response.status >= 300:
        return
    wanted = int(asked.group(2)) - int(asked.group(1)) + 1
    length = response.headers.get("Content-Length")
    if response.status != 206:
        raise _Refused(
            f"the server ignores Range requests (it answered {response.status} with the whole "
            "object): only the metadata cannot be fetched; refused",
            response.status,
        )
    if length is not None and length.isdigit() and int(length) > wanted:
        raise _Refused(
            f"the server answers a range of {wanted:,} bytes with {int(length):,}: it does "
            "not honour Range requests; refused",
            response.status,
        )


# ------------------------------------------------------------------------------ calling out


def call(url: Url, work: Callable[[], T]) -> T:
    """`work()` against the store, its failures made one RemoteError; transient ones (5xx,
    429, a reset connection) retried where the client does not retry itself."""
    attempts = 1 if url.protocol in _SELF_RETRYING else 1 + RETRIES
    for attempt in range(attempts):
        try:
            return work()
        except InspectorError:
            raise
        except Exception as error:  # every client has its own exceptions: described below
            failure = describe(url, error)
            if attempt + 1 < attempts and _transient(failure):
                time.sleep(_BACKOFF * 2**attempt)
                continue
            raise failure from None
    raise AssertionError("unreachable")


def _transient(failure: RemoteError) -> bool:
    return failure.status in (429, 500, 502, 503, 504) or failure.reset


_RESETS = {
    "ConnectionResetError",
    "ServerDisconnectedError",
    "ClientPayloadError",
    "RemoteProtocolError",
    "IncompleteRead",
    "ConnectionClosedError",
    "ReadError",
}
_UNREACHABLE_LEAVES = {
    "ClientConnectorError",
    "EndpointConnectionError",
    "ConnectError",
    "ConnectionRefusedError",
}
_UNREACHABLE = _UNREACHABLE_LEAVES | {"ConnectionError"}
_STATUS_WORDS = {
    400: "bad request",
    401: "not authenticated: credentials are missing or wrong",
    403: "access denied: check the credentials (AWS_*, GOOGLE_APPLICATION_CREDENTIALS, "
    "HF_TOKEN) and the object's permissions",
    404: "no such object",
    416: "the range asked for lies outside the object",
    429: "too many requests: the server throttles",
}


def describe(url: Url, error: BaseException) -> RemoteError:
    """One line for what went wrong, in our words: a status, a timeout, a failed connection,
    or the library's own message scrubbed of secrets."""
    chain = _chain(error)
    refused = next((e for e in chain if isinstance(e, _Refused)), None)
    if refused is not None:
        return RemoteError(f"{url}: {refused}", refused.status)
    status = next((s for s in map(_status, chain) if s is not None), None)
    if status is not None:
        words = _STATUS_WORDS.get(status) or ("server error" if status >= 500 else "refused")
        return RemoteError(f"{url}: HTTP {status} ({words})", status)
    # What went wrong underneath comes first: fsspec reports a HEAD and a GET that both
    # timed out (or were reset) as FileNotFoundError.
    names = {cls.__name__ for e in chain for cls in type(e).__mro__}
    if any("Timeout" in name for name in names):
        seconds = f" within {url.timeout:g} s (--timeout)" if url.timeout else ""
        return RemoteError(f"{url}: the server did not answer{seconds}")
    if names & _RESETS:
        return RemoteError(f"{url}: the server closed the connection mid-answer", reset=True)
    if names & _UNREACHABLE:
        cause = next((e for e in chain if type(e).__name__ in _UNREACHABLE_LEAVES), error)
        reason = _reason(url, cause)
        return RemoteError(f"{url}: cannot connect to the server ({reason})", reset=True)
    if names & {"NoCredentialsError", "DefaultCredentialsError"}:
        return RemoteError(
            f"{url}: no credentials found (set AWS_* or AWS_PROFILE, GOOGLE_APPLICATION_"
            "CREDENTIALS, or AWS_NO_SIGN_REQUEST=1 for a public bucket)"
        )
    if names & {"TooManyRedirects"}:
        return RemoteError(f"{url}: too many redirects")
    if isinstance(error, FileNotFoundError) or "NoSuchKey" in names:
        return RemoteError(f"{url}: no such object (404 Not Found)", 404)
    if isinstance(error, PermissionError):
        return RemoteError(f"{url}: HTTP 403 ({_STATUS_WORDS[403]})", 403)
    return RemoteError(f"{url}: cannot be read ({type(error).__name__}: {_reason(url, error)})")


def _chain(error: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen and len(seen) < 16:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _status(error: BaseException) -> int | None:
    """The HTTP status an exception of any client carries (aiohttp, httpx, botocore, gcsfs)."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):  # botocore ClientError
        code = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return code if isinstance(code, int) else None
    for owner, name in ((error, "status"), (error, "status_code"), (response, "status_code")):
        candidate = getattr(owner, name, None)  # one at a time: aiohttp deprecates `code`
        if isinstance(candidate, int) and 100 <= candidate <= 599:
            return candidate
    candidate = getattr(error, "code", None) if not hasattr(error, "status") else None
    if isinstance(candidate, int) and 100 <= candidate <= 599:
        return candidate
    return None


def _reason(url: Url, error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return scrub(text[:300], url)


_USERINFO = re.compile(r"(?<=://)[^/\s@]+@")
_QUERY = re.compile(r"(://[^\s?'\"]*)\?[^\s'\"]*")


def scrub(text: str, url: Url) -> str:
    """`text` without the URL's secrets (its user information and query) nor the values of
    credential variables in the environment."""
    text = text.replace(url.text, str(url))
    text = _USERINFO.sub("***@", text)
    text = _QUERY.sub(r"\1?***", text)
    for name in _SECRET_VARIABLES:
        value = os.environ.get(name)
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return text


# -------------------------------------------------------------------------------- listing


MAX_LISTED = 200_000  # objects one prefix may hold (a Hub repository holds at most 100,000)


def listing(url: Url) -> list[tuple[Url, int]]:
    """Every object below the prefix `url`, with its size, sorted by key; hidden folders
    (`.git`, `.cache`) are not entered. Raises RemoteError (an http(s) URL: a web server's
    folders cannot be listed; a prefix of more than MAX_LISTED objects, refused as it is
    listed rather than held in memory)."""
    if url.is_http:
        raise RemoteError(
            f"{url}: a web server's folder cannot be listed; give each model's URL (a "
            "SavedModel directory's URL ends in '/')"
        )
    fs = filesystem(url)
    prefix = url.key.rstrip("/")

    def walk() -> list[tuple[str, int]]:
        found: list[tuple[str, int]] = []
        for folder, folders, files in fs.walk(prefix, detail=True, on_error="raise"):
            for hidden in [name for name in folders if name.startswith(".")]:
                del folders[hidden]  # fsspec's walk, like os.walk, enters what is left
            for name, details in files.items():
                if details.get("type", "file") != "file":
                    continue
                key = f"{str(folder).rstrip('/')}/{name.rsplit('/', 1)[-1]}"
                found.append((key[len(prefix) :].lstrip("/"), int(details.get("size") or 0)))
                if len(found) > MAX_LISTED:
                    raise RemoteError(
                        f"{url}: more than {MAX_LISTED:,} objects below the prefix; refused "
                        "(give a narrower prefix)"
                    )
        return found

    base = url.text.rstrip("/")
    return [(Url(f"{base}/{key}", url.timeout), size) for key, size in sorted(call(url, walk))]


def heads(urls: list[Url], length: int) -> list[bytes]:
    """The first `length` bytes of each object (b"" for one that cannot be read), fetched
    concurrently where the client can (s3, gcs, http); one by one by range otherwise (hf:
    fsspec's generic `cat_ranges` would read a whole default block of each)."""
    if not urls:
        return []
    fs = filesystem(urls[0])
    if not getattr(fs, "async_impl", False):
        return [_head(url, length) for url in urls]
    keys = [url.key for url in urls]
    try:
        found = call(
            urls[0],
            lambda: fs.cat_ranges(keys, [0] * len(keys), [length] * len(keys), on_error="return"),
        )
    except RemoteError:
        return [b""] * len(urls)
    return [part if isinstance(part, bytes) else b"" for part in found]


def _head(url: Url, length: int) -> bytes:
    try:
        return RemoteSource(url).pages().read(0, length)
    except InspectorError:
        return b""
