"""Camera input: QR codes of real Tessera tickets read from photographed-like frames.

Every frame here is made from a ticket `ticket_renderer` really renders (its QR PNG, or its PDF
page rasterised by pdfium) carrying a real signed token, then degraded the way a webcam sees it:
smaller, turned, tilted, blurred, darker, noisy, on a larger background. The decoded text must be
the token exactly. The input path is tested through `read_codes` with recorded frames and, for
OpenCV's own capture path, with a video file; there is no webcam on the test machine.
"""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path

import cv2
import numpy as np
import pypdfium2 as pdfium
import pytest
import segno
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from numpy.typing import NDArray
from PIL import Image, ImageFilter

from protocol.ids import new_id
from protocol.token import TicketClaims, new_key_id, sign_ticket_token
from scanner_client.camera import (
    REAPPEAR_AFTER,
    CameraUnavailable,
    Frame,
    ImageFrames,
    OpenCVCamera,
    decode_frame,
    read_codes,
)
from tests.ticket_renderer.factories import ticket_view
from ticket_renderer import qr_png, render_ticket_pdf

FRAME_SIZE = (1280, 720)
BACKGROUND = (118, 128, 140)  # a grey-blue desk, not the white of the paper


def new_token() -> str:
    """A genuine ticket token, signed by a key made for this test run."""
    claims = TicketClaims(jti=new_id(16), evt=new_id(10), ver=1)
    return sign_ticket_token(claims, Ed25519PrivateKey.generate(), new_key_id())


TOKEN = new_token()
OTHER_TOKEN = new_token()


def qr_picture(token: str) -> Image.Image:
    """The ticket's QR as the guest page and the mail show it (8 px a module)."""
    return Image.open(io.BytesIO(qr_png(token))).convert("RGB")


def pdf_picture(token: str, dpi: int = 100) -> Image.Image:
    """The printed ticket: the PDF page rasterised, cropped to the ticket block at its top."""
    document = pdfium.PdfDocument(render_ticket_pdf(ticket_view(token=token)))
    try:
        page = document[0].render(scale=dpi / 72).to_pil().convert("RGB")
    finally:
        document.close()
    return page.crop((0, 0, page.width, int(page.height * 0.48)))


@dataclass(frozen=True)
class Shot:
    """How the camera sees a picture."""

    scale: float = 1.0  # of the picture's pixels
    angle: float = 0.0  # degrees, counter-clockwise
    tilt: float = 0.0  # perspective: each top corner moves in by this fraction of the width
    blur: float = 0.0  # Gaussian radius in frame pixels (focus, motion)
    light: float = 1.0  # exposure: 0.3 is a dim hall
    noise: float = 0.0  # sensor noise, standard deviation in grey levels
    seed: int = 0


def photograph(
    placed: Sequence[tuple[Image.Image, tuple[float, float]]], shot: Shot = Shot()
) -> NDArray[np.uint8]:
    """A 1280x720 BGR frame showing each picture centred at its (x, y) fraction of the frame."""
    canvas = Image.new("RGB", FRAME_SIZE, BACKGROUND)
    for picture, (cx, cy) in placed:
        size = (round(picture.width * shot.scale), round(picture.height * shot.scale))
        # BOX averages the pixels each sensor cell covers, as a lens and sensor do.
        seen = picture.resize(size, Image.Resampling.BOX)
        seen = seen.rotate(shot.angle, Image.Resampling.BICUBIC, expand=True, fillcolor=BACKGROUND)
        x = round(cx * FRAME_SIZE[0] - seen.width / 2)
        y = round(cy * FRAME_SIZE[1] - seen.height / 2)
        canvas.paste(seen, (x, y))
    pixels = np.asarray(canvas)
    if shot.tilt:
        w, h = FRAME_SIZE
        inset = shot.tilt * w
        corners = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
        tilted = np.float32([[inset, 0], [w - inset, 0], [w, h], [0, h]])
        matrix = cv2.getPerspectiveTransform(corners, tilted)
        pixels = cv2.warpPerspective(pixels, matrix, FRAME_SIZE, borderValue=BACKGROUND)
    if shot.blur:
        pixels = np.asarray(Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(shot.blur)))
    values = pixels.astype(np.float32) * shot.light
    if shot.noise:
        values += np.random.default_rng(shot.seed).normal(0, shot.noise, values.shape)
    rgb = np.clip(values, 0, 255).astype(np.uint8)
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)


def photo(picture: Image.Image, shot: Shot = Shot()) -> NDArray[np.uint8]:
    return photograph([(picture, (0.5, 0.5))], shot)


def empty_frame(shot: Shot = Shot()) -> NDArray[np.uint8]:
    return photograph([], shot)


def blank_png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("L", (width, height), 255).save(out, format="PNG")
    return out.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    body = kind + data
    return len(data).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")


def png_header(width: int, height: int) -> bytes:
    """A PNG that claims a size but holds no pixels: PIL opens it lazily, loading would fail."""
    ihdr = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 0, 0, 0, 0])
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", b"not deflate")
        + _png_chunk(b"IEND", b"")
    )


def first_pass_only(frame: NDArray[np.uint8]) -> list[str]:
    """What zxing reads on its own from the grey frame, without decode_frame's second pass."""
    import zxingcpp

    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    found = zxingcpp.read_barcodes(grey, formats=zxingcpp.BarcodeFormat.QRCode)
    return [barcode.text for barcode in found]


# (what is photographed, how). Each was checked against 150 fresh tokens: all read every time.
VARIANTS = [
    pytest.param("qr", Shot(), id="qr-straight"),
    pytest.param("qr", Shot(scale=0.45), id="qr-small-3.6px-a-module"),
    pytest.param("qr", Shot(scale=0.8, angle=7), id="qr-rotated-7deg"),
    pytest.param("qr", Shot(scale=0.8, tilt=0.15), id="qr-tilted"),
    pytest.param("qr", Shot(scale=0.6, blur=1.2), id="qr-blurred"),
    pytest.param("qr", Shot(scale=0.6, light=0.3), id="qr-dark"),
    pytest.param("qr", Shot(scale=0.6, noise=20), id="qr-noisy"),
    pytest.param(
        "qr",
        Shot(scale=0.55, angle=-5, tilt=0.08, blur=1.0, light=0.5, noise=10),
        id="qr-everything-at-once",
    ),
    pytest.param("qr", Shot(scale=0.3, noise=8, light=0.7), id="qr-distant-2.4px-a-module"),
    pytest.param("pdf", Shot(scale=1.2, angle=3), id="pdf-held-close"),
    pytest.param("pdf", Shot(scale=1.1, angle=-4, tilt=0.12), id="pdf-tilted"),
    pytest.param("pdf", Shot(light=0.45, noise=12, blur=0.8), id="pdf-dim"),
    pytest.param("pdf", Shot(scale=0.6, noise=6, blur=0.5), id="pdf-at-arms-length"),
]

# Dim, noisy and a little out of focus: zxing alone reads none of these (0 of 150 tokens).
DIM_HALL = [
    pytest.param("qr", Shot(scale=0.45, angle=4, blur=1.0, light=0.35, noise=20), id="qr"),
    pytest.param("pdf", Shot(scale=0.8, blur=1.0, light=0.35, noise=20), id="pdf"),
]


def picture(kind: str, token: str) -> Image.Image:
    return qr_picture(token) if kind == "qr" else pdf_picture(token)


@pytest.mark.parametrize(("kind", "shot"), VARIANTS)
def test_a_photographed_ticket_decodes_to_its_exact_token(kind: str, shot: Shot) -> None:
    assert decode_frame(photo(picture(kind, TOKEN), shot)) == [TOKEN]


@pytest.mark.parametrize(("kind", "shot"), DIM_HALL)
def test_a_ticket_in_a_dim_hall_is_read_by_the_smoothed_upscaled_pass(
    kind: str, shot: Shot
) -> None:
    frame = photo(picture(kind, TOKEN), shot)
    assert first_pass_only(frame) == []
    assert decode_frame(frame) == [TOKEN]


def test_pil_images_grey_bgra_and_strided_arrays_are_frames_too() -> None:
    page = pdf_picture(TOKEN)
    frame = photo(page, Shot(scale=1.1))
    grey = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    # Black modules on a transparent background: read as on white, not as black on black.
    transparent = qr_picture(TOKEN).convert("L").point(lambda v: 0 if v < 128 else 255)
    on_nothing = Image.new("RGBA", transparent.size, (0, 0, 0, 0))
    on_nothing.putalpha(transparent.point(lambda v: 255 - v))
    frames: list[Frame] = [
        page,
        page.convert("L"),
        page.convert("P"),
        page.convert("1"),
        on_nothing,
        grey,
        grey[:, :, np.newaxis],
        cv2.cvtColor(frame, cv2.COLOR_BGR2BGRA),
        np.rot90(frame),  # a view with other strides, as a sideways camera gives it
        frame[40:-40, 100:-100],  # a crop: a view that is not contiguous
    ]
    assert [decode_frame(each) for each in frames] == [[TOKEN]] * len(frames)


def test_a_frame_without_a_code_gives_nothing() -> None:
    page = pdf_picture(TOKEN)
    # The same ticket with its QR covered: text, borders and the big readable code remain.
    covered = page.copy()
    covered.paste((255, 255, 255), (page.width // 2 + 50, 0, page.width, page.height))
    assert decode_frame(photo(covered, Shot(noise=5))) == []
    assert decode_frame(empty_frame(Shot(noise=10))) == []
    assert decode_frame(empty_frame()) == []


def test_two_tickets_in_one_frame_give_both_tokens() -> None:
    frame = photograph(
        [(qr_picture(TOKEN), (0.27, 0.5)), (qr_picture(OTHER_TOKEN), (0.73, 0.5))],
        Shot(scale=0.85, angle=2, noise=5),
    )
    codes = decode_frame(frame)
    assert sorted(codes) == sorted([TOKEN, OTHER_TOKEN])


def test_the_same_ticket_twice_in_a_frame_is_one_code() -> None:
    qr = qr_picture(TOKEN)
    frame = photograph([(qr, (0.27, 0.5)), (qr, (0.73, 0.5))], Shot(scale=0.85))
    assert decode_frame(frame) == [TOKEN]


def test_a_qr_of_bytes_that_are_not_utf8_decodes_to_text_without_raising() -> None:
    out = io.BytesIO()
    segno.make(b"\xff\xfe\xc3\x28\x80tessera\x00\x1b[2J", mode="byte").save(
        out, kind="png", scale=8
    )
    codes = decode_frame(Image.open(out))
    assert len(codes) == 1
    assert isinstance(codes[0], str)
    assert "tessera" in codes[0]


GARBAGE: list[object] = [
    pytest.param(None, id="none"),
    pytest.param(b"", id="empty-bytes"),
    pytest.param(np.random.default_rng(0).bytes(10_000_000), id="10-MB-of-bytes"),
    pytest.param("not a frame", id="text"),
    pytest.param(b"\xff\xfe\xc3\x28", id="bad-utf8"),
    pytest.param([[0, 255], [255, 0]], id="nested-list"),
    pytest.param(2**4000, id="huge-int"),
    pytest.param(np.uint8(7), id="numpy-scalar"),
    pytest.param(np.zeros((0, 0), np.uint8), id="empty-array"),
    pytest.param(np.zeros((0, 1280, 3), np.uint8), id="no-rows"),
    pytest.param(np.zeros((1, 1, 3), np.uint8), id="1x1"),
    pytest.param(np.zeros((20, 1280, 3), np.uint8), id="20-rows"),
    pytest.param(np.zeros(1280, np.uint8), id="1-d"),
    pytest.param(np.zeros((2, 720, 1280, 3), np.uint8), id="4-d"),
    pytest.param(np.zeros((720, 1280, 2), np.uint8), id="2-channels"),
    pytest.param(np.zeros((720, 1280, 5), np.uint8), id="5-channels"),
    pytest.param(np.zeros((720, 1280, 3), np.float64), id="float64"),
    pytest.param(np.zeros((720, 1280, 3), np.uint16), id="uint16"),
    pytest.param(np.zeros((720, 1280), bool), id="bool"),
    pytest.param(np.full((64, 64), None, object), id="object"),
    pytest.param(np.broadcast_to(np.uint8(0), (100_000, 100_000, 3)), id="100000x100000-view"),
    pytest.param(np.broadcast_to(np.uint8(0), (16_000, 16_000)), id="256-megapixel-view"),
    pytest.param(Image.new("L", (1, 1)), id="pil-1x1"),
    pytest.param(Image.new("F", (64, 64), 3.5e38), id="pil-float"),
    pytest.param(Image.new("I;16", (64, 64), 65535), id="pil-16-bit"),
    pytest.param(Image.open(io.BytesIO(png_header(9000, 9000))), id="pil-81-megapixel-lazy"),
    pytest.param(Image.open(io.BytesIO(blank_png(640, 480)[:60])), id="pil-truncated"),
]


@pytest.mark.parametrize("frame", GARBAGE)
def test_garbage_frames_give_nothing_and_never_raise(frame: object) -> None:
    started = time.perf_counter()
    assert decode_frame(frame) == []
    # Oversized frames are refused from their shape, never copied or searched.
    assert time.perf_counter() - started < 2


def test_10_mb_of_noise_is_searched_and_gives_nothing() -> None:
    noise = np.random.default_rng(1).integers(0, 256, (1826, 1826, 3), dtype=np.uint8)
    assert decode_frame(noise) == []


CODE_FRAME = photo(qr_picture(TOKEN), Shot(scale=0.7, angle=3, noise=6))
OTHER_FRAME = photo(qr_picture(OTHER_TOKEN), Shot(scale=0.7, angle=-2, noise=6))
BOTH_FRAME = photograph(
    [(qr_picture(TOKEN), (0.27, 0.5)), (qr_picture(OTHER_TOKEN), (0.73, 0.5))], Shot(scale=0.85)
)
BLANK_FRAME = empty_frame(Shot(noise=6))


async def codes_read(frames: Sequence[Frame] | Iterator[Frame], *, fps: float = 15) -> list[str]:
    """Every code `read_codes` passes on for these recorded frames, in order."""
    seen: list[str] = []
    with ImageFrames(frames) as source:
        await asyncio.wait_for(read_codes(source, seen.append, stop=asyncio.Event(), fps=fps), 30)
    return seen


async def test_a_code_held_in_view_is_one_scan_and_counts_again_after_a_second_away() -> None:
    # At 15 frames a second, 20 frames without the code are 1.4 s out of view.
    away = int(REAPPEAR_AFTER * 15) + 5
    frames = [BLANK_FRAME, CODE_FRAME, CODE_FRAME, CODE_FRAME] + [BLANK_FRAME] * away + [CODE_FRAME]
    assert await codes_read(frames, fps=15) == [TOKEN, TOKEN]


async def test_a_code_out_of_view_for_less_than_a_second_stays_one_scan() -> None:
    frames = [BLANK_FRAME, CODE_FRAME, BLANK_FRAME, BLANK_FRAME, BLANK_FRAME, CODE_FRAME]
    assert await codes_read(frames, fps=30) == [TOKEN]


async def test_each_ticket_in_view_is_passed_on_once_in_the_order_they_appear() -> None:
    frames = [CODE_FRAME, BOTH_FRAME, BOTH_FRAME, OTHER_FRAME, BOTH_FRAME, CODE_FRAME]
    assert await codes_read(frames, fps=30) == [TOKEN, OTHER_TOKEN]


async def test_codes_are_passed_on_on_the_event_loops_thread() -> None:
    threads: list[int] = []
    with ImageFrames([CODE_FRAME, BLANK_FRAME, OTHER_FRAME]) as source:
        await read_codes(
            source, lambda _: threads.append(threading.get_ident()), stop=asyncio.Event(), fps=30
        )
    assert threads == [threading.get_ident()] * 2


async def test_a_slow_camera_never_blocks_the_event_loop() -> None:
    """Each camera read waits until the event loop has run meanwhile: a read made on the loop's
    own thread would wait in vain (it is bounded, and counted as a stall)."""
    loop_ran = threading.Event()
    released: list[bool] = []

    def slow_camera() -> Iterator[Frame]:
        for frame in [BLANK_FRAME, CODE_FRAME, BLANK_FRAME, CODE_FRAME]:
            loop_ran.clear()
            released.append(loop_ran.wait(timeout=2))  # a camera waiting for its next exposure
            yield frame

    async def tick() -> None:
        while True:
            await asyncio.sleep(0.005)
            loop_ran.set()

    ticker = asyncio.create_task(tick())
    try:
        assert await codes_read(slow_camera(), fps=100) == [TOKEN]
    finally:
        ticker.cancel()
    assert released == [True] * 4, "a camera read stalled the event loop"


async def test_stop_ends_an_endless_camera_within_a_frame() -> None:
    stop = asyncio.Event()
    seen: list[str] = []
    asyncio.get_running_loop().call_later(0.3, stop.set)
    with ImageFrames(repeat(CODE_FRAME)) as source:
        await asyncio.wait_for(read_codes(source, seen.append, stop=stop, fps=30), 2)
    assert seen == [TOKEN]


async def test_no_code_is_passed_on_once_on_code_has_asked_to_stop() -> None:
    stop = asyncio.Event()
    seen: list[str] = []

    def scan(code: str) -> None:
        seen.append(code)
        stop.set()

    with ImageFrames(repeat(BOTH_FRAME)) as source:
        await asyncio.wait_for(read_codes(source, scan, stop=stop, fps=30), 2)
    assert len(seen) == 1


async def test_a_stop_set_before_reading_reads_nothing() -> None:
    stop = asyncio.Event()
    stop.set()
    seen: list[str] = []
    source = ImageFrames([CODE_FRAME])
    await read_codes(source, seen.append, stop=stop)
    assert seen == []
    assert source.read() is CODE_FRAME  # not even read


async def test_frames_are_read_no_faster_than_fps() -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    await codes_read([BLANK_FRAME] * 10, fps=20)
    assert loop.time() - started >= 9 / 20


@pytest.mark.parametrize("fps", [0, -15, float("nan"), float("-inf")])
async def test_fps_must_be_positive(fps: float) -> None:
    with pytest.raises(ValueError, match="fps"):
        await read_codes(ImageFrames([]), print, stop=asyncio.Event(), fps=fps)


def test_recorded_frames_end_with_them_and_when_closed() -> None:
    source = ImageFrames([BLANK_FRAME, CODE_FRAME])
    assert source.read() is BLANK_FRAME
    source.close()
    assert source.read() is None
    source.close()
    with ImageFrames([]) as empty:
        assert empty.read() is None


def test_a_camera_that_does_not_exist_is_unavailable_at_once() -> None:
    started = time.perf_counter()
    with pytest.raises(CameraUnavailable, match=r"^no camera 99$"):
        OpenCVCamera(99)
    assert time.perf_counter() - started < 2


@pytest.mark.parametrize(
    "index",
    [-1, 2**31, 10**5000, True, 1.5, "/nonexistent/door.avi", "", "bad\xff\udcff", None],
    ids=[
        "negative",
        "past-c-int",
        "huge",
        "bool",
        "float",
        "missing-file",
        "empty",
        "surrogate",
        "none",
    ],
)
def test_impossible_cameras_are_unavailable(index: object) -> None:
    with pytest.raises(CameraUnavailable, match="no camera"):
        OpenCVCamera(index)  # type: ignore[arg-type]


async def test_opencv_capture_reads_the_code_from_a_recorded_video(tmp_path: Path) -> None:
    # OpenCV's capture path without a webcam: the same VideoCapture, over an MJPEG file.
    path = tmp_path / "door.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 15, FRAME_SIZE)
    assert writer.isOpened()
    for frame in [BLANK_FRAME, CODE_FRAME, CODE_FRAME, CODE_FRAME, BLANK_FRAME]:
        writer.write(frame)
    writer.release()
    seen: list[str] = []
    camera = OpenCVCamera(str(path))
    try:
        await asyncio.wait_for(read_codes(camera, seen.append, stop=asyncio.Event(), fps=60), 10)
        assert camera.read() is None  # the video has ended
    finally:
        camera.close()
    assert seen == [TOKEN]
    assert camera.read() is None
    camera.close()


@pytest.mark.parametrize("module", ["cv2", "zxingcpp", "numpy"])
async def test_without_the_extra_every_entry_point_says_how_to_install_it(
    module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # what `import` sees when it is not installed
    hint = r"install tessera-checkin\[camera\]"
    with pytest.raises(CameraUnavailable, match=hint):
        decode_frame(CODE_FRAME)
    with pytest.raises(CameraUnavailable, match=hint):
        OpenCVCamera(0)
    with pytest.raises(CameraUnavailable, match=hint):
        await read_codes(ImageFrames([CODE_FRAME]), print, stop=asyncio.Event())


def test_importing_the_module_loads_no_camera_library() -> None:
    probe = (
        "import sys, scanner_client.camera;"
        "print(sorted(m for m in ('cv2', 'numpy', 'zxingcpp') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
