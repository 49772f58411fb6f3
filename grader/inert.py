"""Text from a submission, made inert for wherever it is shown (trusted side, renderers' edge).

A student controls exception messages, printed output and file names. Shown as they are, control
characters act: ESC starts sequences that clear an instructor's terminal, set its window title or
move its cursor; a carriage return or backspace overwrites what was printed before; bidirectional
overrides reorder what is read; and XML 1.0 cannot hold most C0 characters at all. `inert` shows
each of them as its escape (\\x1b, \\u202e) and keeps newlines and tabs. Every renderer applies it
to every string a submission may have written (markup is escaped besides, per format).
"""
from __future__ import annotations

import re

CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff\ufff9-\ufffb]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def inert(text: object) -> str:
    return CONTROL.sub(_escape, str(text))
