"""Learning a byte-level BPE (core.tokens.bpe) from text with rustbpe, in a child process.

rustbpe (the trainer nanochat uses) counts the text's pre-split pieces in parallel as the text streams
in, so its memory grows with the number of *distinct* pieces, not with the text; then it merges the most
frequent pair until the vocabulary is full. Its merge loop holds the GIL and cannot be interrupted, so it
runs in a child process: the app's UI thread keeps drawing, a cancel kills the child at once, and the
child's memory is given back when it ends. Its pattern and ranks load straight into tiktoken, which then
encodes (and gives the same ids rustbpe would).

The pipes: the parent writes to the child's stdin, pickled, `(ranks wanted, split regex)`, then the text
as strings, cut only where the split regex is certain to split too (so the counts equal those of the
whole text in one piece), then None. The child writes to its stdout, pickled, `("merges", done, total)`
as it merges (rustbpe logs every 1%) and finally `("ranks", [token bytes, ...])`. Its stderr goes to a
file whose tail explains a child that died.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import re
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable, Iterable, Iterator
from importlib.util import find_spec
from typing import IO

from core.common.child_process import child_env, module_command
from core.tokens.base import TokenizerError, TokenizerUnavailable
from core.tokens.bpe import DEFAULT_PATTERN, ENDOFTEXT, SPLIT_PATTERNS, BpeTokenizer, check_pattern, check_vocab_size

PIECE_CHARS = 2**16  # the text goes to rustbpe in strings of about this many characters
# Before a space that follows a non-space, both split regexes always start a new piece (see
# data.prepare.BPE_CUT): cutting there leaves every piece whole.
SAFE_CUT = re.compile(r"(?<=\S) ")
BUFFER = 64  # strings rustbpe holds at once (about 4M characters), split and counted in parallel
PROGRESS = re.compile(r"\((\d+)/(\d+) merges\)")  # in rustbpe's progress log lines
LOG_TAIL_CHARS = 2000


class BpeCancelled(Exception):
    """Learning was cancelled through its `cancel` event; the child is gone."""


def learn_bpe(
    texts: Iterable[str],
    vocab_size: int,
    pattern: str = DEFAULT_PATTERN,
    on_merges: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
) -> BpeTokenizer:
    """A BPE of `vocab_size` ids (the 256 bytes, the merges, then <|endoftext|>) learned from `texts`.

    A text with fewer distinct pairs than merges asked for gives a smaller vocabulary. `on_merges(done,
    total)` is called as merging goes (from this thread). Raises BpeCancelled once `cancel` is set, and
    TokenizerError when rustbpe is missing or the child fails.
    """
    check_vocab_size(vocab_size)
    check_pattern(pattern)
    if find_spec("rustbpe") is None:
        raise TokenizerUnavailable("learning a BPE needs the rustbpe package (pip install rustbpe)")
    cancel = cancel or threading.Event()
    with tempfile.TemporaryFile() as log:
        try:
            process = subprocess.Popen(module_command(__name__), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=log, env=child_env())
        except OSError as error:
            raise TokenizerError(f"could not start the BPE trainer: {error}") from None
        assert process.stdin is not None and process.stdout is not None
        watcher = threading.Thread(target=_kill_on_cancel, args=(process, cancel), name="bpe-cancel", daemon=True)
        watcher.start()
        ranks = None
        try:
            ranks = _exchange(process.stdin, process.stdout, texts, vocab_size - 1, pattern, on_merges)
        finally:
            if ranks is None and process.poll() is None:  # our error (the text's, a cancel): the child must go
                process.kill()
            process.wait()
            with contextlib.suppress(OSError):  # a dead child's pipe cannot take what was buffered for it
                process.stdin.close()
            process.stdout.close()
        if cancel.is_set():
            raise BpeCancelled("learning the BPE was cancelled")
        if ranks is None:
            log.seek(0)
            tail = log.read().decode("utf-8", "replace")[-LOG_TAIL_CHARS:].strip()
            code = process.returncode
            how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
            raise TokenizerError(f"the BPE trainer {how}" + (f": {tail.splitlines()[-1]}" if tail else ""))
    return BpeTokenizer(ranks, pattern, (ENDOFTEXT,))


def _exchange(
    requests: IO[bytes], replies: IO[bytes], texts: Iterable[str], n_ranks: int, pattern: str,
    on_merges: Callable[[int, int], None] | None,
) -> list[bytes] | None:
    """Send the job and the text, then relay the child's progress; its ranks, or None if it ended without."""
    try:
        pickle.dump((n_ranks, SPLIT_PATTERNS[pattern]), requests)
        for piece in whole_pieces(texts):
            pickle.dump(piece, requests)
        pickle.dump(None, requests)
        requests.close()
    except BrokenPipeError:  # the child died (or was killed by a cancel): what it left says why
        pass
    while True:
        try:
            message = pickle.load(replies)
        except (EOFError, OSError, pickle.UnpicklingError):
            return None
        if message[0] == "merges" and on_merges is not None:
            on_merges(message[1], message[2])
        elif message[0] == "ranks":
            return message[1]


def whole_pieces(texts: Iterable[str], size: int = PIECE_CHARS) -> Iterator[str]:
    """The text again, as strings of about `size` characters cut only at SAFE_CUT places (a text with
    none in 8 x `size` characters is cut anyway, to keep memory bounded). An empty string in `texts` ends
    a document: what came before goes out, so no piece spans two documents."""
    pending = ""
    for text in texts:
        if not text and pending:
            yield pending
            pending = ""
        pending += text
        while len(pending) >= size:
            cut = _last_cut(pending, size)
            if cut is None:
                if len(pending) < 8 * size:
                    break  # wait for more text
                cut = size
            yield pending[:cut]
            pending = pending[cut:]
    if pending:
        yield pending


def _last_cut(text: str, size: int) -> int | None:
    """The last SAFE_CUT place in text[:size], searched backwards from `size`."""
    end = size
    while end > 0:
        space = text.rfind(" ", 0, end)
        if space <= 0:
            return None
        if SAFE_CUT.match(text, space - 1):
            return space
        end = space
    return None


def _kill_on_cancel(process: subprocess.Popen[bytes], cancel: threading.Event) -> None:
    while process.poll() is None:
        if cancel.wait(0.1):
            process.kill()
            return


def _child() -> None:
    """The child process: read the job and the text from stdin, train, write progress and ranks to stdout."""
    requests, replies = sys.stdin.buffer, os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything printed goes to the log (our stderr), never into the replies

    class MergeProgress(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            found = PROGRESS.search(record.getMessage())
            if found:
                pickle.dump(("merges", int(found[1]), int(found[2])), replies)
                replies.flush()

    logger = logging.getLogger("rustbpe")  # rustbpe's Rust `log` records arrive here (pyo3-log)
    logger.setLevel(logging.INFO)
    logger.addHandler(MergeProgress())
    logger.propagate = False
    import rustbpe  # after the logger is set up: pyo3-log reads its level when the module loads

    n_ranks, pat_str = pickle.load(requests)

    def texts() -> Iterator[str]:
        while (text := pickle.load(requests)) is not None:
            yield text

    trainer = rustbpe.Tokenizer()
    trainer.train_from_iterator(texts(), n_ranks, buffer_size=BUFFER, pattern=pat_str)
    ranks = sorted(trainer.get_mergeable_ranks(), key=lambda pair: pair[1])
    pickle.dump(("ranks", [bytes(token) for token, _ in ranks]), replies)
    replies.flush()


if __name__ == "__main__":
    _child()
