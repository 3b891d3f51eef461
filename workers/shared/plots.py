"""Training curves as pictures, drawn with Pillow (no plotting library on the server): the losses, and
the quality figures (FID, KID) of a model's evaluations with its best checkpoint marked."""

from __future__ import annotations

import math
from collections.abc import Sequence

from PIL import Image, ImageDraw

from workers.shared.imaging import png_bytes

Series = tuple[str, tuple[int, int, int]]  # a row key and its colour

LOSS_SERIES: tuple[Series, ...] = (
    ("loss_d", (214, 39, 40)),
    ("loss_g", (31, 119, 180)),
    ("d_real", (44, 160, 44)),
    ("d_fake", (255, 127, 14)),
)
FID_SERIES: tuple[Series, ...] = (("fid", (31, 119, 180)),)
KID_SERIES: tuple[Series, ...] = (("kid", (214, 39, 40)),)
BEST_COLOUR = (44, 160, 44)


def loss_curve_png(rows: list[dict], width: int = 640, height: int = 360) -> bytes:
    """Each metric of LOSS_SERIES against the step, one shared y scale, with a legend and axis labels."""
    image = Image.new("RGB", (width, height), "white")
    _panel(ImageDraw.Draw(image), (0, 0, width, height), rows, LOSS_SERIES, "no metrics yet")
    return png_bytes(image)


def quality_curve_png(rows: list[dict], best_step: int | None, width: int = 640, height: int = 480) -> bytes:
    """FID (top) and KID (bottom) against the step for `rows` of one sample count; the best checkpoint's
    step is marked with a vertical line in both."""
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    empty = "no evaluations yet"
    _panel(draw, (0, 0, width, height // 2), rows, FID_SERIES, empty, best_step)
    _panel(draw, (0, height // 2, width, height), rows, KID_SERIES, empty, best_step)
    return png_bytes(image)


def _panel(
    draw: ImageDraw.ImageDraw,
    box: tuple[int, int, int, int],
    rows: list[dict],
    series: Sequence[Series],
    empty_text: str,
    marked_step: int | None = None,
) -> None:
    left, top, right, bottom = box
    plot = (left + 56, top + 28, right - 16, bottom - 32)
    draw.rectangle(plot, outline=(160, 160, 160))
    finite = [row[name] for row in rows for name, _ in series if _finite(row.get(name))]
    if not rows or not finite:
        draw.text((plot[0] + 8, plot[1] + 8), empty_text, fill="black")
        return

    first_step, last_step = rows[0]["step"], max(rows[-1]["step"], rows[0]["step"] + 1)
    low, high = min(0.0, *finite), max(finite)
    high = high if high > low else low + 1

    def point(step: float, value: float) -> tuple[float, float]:
        x = plot[0] + (step - first_step) / (last_step - first_step) * (plot[2] - plot[0])
        y = plot[3] - (value - low) / (high - low) * (plot[3] - plot[1])
        return x, y

    if marked_step is not None and first_step <= marked_step <= last_step:
        x = point(marked_step, low)[0]
        draw.line([(x, plot[1]), (x, plot[3])], fill=BEST_COLOUR, width=1)
        draw.text((min(x + 4, plot[2] - 90), plot[1] + 4), f"best: {marked_step}", fill=BEST_COLOUR)
    for name, colour in series:
        line = [point(row["step"], row[name]) for row in rows if _finite(row.get(name))]
        if len(line) > 1:
            draw.line(line, fill=colour, width=2)
        for x, y in line:
            draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=colour)
    for index, (name, colour) in enumerate(series):
        draw.text((plot[0] + index * 90, top + 8), name, fill=colour)
    draw.text((left + 4, plot[1]), _label(high), fill="black")
    draw.text((left + 4, plot[3] - 10), _label(low), fill="black")
    draw.text((plot[0], plot[3] + 8), f"step {first_step}", fill="black")
    draw.text((plot[2] - 70, plot[3] + 8), f"step {last_step}", fill="black")


def _finite(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def _label(value: float) -> str:
    return f"{value:.2f}" if abs(value) >= 0.01 or value == 0 else f"{value:.4f}"
