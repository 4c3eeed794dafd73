"""Text from hosts, made safe to show on a terminal.

A host's stderr or `status --json` strings can hold escape sequences that
would recolour, retitle or rewrite an operator's terminal. Everything a host
says passes through `clean` before it reaches a message or a report.
"""

from __future__ import annotations

import re

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
