"""The package's one error type: a one-line message the CLI prints before exiting non-zero.

Messages reach a terminal, so nothing in them may steer it: `printable` escapes control characters (escape
sequences, bidi overrides, NUL...) and `quote` also caps the length of text taken from a file. Every
`WorkbenchError` message goes through `printable` and `MAX_MESSAGE` on construction.
"""

from __future__ import annotations

import unicodedata

MAX_QUOTED = 80  # characters of file text quoted in a message (a header, a field, a file name from a folder)
MAX_MESSAGE = 2000  # no error line is longer than this, whatever it quotes


_ESCAPED = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}  # control, format, surrogate, private, unassigned, line breaks


def _escape_char(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def printable(text: str) -> str:
    """``text`` with every control / format / unassigned / surrogate character written as ``\\xNN``-style escapes.

    Ordinary letters, digits, punctuation, spaces and symbols in any script are kept; what a terminal could act on
    (ESC, CR, BEL, NUL, the bidi overrides U+202A..U+202E and U+2066..U+2069, lone surrogates) is not.
    """
    text = str(text)
    if text.isprintable():  # the fast path: nothing to escape
        return text
    return "".join(_escape_char(char) if unicodedata.category(char) in _ESCAPED else char for char in text)


def cap(text: str, limit: int) -> str:
    """``text`` cut to at most about ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit} more characters)"


def quote(text, limit: int = MAX_QUOTED) -> str:
    """Text taken from a file (bytes decoded as UTF-8 with replacement), escaped and cut, in single quotes."""
    if isinstance(text, (bytes, bytearray, memoryview)):
        text = bytes(text).decode("utf-8", "replace")
    return f"'{cap(printable(text), limit)}'"


def one_line(message) -> str:
    """``message`` as one printable line of at most MAX_MESSAGE characters (runs of whitespace become one space)."""
    return cap(printable(" ".join(str(message).split())), MAX_MESSAGE)


class WorkbenchError(Exception):
    """A user-facing failure (bad file, bad row, bad parameter) with a one-line message."""

    def __init__(self, message: str):
        super().__init__(one_line(message))
