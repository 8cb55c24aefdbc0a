"""Log lines as plain text: escape sequences removed, control characters made visible, bounded.

A job's log is untrusted text. Whatever it holds (HTML, ANSI colour codes, carriage-return
progress bars), the panels show it as the characters it is, never as markup.
"""

from __future__ import annotations

import html
import re
from collections import deque
from collections.abc import Iterable

# CSI (colours, cursor moves), OSC (titles, hyperlinks) and two-character escapes.
_ESCAPES = re.compile(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[@-Z\\-_])")
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _visible(match: re.Match[str]) -> str:
    code = ord(match.group())
    # Unicode "Control Pictures" (U+2400...) show the character instead of acting on it.
    return "\u2421" if code == 0x7F else chr(0x2400 + code)


def clean_line(line: str) -> str:
    """One log line as plain text.

    Escape sequences are dropped; after a carriage return only the last redraw is kept (what a
    terminal would show of a tqdm bar); other control characters become visible symbols.
    """
    line = _ESCAPES.sub("", line)
    if "\r" in line:
        redraws = [part for part in line.split("\r") if part]
        line = redraws[-1] if redraws else ""
    return _CONTROLS.sub(_visible, line)


class LogBuffer:
    """The last ``max_lines`` lines of a log, and how many lines there were in all."""

    def __init__(self, max_lines: int = 200) -> None:
        if max_lines < 1:
            raise ValueError(f"max_lines must be at least 1, not {max_lines}")
        self.lines: deque[str] = deque(maxlen=max_lines)
        self.total = 0

    def append(self, line: str) -> None:
        """Add one (already cleaned) line, dropping the oldest when full."""
        self.lines.append(line)
        self.total += 1

    def extend(self, lines: Iterable[str]) -> None:
        """Add several lines."""
        for line in lines:
            self.append(line)

    @property
    def dropped(self) -> int:
        """Lines no longer kept."""
        return self.total - len(self.lines)


def log_html(lines: Iterable[str], *, dropped: int = 0, height: int = 240, empty: str = "") -> str:
    """A scrolling ``<pre>`` of ``lines``, HTML-escaped, that stays scrolled to its end.

    ``column-reverse`` anchors the scroll position at the bottom, so new lines stay in view
    without any script (widget HTML runs none).
    """
    text = "\n".join(lines)
    note = ""
    if dropped:
        note = (
            f'<span class="jr-log-dropped" style="opacity:0.6">… {dropped:,} earlier '
            f"line{'s' if dropped != 1 else ''} not shown (Show all)</span>\n"
        )
    if not text:
        text, style = empty, "opacity:0.6"
    else:
        style = ""
    return (
        f'<div class="jr-log" style="max-height:{height}px;overflow:auto;display:flex;'
        "flex-direction:column-reverse;border:1px solid var(--jp-border-color2,#ddd);"
        'background:var(--jp-layout-color1,#fff)">'
        # flex:none: a pre that shrank to the box would scroll itself, from the top.
        '<pre style="flex:none;overflow:visible;margin:0;padding:4px;white-space:pre-wrap;'
        "word-break:break-all;"
        'font-size:var(--jp-code-font-size,12px);line-height:1.35">'
        f'{note}<span style="{style}">{html.escape(text)}</span></pre></div>'
    )
