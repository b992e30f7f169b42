"""Opening a file that lives in a shared folder, as the untrusted input it is (torch-free).

Run folders, dataset folders and the config dir may come from a cluster, an archive or another user:
any file in them may be a symbolic link (to a file outside, to /dev/zero), a FIFO, a device, a folder,
huge, or JSON nested a hundred thousand levels deep. Every reader of such a file goes through here, and
so do the writers that write into one in place (the run lock's `.lock`, metrics.jsonl's appends), so
none of them can hang, eat memory, crash, or write through a link. (Other writers replace a file,
never writing through it: core.common.disk.write_atomic.)

- `open_regular(path)`: opens without following a link in the last component (O_NOFOLLOW; an lstat
  check where the OS lacks it) and without blocking (O_NONBLOCK: opening a FIFO waits for a writer),
  then refuses what fstat says is not a regular file. `create=True` creates the file that way too
  (the run lock's `.lock`, metrics.jsonl). `follow_links=True` lets a link to a regular file through,
  for the one folder whose files are links by design (Hugging Face's hub cache).
- `read_bytes(path, limit)`: a whole file, refused when larger than `limit` bytes.
- `read_json(path, limit)`: a whole JSON file, parsed by `parse_json`.
- `parse_json(data)`: JSON text with a nesting limit (MAX_DEPTH), every failure (RecursionError,
  UnicodeError, a number too long...) a `BadJSON` saying why.

A refusal is an `UnsafeFile` (an OSError, so a reader that already copes with unreadable files copes
with it) whose message names the file and says why; a missing file, a permission denied or a read-only
disk are the OSErrors they always were.
"""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import IO, Any

from core.common.formatting import human_size

MAX_DEPTH = 32  # levels of nested arrays and objects: our files use at most 5
NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # (not on Windows: an lstat check stands in)
NONBLOCK = getattr(os, "O_NONBLOCK", 0)  # (not on Windows, which has no FIFOs in folders)
CLOEXEC = getattr(os, "O_CLOEXEC", 0)
BINARY = getattr(os, "O_BINARY", 0)
KINDS = (
    (stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"), (stat.S_ISLNK, "a symbolic link"),
)
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


class UnsafeFile(OSError):
    """A file refused or unreadable as the regular file it should be; the message names it and says why."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        super().__init__(f"{path} {reason}")
        self.path = Path(path)
        self.reason = reason

    def __str__(self) -> str:
        return str(self.args[0])


class BadJSON(ValueError):
    """Text that is not JSON within the limits (the message says why, without a file name)."""


def kind_of(mode: int) -> str:
    """What a file of this st_mode is, in words ("a FIFO (named pipe)"), "a regular file" for one."""
    return next((words for test, words in KINDS if test(mode)), "a regular file" if stat.S_ISREG(mode) else "not a file")


def _refusal(path: str | os.PathLike[str], error: OSError, follow_links: bool) -> OSError:
    """The error to raise for a failed open: UnsafeFile when the file is not a regular one (a link, a
    folder, a FIFO without a reader...), else the OSError as it is (missing, no permission, a read-only
    or full disk: its errno tells core.common.disk.disk_problem)."""
    try:
        mode = (os.stat if follow_links else os.lstat)(path).st_mode
    except OSError:
        return error
    return error if stat.S_ISREG(mode) else UnsafeFile(path, _not_regular(mode))


def _not_regular(mode: int) -> str:
    if stat.S_ISLNK(mode):
        return "is a symbolic link: refused (links are never followed here)"
    return f"is {kind_of(mode)}, not a regular file: refused"


def open_regular(path: str | os.PathLike[str], *, write: bool = False, append: bool = False, create: bool = False,
                 follow_links: bool = False) -> IO[bytes]:
    """`path` opened in binary mode (read; `write`: read and write; `append`: append), refusing a link
    (unless `follow_links`) and anything but a regular file without ever blocking; `create` makes it
    (mode 0644 less the umask) if missing. UnsafeFile for a refusal; any other OSError as raised."""
    flags = (os.O_RDWR if write else os.O_WRONLY | os.O_APPEND if append else os.O_RDONLY) | NONBLOCK | CLOEXEC | BINARY
    if create:
        flags |= os.O_CREAT
    if not follow_links:
        flags |= NOFOLLOW
        if not NOFOLLOW and os.path.islink(path):
            raise UnsafeFile(path, _not_regular(stat.S_IFLNK))
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as error:
        raise _refusal(path, error, follow_links) from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise UnsafeFile(path, _not_regular(mode))
        # (O_NONBLOCK means nothing for a regular file's reads and writes: it stays set)
        return os.fdopen(fd, "r+b" if write else "ab" if append else "rb")
    except BaseException:
        os.close(fd)
        raise


def read_limited(file: IO[bytes], path: str | os.PathLike[str], limit: int) -> bytes:
    """The rest of an open file, UnsafeFile if it holds more than `limit` bytes (it may grow meanwhile)."""
    data = file.read(limit + 1)
    if len(data) > limit:
        try:
            size = human_size(os.fstat(file.fileno()).st_size)
        except OSError:
            size = "larger"
        raise UnsafeFile(path, f"is {size}, more than the {human_size(limit)} this file may hold: refused")
    return data


def read_bytes(path: str | os.PathLike[str], limit: int, follow_links: bool = False) -> bytes:
    """The whole of a regular file of at most `limit` bytes (see `open_regular`)."""
    with open_regular(path, follow_links=follow_links) as file:
        return read_limited(file, path, limit)


def too_deep(data: bytes, max_depth: int) -> bool:
    """Whether JSON text nests arrays and objects deeper than `max_depth` (brackets in strings aside)."""
    if data.count(b"[") + data.count(b"{") <= max_depth:  # the common case, at C speed
        return False
    depth = 0
    for bracket in _BRACKET.findall(_STRING.sub(b"", data)):
        depth += 1 if bracket in (b"[", b"{") else -1
        if depth > max_depth:
            return True
    return False


def parse_json(data: bytes | str, max_depth: int = MAX_DEPTH) -> Any:
    """JSON text parsed, nested at most `max_depth` levels; BadJSON saying why for anything else."""
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if too_deep(raw, max_depth):
        raise BadJSON(f"holds JSON nested too deeply (more than {max_depth} levels)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise BadJSON(f"is not UTF-8 text (byte {error.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise BadJSON(f"is not valid JSON ({error.msg}: line {error.lineno} column {error.colno})") from None
    except (ValueError, RecursionError, OverflowError, MemoryError) as error:  # e.g. a 5,000-digit number
        raise BadJSON(f"is not JSON this program can read ({type(error).__name__}: {error})") from None


def read_json(path: str | os.PathLike[str], limit: int, max_depth: int = MAX_DEPTH, follow_links: bool = False) -> Any:
    """The JSON in a regular file of at most `limit` bytes (see `open_regular`); UnsafeFile naming the
    file for anything that is not (its text too deep, not UTF-8 or not JSON included)."""
    data = read_bytes(path, limit, follow_links)
    try:
        return parse_json(data, max_depth)
    except BadJSON as error:
        raise UnsafeFile(path, str(error)) from None


def json_kind(value: Any) -> str:
    """What a parsed JSON value is, in JSON's words: "a JSON array", "a JSON string", "JSON null"..."""
    kinds = ((bool, "JSON true or false"), (dict, "a JSON object"), (list, "a JSON array"), (str, "a JSON string"),
             ((int, float), "a JSON number"))
    return next((words for kind, words in kinds if isinstance(value, kind)), "JSON null")


def read_json_object(path: str | os.PathLike[str], limit: int, max_depth: int = MAX_DEPTH,
                     follow_links: bool = False) -> dict[str, Any]:
    """`read_json` of a file that must hold a JSON object."""
    data = read_json(path, limit, max_depth, follow_links)
    if not isinstance(data, dict):
        raise UnsafeFile(path, f"holds {json_kind(data)}, not a JSON object")
    return data

