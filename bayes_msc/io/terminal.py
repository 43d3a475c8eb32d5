"""Text for the terminal: what a register or spec says is shown, never obeyed.

A label in a user's register can hold an ANSI escape sequence (clear the screen, print a fake
"ALL CHECKS PASSED"), a right-to-left override or a line separator. Everything the CLI prints
passes through :func:`printable`, which writes such characters as visible escapes (``\\x1b``,
``\\u202e``); ordinary text, line breaks and tabs are untouched.
"""

from __future__ import annotations

import unicodedata

# Cc: C0/C1 controls (ESC, BEL, U+0085); Cf: format characters (bidi overrides, zero-width);
# Zl/Zp: U+2028/U+2029, which some terminals treat as line breaks.
_UNSAFE_CATEGORIES = {"Cc", "Cf", "Zl", "Zp", "Co", "Cs"}
_KEEP = {"\n", "\t"}


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text: str) -> str:
    """``text`` with every control or format character written as a visible escape."""
    if text.isprintable():  # the common case, fast
        return text
    return "".join(_escape(ch) if ch not in _KEEP and unicodedata.category(ch) in _UNSAFE_CATEGORIES else ch
                   for ch in text)


def one_line(text) -> str:
    """A value from a register (a study's label) for one line of output: as :func:`printable`,
    and line breaks, carriage returns and tabs escaped too, so a label cannot start a line of
    its own that looks like the program's output."""
    return printable(str(text)).replace("\r", "\\r").replace("\n", "\\n").replace("\t", "\\t")
