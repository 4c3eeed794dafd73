"""Text from hosts, made safe to show on a terminal.

A host's stderr or `status --json` strings can hold escape sequences that
would recolour, retitle or rewrite an operator's terminal. Everything a host
says passes through `clean` before it reaches a message or a report.
"""

from __future__ import annotations

import re
import unicodedata

# ESC [ ... final (CSI), ESC ] ... BEL or ESC \ (OSC), ESC P/X/^/_ ... ESC \ (DCS and friends),
# any other ESC + one character; then the remaining C0 controls except tab and newline, DEL,
# and the C1 controls (0x80-0x9f), which some terminals also obey.
_SEQUENCES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"
    r"|\x1b[@-_]?"
)
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean(text: str) -> str:
    """`text` without terminal control sequences; tabs and newlines stay."""
    return _CONTROLS.sub("", _SEQUENCES.sub("", text.replace("\r\n", "\n")))


# Characters a terminal would act on or hide, beyond the C0/C1 controls: format characters
# (Cf: bidi overrides and isolates, zero-width joiners, soft hyphens), line and paragraph
# separators (Zl, Zp), and the controls themselves (Cc, newline and carriage return included).
_HIDDEN = frozenset({"Cc", "Cf", "Zl", "Zp"})
LIMIT = 400  # characters of one field of a report; a host's text beyond that is cut


def shown(text: str, limit: int = LIMIT) -> str:
    """`text` as one line of data: newlines, carriage returns and tabs escaped (`\\n`, `\\r`,
    `\\t`), every other control, format or separator character shown as its code point
    (`\\x1b`, `\\u202e`), and cut after `limit` characters, saying how many were left out.

    What a host prints can then never start a line of the report, reorder it (bidi
    overrides) or hide part of it."""
    out: list[str] = []
    for char in text[:limit]:
        if unicodedata.category(char) not in _HIDDEN:
            out.append(char)
        elif char in _NAMED:
            out.append(_NAMED[char])
        else:
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
    if len(text) > limit:
        out.append(f"... ({len(text) - limit} more characters)")
    return "".join(out)


_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
