"""A line chart written as a PNG with zlib and struct only (no plotting dependency).

No text is drawn: the caller's printout and the docs say what the axes are. Horizontal grid lines
fall on every whole `grid` of the value axis; markers are short vertical ticks along the bottom.
"""
from __future__ import annotations

import itertools
import math
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

WIDTH, HEIGHT, MARGIN = 900, 420, 30
WHITE, GRID, AXIS = (255, 255, 255), (225, 225, 225), (60, 60, 60)


@dataclass
class Series:
    values: list[float]
    colour: tuple[int, int, int]


class Canvas:
    def __init__(self, width: int, height: int):
        self.width, self.height = width, height
        self.pixels = bytearray(bytes(WHITE) * (width * height))

    def dot(self, x: int, y: int, colour, size: int = 1) -> None:
        for dx in range(size):
            for dy in range(size):
                px, py = x + dx, y + dy
                if 0 <= px < self.width and 0 <= py < self.height:
                    at = 3 * (py * self.width + px)
                    self.pixels[at:at + 3] = bytes(colour)

    def line(self, x0: int, y0: int, x1: int, y1: int, colour, size: int = 1) -> None:
        steps = max(abs(x1 - x0), abs(y1 - y0), 1)
        for i in range(steps + 1):
            self.dot(round(x0 + (x1 - x0) * i / steps), round(y0 + (y1 - y0) * i / steps), colour, size)

    def png(self) -> bytes:
        rows = b"".join(b"\x00" + bytes(self.pixels[3 * y * self.width:3 * (y + 1) * self.width])
                        for y in range(self.height))

        def chunk(kind: bytes, data: bytes) -> bytes:
            return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

        header = struct.pack(">IIBBBBB", self.width, self.height, 8, 2, 0, 0, 0)
        return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")


def line_chart(path: Path, xs: list[float], series: list[Series], markers: list[tuple[float, tuple]],
               low: float, high: float, grid: float = 1.0) -> None:
    """Writes the chart of `series` (one value per x) over `xs`, with `markers` [(x, colour)]."""
    canvas = Canvas(WIDTH, HEIGHT)
    left, right, top, bottom = MARGIN, WIDTH - MARGIN, MARGIN, HEIGHT - MARGIN
    x_low, x_high = 0.0, max(xs) if xs else 1.0

    def px(x: float) -> int:
        return round(left + (x - x_low) / ((x_high - x_low) or 1) * (right - left))

    def py(value: float) -> int:
        return round(bottom - (value - low) / ((high - low) or 1) * (bottom - top))

    level = math.ceil(low / grid) * grid
    while level <= high:
        canvas.line(left, py(level), right, py(level), GRID)
        level += grid
    canvas.line(left, bottom, right, bottom, AXIS)
    canvas.line(left, top, left, bottom, AXIS)
    for day in range(int(x_high) + 1):
        canvas.line(px(day), bottom, px(day), bottom + 4, AXIS)
    for x, colour in markers:
        canvas.line(px(x), bottom - 12, px(x), bottom - 2, colour, 2)
    for one in series:
        points = [(px(x), py(v)) for x, v in zip(xs, one.values) if not math.isnan(v)]
        for (x0, y0), (x1, y1) in itertools.pairwise(points):
            canvas.line(x0, y0, x1, y1, one.colour, 2)
    path.write_bytes(canvas.png())
