"""Text laid out for a terminal: a Chinese character takes two columns."""

from __future__ import annotations

import unicodedata


def width(text: str) -> int:
    """Columns the text takes on screen, counting a wide (Chinese) character as two."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def pad(text: str, columns: int, right: bool = False) -> str:
    """Pad to a display width; right-aligned when `right`."""
    fill = " " * max(0, columns - width(text))
    return fill + text if right else text + fill


def table(headers: list[str], rows: list[list[str]], right: list[bool]) -> str:
    """A table for people: headers, a rule, then the rows; columns aligned by display width
    (those flagged in `right` to the right), a cell's further lines below it."""
    cells = [[v.rstrip("\n").split("\n") for v in row] for row in [headers, *rows]]
    widths = [max(width(line) for row in cells for line in row[c]) for c in range(len(headers))]
    out = []
    for i, row in enumerate(cells):
        for k in range(max(len(cell) for cell in row)):
            parts = [
                pad(cell[k] if k < len(cell) else "", w, right[c])
                for c, (cell, w) in enumerate(zip(row, widths, strict=True))
            ]
            out.append("  ".join(parts).rstrip())
        if i == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out) + "\n"
