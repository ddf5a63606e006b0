"""Names from the inputs made safe to show on a terminal.

A file or ZIP member name may hold any character: a newline splits a summary line,
an escape sequence can clear or retitle the user's terminal, a bidi override can
disguise a name, and bytes that are not UTF-8 (kept as surrogates by Python) cannot
even be printed. Such characters are shown as Python-style escapes; JSON output
keeps the exact names.
"""

from __future__ import annotations

import unicodedata

#: Unicode categories never shown as they are: controls, format characters (bidi
#: overrides, zero-width), line and paragraph separators, surrogates, unassigned.
_UNSAFE = {"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"}
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str) -> str:
    """``text`` with every character that could act on a terminal written as an escape."""
    if text.isprintable():
        return text
    return "".join(_escape(c) if unicodedata.category(c) in _UNSAFE else c for c in text)


def _escape(char: str) -> str:
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:
        return f"\\x{code - 0xDC00:02x}"  # an undecodable byte, kept by surrogateescape
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
