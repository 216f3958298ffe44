"""Bad remotes are bad input (issue 27): a server that ignores Range, answers a range with more
than asked, lies about the size, stalls, resets the connection, answers 403/404/5xx or
redirects elsewhere gives one line naming the URL and exit 2, within --timeout; transient
failures are retried a bounded number of times (requests counted by the server)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conftest import FIXTURES, run_main
from inspector import inspect_file

# A file whose metadata is at its start and its end (zip: the central directory), and one
# larger than a page, so that a server answering a range with the whole object is caught.
SMALL = "keras3/stacked_lstm.keras"


@pytest.fixture
def http(http_server: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    http_server.reset()
    return http_server


def _large(http: Any) -> str:
    http.put("bad/large.keras", b"\0" * (2 * 1024 * 1024))  # its head is never a model's
    return "bad/large.keras"


# mode -> (object, what its one line says)
CASES = {
    "ignore-range": ("large", "ignores Range requests"),
    "long-range": ("large", "does not honour Range requests"),
    "lie-size": (SMALL, "before the"),
    "stall": (SMALL, "did not answer within 0.5 s"),
    "reset": (SMALL, "closed the connection"),
    "status-401": (SMALL, "HTTP 401"),
    "status-403": (SMALL, "HTTP 403 (access denied"),
    "status-404": (SMALL, "no such object"),
    "redirect-elsewhere": (SMALL, "redirects to http://unrelated.invalid/"),
    "redirect-file": (SMALL, "redirects to file:///etc/passwd"),
    "ok": ("keras2/", "a web server's folder cannot be listed"),
}


def test_each_bad_server_is_one_line_and_the_good_ones_are_read(http: Any) -> None:
    """Every bad case in one run, between good URLs (one on this server, one redirected on
    it): one line each on stderr, in input order, naming the URL and what went wrong; the
    good ones reported; exit 2; never a traceback."""
    large = _large(http)
    bad = [
        f"{http.url}/{mode}/{large if name == 'large' else name}"
        for mode, (name, _) in CASES.items()
    ]
    good = [f"{http.url}/ok/{SMALL}", f"{http.url}/redirect-same/{SMALL}"]
    ran = run_main([good[0], *bad, good[1], "--timeout", "0.5", "--format", "csv"])
    assert ran.code == 2
    assert "Traceback" not in ran.stdout + ran.stderr
    lines = [line for line in ran.stderr.splitlines() if line.strip()]
    assert len(lines) == len(bad), lines
    for line, url, (_, says) in zip(lines, bad, CASES.values(), strict=True):
        assert line.startswith(f"rnninspect: error: {url}: ") and says in line, line
    reported = {row.split(",")[0] for row in ran.stdout.splitlines()[1:]}
    assert reported == set(good)


def test_retries_are_bounded(http: Any) -> None:
    ran = run_main([f"{http.url}/status-503/{SMALL}", "--timeout", "1"])
    assert ran.code == 2
    assert "HTTP 503 (server error)" in ran.stderr
    # fsspec asks for the size by HEAD, then by GET; each is tried twice more after a 5xx.
    assert http.counts()["requests"][SMALL] == 2 * 3


def test_a_server_that_recovers_is_read(http: Any) -> None:
    """503 twice, then the object: read after the retries, the local file's report."""
    flaky = run_main([f"{http.url}/flaky/{SMALL}", "--format", "json"])
    assert flaky.code == 0, flaky.stderr
    local = inspect_file(FIXTURES / SMALL).to_dict()
    assert {**json.loads(flaky.stdout), "file": local["file"]} == local
