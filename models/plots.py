"""Loss curves as a picture, drawn with Pillow (no plotting library on the server)."""

from __future__ import annotations

import math

from PIL import Image, ImageDraw

from models.imaging import png_bytes

SERIES = (
    ("loss_d", (214, 39, 40)),
    ("loss_g", (31, 119, 180)),
    ("d_real", (44, 160, 44)),
    ("d_fake", (255, 127, 14)),
)


def loss_curve_png(rows: list[dict], width: int = 640, height: int = 360) -> bytes:
    """Each metric of SERIES against the step, one shared y scale, with a legend and axis labels."""
    margin_left, margin_right, margin_top, margin_bottom = 56, 16, 28, 32
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    plot = (margin_left, margin_top, width - margin_right, height - margin_bottom)
    draw.rectangle(plot, outline=(160, 160, 160))
    finite = [row[name] for row in rows for name, _ in SERIES if math.isfinite(row.get(name, math.nan))]
    if not rows or not finite:
        draw.text((plot[0] + 8, plot[1] + 8), "no metrics yet", fill="black")
        return png_bytes(image)

    first_step, last_step = rows[0]["step"], max(rows[-1]["step"], rows[0]["step"] + 1)
    low, high = min(0.0, *finite), max(finite)
    high = high if high > low else low + 1

    def point(step: float, value: float) -> tuple[float, float]:
        x = plot[0] + (step - first_step) / (last_step - first_step) * (plot[2] - plot[0])
        y = plot[3] - (value - low) / (high - low) * (plot[3] - plot[1])
        return x, y

    for name, colour in SERIES:
        line = [point(row["step"], row[name]) for row in rows if math.isfinite(row.get(name, math.nan))]
        if len(line) > 1:
            draw.line(line, fill=colour, width=2)
    for index, (name, colour) in enumerate(SERIES):
        draw.text((margin_left + index * 90, 8), name, fill=colour)
    draw.text((4, plot[1]), f"{high:.2f}", fill="black")
    draw.text((4, plot[3] - 10), f"{low:.2f}", fill="black")
    draw.text((plot[0], plot[3] + 8), f"step {first_step}", fill="black")
    draw.text((plot[2] - 70, plot[3] + 8), f"step {last_step}", fill="black")
    return png_bytes(image)
