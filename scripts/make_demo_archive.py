"""Write a small labelled image archive for trying ganforge: `circles/` and `squares/` of random colours,
sizes and places, 64×64 PNGs. Usage: python scripts/make_demo_archive.py shapes.zip [--per-class 500]"""

from __future__ import annotations

import argparse
import io
import random
import zipfile

from PIL import Image, ImageDraw


def draw_shape(kind: str, rng: random.Random) -> bytes:
    image = Image.new("RGB", (64, 64), tuple(rng.randint(200, 255) for _ in range(3)))
    radius = rng.randint(10, 22)
    x, y = rng.randint(radius, 63 - radius), rng.randint(radius, 63 - radius)
    colour = tuple(rng.randint(0, 160) for _ in range(3))
    box = (x - radius, y - radius, x + radius, y + radius)
    (ImageDraw.Draw(image).ellipse if kind == "circles" else ImageDraw.Draw(image).rectangle)(
        box, fill=colour
    )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("output")
    parser.add_argument("--per-class", type=int, default=500)
    args = parser.parse_args()
    rng = random.Random(0)
    with zipfile.ZipFile(args.output, "w") as archive:
        for kind in ("circles", "squares"):
            for index in range(args.per_class):
                archive.writestr(f"shapes/{kind}/{index:04d}.png", draw_shape(kind, rng))
    print(f"wrote {args.output}: {2 * args.per_class} images in circles/ and squares/")


if __name__ == "__main__":
    main()
