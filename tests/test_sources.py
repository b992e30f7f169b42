"""Downloading Tiny Shakespeare: a reply that breaks off or is not HTTP caches nothing and is explained."""

from __future__ import annotations

import http.server
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from core.common import paths
from data import sources

BODY = b"Quiet Baker:\nWe knead the dough at dawn and sell warm loaves by noon.\n"


class CutOff(http.server.BaseHTTPRequestHandler):
    """Announces twice the body's length, sends the body, then closes the connection."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(2 * len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args: object) -> None:
        pass


class NotHttp(CutOff):
    """Replies with a line that is not an HTTP status line (http.client raises BadStatusLine)."""

    def do_GET(self) -> None:
        self.wfile.write(b"hello there\r\n\r\n")


class NotFound(CutOff):
    def do_GET(self) -> None:
        self.send_error(404)


@contextmanager
def serving(handler: type[http.server.BaseHTTPRequestHandler]) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/input.txt"
    finally:
        server.shutdown()
        server.server_close()


def open_in_cache() -> list[str]:
    """Files in the cache folder this process holds open (sockets and other files are left out)."""
    cache = str(paths.cache_dir())
    targets = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            targets.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:  # closed meanwhile
            pass
    return [t for t in targets if t.startswith(cache)]


@pytest.mark.parametrize(
    ("handler", "message"),
    [(CutOff, f"stopped after {len(BODY)} of {2 * len(BODY)} bytes"), (NotHttp, "BadStatusLine")],
)
def test_broken_download_caches_nothing(
    monkeypatch: pytest.MonkeyPatch, handler: type[http.server.BaseHTTPRequestHandler], message: str
) -> None:
    with serving(handler) as url:
        monkeypatch.setattr(sources, "SHAKESPEARE_URL", url)
        with pytest.raises(sources.SourceError, match=message):
            sources.shakespeare_file()
    assert os.listdir(paths.cache_dir()) == []  # neither the cut-off file nor its temp file


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts descriptors through /proc")
def test_download_closes_its_temp_file(monkeypatch: pytest.MonkeyPatch) -> None:
    with serving(NotFound) as url:
        with pytest.raises(sources.SourceError, match="Not Found"):
            sources.download(url, paths.cache_dir() / "x.txt")
    assert open_in_cache() == []
