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


# Chinese punctuation: a line may break after a closing mark and before an opening one, never
# the other way round; text beside it takes no space
_CLOSING = "，。、；：？！）》」』〕】”’"
_OPENING = "（《「『〔【“‘"
_TIGHT = _CLOSING + _OPENING + "—"


def _breaks(a: str, b: str) -> bool:
    """Whether a line may break between two characters written without a space."""
    if b in _CLOSING or a in _OPENING or b in ",.;:?!)]>":
        return False
    return a in _CLOSING or b in _OPENING or (width(a) == 2 and width(b) == 2)


def wrap(text: str, columns: int) -> list[str]:
    """Lines of at most `columns` display columns: breaks at spaces, between Chinese
    characters and beside Chinese punctuation; never inside a Latin word, a number or a path."""
    pieces: list[tuple[str, bool]] = []  # (unbreakable text, a space before it)
    for word in text.split():
        start = 0
        for k in range(1, len(word)):
            if _breaks(word[k - 1], word[k]):
                pieces.append((word[start:k], start == 0))
                start = k
        pieces.append((word[start:], start == 0))
    lines: list[str] = []
    line = ""
    for piece, spaced in pieces:
        joined = f"{line} {piece}" if line and spaced else line + piece
        if line and width(joined) > columns:
            lines.append(line)
            joined = piece
        line = joined
    if line:
        lines.append(line)
    return lines


def join_lines(lines: list[str]) -> str:
    """Lines of one paragraph as one text: a space where a Latin word meets a Chinese one or
    another Latin word (Chinese text spaces its Latin words), none beside Chinese punctuation."""
    text = ""
    for line in (line.strip() for line in lines):
        a, b = text[-1:], line[:1]
        tight = a in _TIGHT or b in _TIGHT or (width(a) == 2 and width(b) == 2)
        text = line if not text else text + ("" if tight else " ") + line
    return text
