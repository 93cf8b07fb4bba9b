"""What a stored figure says about itself: a PNG's pixel size, its resolution (the ``pHYs``
chunk) and its text chunks (``tEXt``), read with the standard library alone."""

from __future__ import annotations

import struct

SMALLEST_FONT_KEY = "Smallest font (pt)"  # as figures/style.py writes it


def png_facts(data: bytes) -> tuple[int, float | None, dict[str, str]]:
    """``(width in pixels, dots per inch or None, {tEXt key: value})`` of a PNG file's bytes."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    width, dpi, text, pos = 0, None, {}, 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width = struct.unpack(">I", body[:4])[0]
        elif kind == b"pHYs":
            per_unit, _, unit = struct.unpack(">IIB", body)
            dpi = per_unit * 0.0254 if unit == 1 else None  # unit 1: per metre
        elif kind == b"tEXt":
            key, _, value = body.partition(b"\0")
            text[key.decode("latin-1")] = value.decode("latin-1")
        pos += 12 + length
    return width, dpi, text


def smallest_text_css_px(data: bytes, shown_width_css_px: float) -> float:
    """The height in CSS px of the smallest text of a figure PNG shown ``shown_width_css_px`` wide:
    its smallest font (points, recorded in the PNG) times its pixels per point, times the scale
    from the PNG's pixels to the width it is shown at."""
    width, dpi, text = png_facts(data)
    assert dpi, "the PNG records no resolution (pHYs chunk)"
    assert SMALLEST_FONT_KEY in text, (
        "the PNG does not record its smallest font: draw figures through "
        "regnet_tutorial.figures.style (use_tutorial_style), which shows them as 2x PNGs that do"
    )
    return float(text[SMALLEST_FONT_KEY]) / 72 * dpi * shown_width_css_px / width
