"""Real servers on the loopback for the remote tests, each in a process of its own
(`ServerProcess`): an HTTP server with Range support that counts the body bytes it serves per
object (with a misbehaving mode for each bad case, chosen by the first path component), and
moto's S3 server with the same count. Objects are put and counts read through `/_control/`.

The HTTP server also answers the few endpoints gcsfs (the GCS JSON API, through
STORAGE_EMULATOR_HOST) and huggingface_hub's HfFileSystem (through HF_ENDPOINT) call to read
objects, so `gs://` and `hf://` run through their real clients against these files.

Modes (`http://host/<mode>/<name>`):
- `ok`: HEAD with Content-Length, GET with Range answered 206;
- `ignore-range`: every GET answered 200 with the whole object;
- `long-range`: a range answered 206 with more bytes than asked;
- `lie-size`: HEAD claims twice the object's size;
- `stall`: the request is read and never answered;
- `reset`: the connection is reset (RST) on GET;
- `status-<code>`: every request answered with that status;
- `flaky`: GETs answered 503 until the object has failed twice, then as `ok`;
- `redirect-same`: 302 to `/ok/<name>` on this server;
- `redirect-elsewhere`: 302 to another host; `redirect-file`: 302 to `file:///etc/passwd`.

Through the GCS and Hub endpoints (and in a listing) an object misbehaves when its file name
starts with `<mode>--` (`stall--model.h5`), so one bad object can sit among good ones.
"""

from __future__ import annotations

import contextlib
import json
import mmap
import re
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

_RANGE = re.compile(r"bytes=(\d+)-(\d*)$")
STALL_SECONDS = 30.0  # a stalled answer waits this long (the client's --timeout is far less)


class Store:
    """The objects the servers hold (name -> bytes) and the body bytes served per name."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root  # objects not put are files under it (benchmarks/bench.py)
        self.objects: dict[str, bytes] = {}
        self.served: Counter[str] = Counter()
        self.largest: Counter[str] = Counter()  # the largest single answer's body
        self.requests: Counter[str] = Counter()  # requests naming the object, answered or not
        self.failures: Counter[str] = Counter()
        self.lock = threading.Lock()

    def put(self, name: str, data: bytes) -> None:
        self.objects[name] = data

    def count(self, name: str, sent: int) -> None:
        with self.lock:
            self.served[name] += sent
            self.largest[name] = max(self.largest[name], sent)

    def asked(self, name: str) -> None:
        with self.lock:
            self.requests[name] += 1

    def reset(self) -> None:
        with self.lock:
            self.served.clear()
            self.largest.clear()
            self.requests.clear()
            self.failures.clear()


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_HEAD(self) -> None:
        self._route(head=True)

    def do_GET(self) -> None:
        self._route(head=False)

    # --- routing ------------------------------------------------------------------------

    def _route(self, head: bool) -> None:
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        query = parse_qs(parts.query)
        if path == "/_control/counts":
            self._answer(200, _counts(self.server.store), head, "application/json")
        elif path.startswith("/storage/v1/b/") or path.startswith("/download/storage/v1/b/"):
            self._gcs(path, query, head)
        elif path.startswith("/api/"):
            self._hf_api(path, query)
        elif "/resolve/" in path:
            repo, _, rest = path.lstrip("/").partition("/resolve/")
            _revision, _, name = rest.partition("/")
            self._object(f"hf/{repo}/{name}", head, "ok")
        else:
            mode, _, name = path.lstrip("/").partition("/")
            self._mode(mode, name, head)

    def _mode(self, mode: str, name: str, head: bool) -> None:
        store = self.server.store
        if mode == "flaky" and not head and store.failures[name] < 2:
            store.failures[name] += 1
            self._answer(503, b"busy\n", head)
        elif mode.startswith("redirect-"):
            where = {
                "redirect-same": f"/ok/{quote(name)}",
                "redirect-elsewhere": f"http://unrelated.invalid/{quote(name)}",
                "redirect-file": "file:///etc/passwd",
            }[mode]
            self.send_response(302)
            self.send_header("Location", where)
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self._object(name, head, mode)

    def _fail(self, mode: str, head: bool) -> None:
        if mode.startswith("status-"):
            self._answer(int(mode.removeprefix("status-")), b"refused\n", head)
        elif mode == "stall":
            time.sleep(STALL_SECONDS)
            self.close_connection = True
        else:  # reset: RST instead of an answer
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True

    def _answer(self, status: int, body: bytes, head: bool, kind: str = "text/plain") -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            with contextlib.suppress(OSError):
                self.wfile.write(body)

    def _object(self, name: str, head: bool, mode: str) -> None:
        prefix, marked, _ = name.rsplit("/", 1)[-1].partition("--")
        if marked and mode == "ok":
            mode = prefix
        self.server.store.asked(name)
        if mode.startswith("status-") or mode == "stall" or (mode == "reset" and not head):
            self._fail(mode, head)
            return
        data = self.server.store.objects.get(name)
        if data is None:
            data = self._file(name)
        if data is None:
            self._answer(404, b"not found\n", head)
            return
        size = len(data) * 2 if mode == "lie-size" else len(data)
        asked = _RANGE.match(self.headers.get("Range", ""))
        if head or asked is None or mode == "ignore-range":
            self.send_response(200)
            self.send_header("Content-Length", str(size))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            if not head:
                self._send(name, data)
            return
        start = int(asked.group(1))
        end = min(int(asked.group(2)) if asked.group(2) else size - 1, len(data) - 1)
        if start >= len(data):
            self._answer(416, b"", head)
            return
        if mode == "long-range":
            end = len(data) - 1
        body = data[start : end + 1]
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{start + len(body) - 1}/{size}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self._send(name, body)

    def _file(self, name: str) -> Any:
        """A file under the store's root, as a read-only memory map (sliced like bytes)."""
        root = self.server.store.root
        if root is None or ".." in name.split("/"):
            return None
        path = root / name
        if not path.is_file():
            return None
        with path.open("rb") as handle:
            return mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)

    def _send(self, name: str, body: bytes) -> None:
        with contextlib.suppress(OSError):  # the client hung up (it refused the answer)
            self.wfile.write(body)
        self.server.store.count(name, len(body))

    # --- the GCS JSON API (gcsfs with STORAGE_EMULATOR_HOST) ----------------------------

    def _gcs(self, path: str, query: dict[str, list[str]], head: bool) -> None:
        store = self.server.store
        download = path.startswith("/download/")
        bucket, _, rest = path.split("/storage/v1/b/", 1)[1].partition("/")
        if rest in ("o", "o/"):  # a listing: objects, and folders when a delimiter is given
            prefix = query.get("prefix", [""])[0]
            delimiter = query.get("delimiter", [""])[0]
            items, folders = [], set()
            for key, data in sorted(store.objects.items()):
                if not key.startswith(f"gcs/{bucket}/{prefix}"):
                    continue
                name = key[len(bucket) + 5 :]
                rest_of = name[len(prefix) :]
                if delimiter and delimiter in rest_of:
                    folders.add(prefix + rest_of.split(delimiter, 1)[0] + delimiter)
                else:
                    items.append(_gcs_item(bucket, name, len(data)))
            document = {"kind": "storage#objects", "items": items, "prefixes": sorted(folders)}
            self._answer(200, json.dumps(document).encode(), head, "application/json")
            return
        name = rest.removeprefix("o/")
        key = f"gcs/{bucket}/{name}"
        if download or query.get("alt") == ["media"]:
            self._object(key, head, "ok")
            return
        data = store.objects.get(key)
        if data is None:
            self._answer(404, b'{"error": {"code": 404}}', head, "application/json")
            return
        body = json.dumps(_gcs_item(bucket, name, len(data))).encode()
        self._answer(200, body, head, "application/json")

    # --- the Hugging Face Hub API (HfFileSystem with HF_ENDPOINT) -----------------------

    def _hf_api(self, path: str, query: dict[str, list[str]]) -> None:
        store = self.server.store
        match = re.match(
            r"^/api/models/([^/]+/[^/]+)(?:/(revision|paths-info|tree)/([^/]+)(/.*)?)?$", path
        )
        if match is None:
            self._answer(404, b'{"error": "not found"}', False, "application/json")
            return
        repo, endpoint, _revision, rest = match.groups()
        prefix = f"hf/{repo}/"
        names = {
            key[len(prefix) :]: data
            for key, data in store.objects.items()
            if key.startswith(prefix)
        }
        if endpoint in (None, "revision"):
            body = {
                "id": repo,
                "sha": "0" * 40,
                "siblings": [{"rfilename": n} for n in sorted(names)],
            }
        elif endpoint == "paths-info":
            wanted = self._form_paths()
            body = [_hf_entry(n, names) for n in wanted if _hf_entry(n, names) is not None]
        else:
            folder = (rest or "").strip("/")
            recursive = query.get("recursive", ["false"])[0].lower() in ("1", "true")
            body = _hf_tree(names, folder, recursive)
        self._answer(200, json.dumps(body).encode(), False, "application/json")

    def _form_paths(self) -> list[str]:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode() if length else ""
        if self.headers.get("Content-Type", "").startswith("application/json"):
            return list(json.loads(raw).get("paths", []))
        return [unquote(v) for v in parse_qs(raw).get("paths", [])]

    def do_PUT(self) -> None:
        name = unquote(urlsplit(self.path).path).removeprefix("/_control/object/")
        length = int(self.headers.get("Content-Length") or 0)
        self.server.store.put(name, self.rfile.read(length))
        self._answer(200, b"", False)

    def do_POST(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/_control/reset":
            self.server.store.reset()
            self._answer(200, b"", False)
        elif unquote(parts.path).startswith("/api/"):
            self._hf_api(unquote(parts.path), parse_qs(parts.query))
        else:
            self._answer(405, b"", False)


def _gcs_item(bucket: str, name: str, size: int) -> dict[str, object]:
    return {
        "kind": "storage#object",
        "bucket": bucket,
        "name": name,
        "size": str(size),
        "generation": "1",
        "contentType": "application/octet-stream",
        "updated": "2026-01-01T00:00:00.000Z",
        "timeCreated": "2026-01-01T00:00:00.000Z",
    }


def _hf_entry(name: str, names: dict[str, bytes]) -> dict[str, object] | None:
    name = name.strip("/")
    if name in names:
        return {"type": "file", "path": name, "size": len(names[name]), "oid": "0" * 40}
    if any(n.startswith(name + "/") for n in names) or name == "":
        return {"type": "directory", "path": name, "oid": "0" * 40}
    return None


def _hf_tree(names: dict[str, bytes], folder: str, recursive: bool) -> list[dict[str, object]]:
    base = f"{folder}/" if folder else ""
    entries: dict[str, dict[str, object]] = {}
    for name, data in sorted(names.items()):
        if not name.startswith(base):
            continue
        rest = name[len(base) :]
        if "/" in rest and not recursive:
            directory = base + rest.split("/", 1)[0]
            entries[directory] = {"type": "directory", "path": directory, "oid": "0" * 40}
            continue
        if recursive:
            parts = rest.split("/")[:-1]
            for depth in range(1, len(parts) + 1):
                directory = base + "/".join(parts[:depth])
                entries[directory] = {"type": "directory", "path": directory, "oid": "0" * 40}
        entries[name] = {"type": "file", "path": name, "size": len(data), "oid": "0" * 40}
    return list(entries.values())


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a stalled answer's thread is not waited for at shutdown
    store: Store


def _serve_http(root: Path | None = None) -> None:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.store = Store(root)
    host, port = server.server_address[:2]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _ready_until_stdin_closes(f"http://{host}:{port}")
    server.shutdown()


def _serve_s3() -> None:
    """moto's ThreadedMotoServer, its WSGI application wrapped to count the body bytes each
    object GET answers (and to answer the control requests)."""
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from moto.server import ThreadedMotoServer
    from werkzeug.serving import make_server

    store = Store()
    app = _counting(DomainDispatcherApplication(create_backend_app), store)

    class Counted(ThreadedMotoServer):
        def _server_entry(self) -> None:
            self._server = make_server(
                self._ip_address, self._port, app, True, request_handler=MotoRequestHandler
            )
            self._server_ready_event.set()
            self._server.serve_forever()

    moto = Counted(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    host, port = moto.get_host_and_port()
    _ready_until_stdin_closes(f"http://{host}:{port}")
    moto.stop()


_Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _counting(app: _Wsgi, store: Store) -> _Wsgi:
    def counted(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = unquote(environ.get("PATH_INFO", ""))
        if path == "/_control/counts":
            start_response("200 OK", [("Content-Type", "application/json")])
            return [_counts(store)]
        if path == "/_control/reset":
            store.reset()
            start_response("200 OK", [("Content-Length", "0")])
            return [b""]
        body = app(environ, start_response)
        if environ.get("REQUEST_METHOD") != "GET":
            return body
        chunks = list(body)
        store.count(path.lstrip("/"), sum(len(chunk) for chunk in chunks))
        return chunks

    return counted


def _counts(store: Store) -> bytes:
    with store.lock:
        return json.dumps(
            {"served": store.served, "largest": store.largest, "requests": store.requests}
        ).encode()


def _ready_until_stdin_closes(url: str) -> None:
    print(url, flush=True)
    sys.stdin.read()  # the test process closes it (or dies): time to stop


class ServerProcess:
    """A server of this module in a process of its own (so the test process, which forks
    bounded workers, stays small): `kind` is "http" or "s3". Objects are put, and bytes
    counted, through control requests; an HTTP server also serves the files under `root`."""

    def __init__(self, kind: str, root: Path | None = None) -> None:
        self._process = subprocess.Popen(
            [sys.executable, __file__, kind, *([str(root)] if root is not None else [])],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        self.url = self._process.stdout.readline().strip()
        if not self.url.startswith("http://"):
            self.stop()
            raise RuntimeError(f"the {kind} server did not start")
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def _call(self, method: str, path: str, data: bytes | None = None) -> bytes:
        request = urllib.request.Request(self.url + path, data=data, method=method)
        with self._opener.open(request, timeout=30) as answer:
            body: bytes = answer.read()
            return body

    def put(self, name: str, data: bytes) -> None:
        self._call("PUT", "/_control/object/" + quote(name), data)

    def counts(self) -> dict[str, Counter[str]]:
        found = json.loads(self._call("GET", "/_control/counts"))
        return {key: Counter(value) for key, value in found.items()}

    def served(self) -> Counter[str]:
        return self.counts()["served"]

    def reset(self) -> None:
        self._call("POST", "/_control/reset", b"")

    def stop(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


if __name__ == "__main__":
    if sys.argv[1] == "http":
        _serve_http(Path(sys.argv[2]) if len(sys.argv) > 2 else None)
    else:
        _serve_s3()
