"""Text for fixed-width terminal tables (pure): journal text with its control and bidi
characters made visible, its width in terminal cells, and word wrapping to a width.

The wrapping rule is the one the replay table was first drawn with (rich's: words move
whole to the next line, a word longer than the line is folded, whitespace past the
width is dropped), so those tables read the same, byte for byte.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from itertools import pairwise

_WORD = re.compile(r"\s*\S+\s*")
_TRAILING_SPACE = re.compile(r"\s*$")
_WIDE = frozenset(("W", "F"))
_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def visible(text: str) -> str:
    """`text` with every non-printable character (C0/C1 controls, DEL, bidi overrides and
    isolates, zero-width and other format characters, line separators, non-ASCII spaces)
    written as a Python escape (`\\n`, `\\x1b`, `\\u202e`), so journal text can neither move the
    cursor, recolour, reorder nor break a line of the terminal it is printed on."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else _escape(char) for char in text)


def _escape(char: str) -> str:
    short = _SHORT_ESCAPES.get(char)
    if short is not None:
        return short
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def cell_width(text: str) -> int:
    """Terminal cells `text` takes (printable text: East Asian wide and full-width
    characters take two, combining marks none, everything else one)."""
    if text.isascii():
        return len(text)
    return _unicode_width(text)


@lru_cache(maxsize=4096)
def _unicode_width(text: str) -> int:
    return sum(_char_width(char) for char in text)


def _char_width(char: str) -> int:
    if unicodedata.combining(char):
        return 0
    return 2 if unicodedata.east_asian_width(char) in _WIDE else 1


def fit(text: str, width: int) -> str:
    """`text` cut to at most `width` cells, then padded with spaces to exactly `width`."""
    if text.isascii():
        return text[:width].ljust(width)
    size = 0
    for index, char in enumerate(text):
        char_size = _char_width(char)
        if size + char_size > width:
            return text[:index] + " " * (width - size)
        size += char_size
    return text + " " * (width - size)


def wrap(text: str, width: int) -> list[str]:
    """`text` (one line, printable) as lines of exactly `width` cells (`width` >= 1)."""
    if cell_width(text) <= width:
        return [fit(text, width)]
    starts = [0, *_breaks(text, width), len(text)]
    lines = []
    for start, end in pairwise(starts):
        line = text[start:end]
        excess = cell_width(line) - width
        if excess > 0:  # drop trailing whitespace past the width first
            spaces = len(_TRAILING_SPACE.search(line).group(0))  # type: ignore[union-attr]
            line = line[: len(line) - min(spaces, excess)]
        lines.append(fit(line, width))
    return lines


def _breaks(text: str, width: int) -> list[int]:
    """The offsets at which `text` is broken into lines of `width` cells."""
    breaks: list[int] = []
    offset = 0
    for match in _WORD.finditer(text):
        start, word = match.start(), match.group(0)
        word_size = cell_width(word.rstrip())
        if width - offset >= word_size:
            offset += cell_width(word)
        elif word_size > width:  # longer than a line: fold it
            pieces = _chop(word, width)
            for piece in pieces[:-1]:
                if start:
                    breaks.append(start)
                start += len(piece)
            if start:
                breaks.append(start)
            offset = cell_width(pieces[-1])
        elif offset and start:
            breaks.append(start)
            offset = cell_width(word)
    return breaks


def _chop(word: str, width: int) -> list[str]:
    """`word` in pieces of at most `width` cells (a wide character never split)."""
    if word.isascii():
        return [word[index : index + width] for index in range(0, len(word), width)]
    pieces: list[str] = []
    begin = size = 0
    for index, char in enumerate(word):
        char_size = _char_width(char)
        if size + char_size > width:
            pieces.append(word[begin:index])
            begin, size = index, 0
        size += char_size
    if size:
        pieces.append(word[begin:])
    return pieces
