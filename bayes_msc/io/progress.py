"""One live progress line on a terminal: which step a long command is in.

A first fit of a model structure compiles for seconds to minutes; refits and simulations run
for longer. On a terminal the command line shows one line on stderr, rewritten in place
("compiling the model for a new structure ...", "sampling", "refits 3/11"), and removed before
any result is printed. When stderr is not a terminal (a pipe, a log file, a test) or under
``--quiet`` nothing is written.

The steps come from the package's log records (the sampling engine logs each compile and each
sampling) through :class:`ProgressHandler`, and from counters the command line passes to long
runs (:meth:`ProgressLine.counter`).
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

COMPILING = "compiling the model for a new structure (first fit of this structure; cached for later runs)"
SAMPLING = "sampling"
_CLEAR = "\r\x1b[K"


class ProgressLine:
    """A single status line on ``stream``, written only when ``enabled``."""

    def __init__(self, stream: TextIO | None = None, enabled: bool | None = None):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = is_terminal(self.stream) if enabled is None else enabled
        self.shown = False

    def step(self, text: str) -> None:
        if not self.enabled:
            return
        self.stream.write(f"{_CLEAR}bayes_msc: {text} ...")
        self.stream.flush()
        self.shown = True

    def clear(self) -> None:
        """Remove the line (before a result, a warning or an error is printed)."""
        if self.shown:
            self.stream.write(_CLEAR)
            self.stream.flush()
            self.shown = False

    def counter(self, what: str):
        """A ``progress(done, total, failed, eta)`` callback (:func:`bayes_msc.engine.distributed.run_tasks`)
        that shows "WHAT done/total"."""

        def report(done: int, total: int, failed: int = 0, eta: float = float("nan")) -> None:
            failed_text = f", {failed} failed" if failed else ""
            eta_text = f", about {eta:.0f} s left" if eta == eta and done + failed < total else ""
            self.step(f"{what} {done}/{total}{failed_text}{eta_text}")

        return report


def is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class ProgressHandler(logging.Handler):
    """Turns the sampling engine's log records into steps of a :class:`ProgressLine`."""

    def __init__(self, line: ProgressLine):
        super().__init__(logging.INFO)
        self.line = line

    def emit(self, record: logging.LogRecord) -> None:
        message = str(record.msg)
        if message.startswith("compiling the"):
            self.line.step(COMPILING)
        elif message.startswith("compiled in") or message.startswith("sampling"):
            self.line.step(SAMPLING)


class ClearingStreamHandler(logging.StreamHandler):
    """A log handler that removes the progress line before it writes a message."""

    def __init__(self, line: ProgressLine, stream=None):
        super().__init__(stream)
        self.line = line

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= self.level:
            self.line.clear()
        super().emit(record)
