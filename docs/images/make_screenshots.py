"""Screenshots of the door TUI (`tessera-scan run`) for the docs: SVG from textual, PNG beside it.

Run from the repository root: `.venv/bin/python docs/images/make_screenshots.py`.

The screens are real: the real `Door` opened offline on a throwaway store loaded with the test
world of tests/scanner_client/helpers.py (signed tokens, Europe/Paris), its verdicts reaching the
app as at a door. The clock is fixed; ticket ids and codes are drawn afresh on each run.

PNGs are drawn cell by cell with Pillow and DejaVu Sans Mono from the same screen the SVG shows
(no browser needed); full blocks are filled rectangles, so the verdict glyphs have no gaps.
"""

from __future__ import annotations

import asyncio
import io
import math
import sys
import tempfile
from datetime import timedelta
from pathlib import Path

import msgspec
from PIL import Image, ImageDraw, ImageFont
from rich.cells import cell_len
from rich.color import Color
from rich.console import Console
from rich.segment import Segment
from rich.terminal_theme import DEFAULT_TERMINAL_THEME

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from scanner_client.door import Door, DoorOptions  # noqa: E402
from scanner_client.events import DoorEvent  # noqa: E402
from scanner_client.tui import ScannerApp  # noqa: E402
from tests.scanner_client.helpers import T0, make_world, paired_home  # noqa: E402

OUT = Path(__file__).resolve().parent
SIZE = (120, 36)
NAMES = ["Camille Martin", "Jonas Weber", "Léa Moreau", "Sam Okafor", "Inès Duarte"]
FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONT_SIZE = 16
# Block elements as fractions of a cell (left, top, right, bottom).
_BLOCKS = {
    "█": (0, 0, 1, 1),
    "▀": (0, 0, 1, 0.5),
    "▄": (0, 0.5, 1, 1),
    "▌": (0, 0, 0.5, 1),
    "▐": (0.5, 0, 1, 1),
    "▊": (0, 0, 0.75, 1),
    "▎": (0, 0, 0.25, 1),
}


class _Clock:
    def __init__(self) -> None:
        self.now = (T0 + timedelta(hours=1, minutes=42)).timestamp()

    def __call__(self) -> float:
        return self.now


def save_png(app: ScannerApp, path: Path) -> None:
    """Draw the app's current screen into `path`, one monospace cell at a time."""
    width, height = app.size
    console = Console(
        width=width,
        height=height,
        file=io.StringIO(),
        force_terminal=True,
        color_system="truecolor",
        record=True,
        legacy_windows=False,
        safe_box=False,
    )
    # The same render textual's export_screenshot turns into SVG.
    console.print(
        app.screen._compositor.render_update(
            full=True, screen_stack=app._background_screens, simplify=True
        )
    )
    lines = list(Segment.split_and_crop_lines(console._record_buffer, width, pad=True))
    regular = ImageFont.truetype(str(FONT_DIR / "DejaVuSansMono.ttf"), FONT_SIZE)
    bold = ImageFont.truetype(str(FONT_DIR / "DejaVuSansMono-Bold.ttf"), FONT_SIZE)
    cell_w = regular.getlength("M")
    cell_h = math.ceil(FONT_SIZE * 1.3)
    theme = DEFAULT_TERMINAL_THEME
    image = Image.new(
        "RGB", (math.ceil(cell_w * width), cell_h * height), theme.background_color.rgb
    )
    draw = ImageDraw.Draw(image)
    for y, line in enumerate(lines[:height]):
        x = 0
        for segment in line:
            if segment.control:
                continue
            style = segment.style
            fg = _rgb(style.color if style else None, theme.foreground_color.rgb, True)
            bg = _rgb(style.bgcolor if style else None, theme.background_color.rgb, False)
            if style and style.reverse:
                fg, bg = bg, fg
            if style and style.dim:
                fg = tuple((f + b) // 2 for f, b in zip(fg, bg, strict=True))
            font = bold if style and style.bold else regular
            for char in segment.text:
                cells = cell_len(char) or 1
                box = (x * cell_w, y * cell_h, (x + cells) * cell_w, (y + 1) * cell_h)
                draw.rectangle(box, fill=bg)
                if char in _BLOCKS:  # as rectangles: the font's blocks leave gaps between rows
                    left, top, right, bottom = _BLOCKS[char]
                    draw.rectangle(
                        (
                            box[0] + (box[2] - box[0]) * left,
                            box[1] + (box[3] - box[1]) * top,
                            box[0] + (box[2] - box[0]) * right - 1,
                            box[1] + (box[3] - box[1]) * bottom - 1,
                        ),
                        fill=fg,
                    )
                elif char != " ":
                    draw.text((box[0], box[1] + 2), char, font=font, fill=fg)
                x += cells
    image.save(path)


def _rgb(color: Color | None, default: tuple[int, int, int], fg: bool) -> tuple[int, int, int]:
    if color is None or color.is_default:
        return default
    triplet = color.get_truecolor(DEFAULT_TERMINAL_THEME, foreground=fg)
    return (triplet.red, triplet.green, triplet.blue)


async def _shoot(app: ScannerApp, name: str) -> None:
    (OUT / f"{name}.svg").write_text(app.export_screenshot(title="tessera-scan"), "utf-8")
    save_png(app, OUT / f"{name}.png")
    print(f"docs/images/{name}.svg and .png")


async def main() -> None:
    world = make_world(5, persons=2)
    tickets = [
        msgspec.structs.replace(ticket, holder_name=name)
        for ticket, name in zip(world.snapshot.tickets, NAMES, strict=True)
    ]
    tickets[2] = msgspec.structs.replace(tickets[2], status="revoked")
    world.snapshot = msgspec.structs.replace(
        world.snapshot, tickets=tickets, revoked=[tickets[2].id]
    )
    clock = _Clock()
    with tempfile.TemporaryDirectory() as tmp:
        home = paired_home(Path(tmp), world)
        app: ScannerApp | None = None

        def on_event(event: DoorEvent) -> None:
            if app is not None:
                app.handle_event(event)

        door = Door(home, DoorOptions(), on_event=on_event, clock=clock)
        app = ScannerApp(door, clock=clock, bell=False, green_seconds=3600)
        await door.start(connect=False)
        try:
            async with app.run_test(size=SIZE) as pilot:
                for n in (1, 3):  # two guests already in, so the counters show something
                    door.scan(world.token(n))
                    clock.now += 20
                await pilot.press("escape")
                await pilot.pause()
                await _shoot(app, "tui-offline-ready")
                door.scan(world.token(0))
                await pilot.pause()
                await _shoot(app, "tui-green-accepted")
                clock.now += 95
                door.scan(world.token(0))
                await pilot.pause()
                await _shoot(app, "tui-amber-already-checked-in")
                clock.now += 30
                door.scan(world.token(2))
                await pilot.pause()
                await _shoot(app, "tui-red-revoked")
                await pilot.press("escape", "f4", *"Cam")
                await pilot.pause()
                await _shoot(app, "tui-search")
        finally:
            await door.stop()


if __name__ == "__main__":
    asyncio.run(main())
