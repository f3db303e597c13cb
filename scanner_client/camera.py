"""QR codes from a webcam: frames in, ticket codes out (the optional extra ``camera``).

Rules:

- OpenCV (``cv2``), numpy and ``zxingcpp`` are imported only when a frame is decoded or a camera
  opened, so ``tessera-scan`` without ``--camera`` never needs them; without them every entry point
  raises `CameraUnavailable` saying how to install them.
- `decode_frame` is total: any frame (a BGR, BGRA or grey ``uint8`` array as OpenCV gives it, or a
  PIL image) yields the texts of the QR codes in it, each once; anything else, or a frame too
  small or too large to hold a code worth reading, yields ``[]``.
- `read_codes` is the one input path of the live camera and of recorded frames: reading and
  decoding run in a worker thread, so the event loop never waits on the camera; ``on_code`` runs
  on the loop's thread.
- A code in view is one scan. It is passed on when it appears, then only after it has been out of
  view for `REAPPEAR_AFTER` seconds; the door's own debounce applies after that. Time is the
  loop's clock when a frame arrives, not a frame count, so a slow camera does not stretch it.
- `read_codes` never closes its source (whoever opened it closes it) and returns only after the
  frame in flight is done, so the source is idle when it returns: within one frame of ``stop``.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any, Protocol, Self, TypeAlias

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray
    from PIL import Image

__all__ = [
    "REAPPEAR_AFTER",
    "CameraUnavailable",
    "Frame",
    "FrameSource",
    "ImageFrames",
    "OpenCVCamera",
    "decode_frame",
    "read_codes",
]

Frame: TypeAlias = "NDArray[np.uint8] | Image.Image"

REAPPEAR_AFTER = 1.0  # seconds out of view before the same code counts as a new scan

_INSTALL_HINT = "install tessera-checkin[camera] to read QR codes with a camera"
# A version-1 QR is 21 modules wide: a smaller frame cannot hold one even at one pixel a module.
_MIN_SIDE = 21
# Beyond these a frame is not a camera picture but a mistake; decoding it would take seconds.
_MAX_SIDE = 16_384
_MAX_PIXELS = 40_000_000
# A frame whose long side is at most this gets the second, upscaled pass (at most 3840x3840).
_UPSCALE_UP_TO = 1920
_CAPTURE_SIZE = (1280, 720)  # enough for a ticket at arm's length; decodes in 1.5-20 ms
_READ_ATTEMPTS = 3  # a webcam drops the odd frame; three failures in a row mean it is gone
_MAX_INDEX = 1_000_000  # OpenCV takes a C int; a larger number is a typo, not a camera


class CameraUnavailable(Exception):
    """The camera cannot be used: the extra is not installed, or there is no such camera."""


def _modules() -> tuple[ModuleType, ModuleType, ModuleType]:
    """cv2, numpy and zxingcpp, or `CameraUnavailable` saying how to get them."""
    try:
        import cv2
        import numpy
        import zxingcpp
    except ImportError as exc:
        raise CameraUnavailable(_INSTALL_HINT) from exc
    return cv2, numpy, zxingcpp


def _fits(width: int, height: int) -> bool:
    return (
        _MIN_SIDE <= width <= _MAX_SIDE
        and _MIN_SIDE <= height <= _MAX_SIDE
        and width * height <= _MAX_PIXELS
    )


def _grey_of_image(image: Image.Image, np: ModuleType) -> Any:
    from PIL import Image

    if not _fits(*image.size):
        return None
    try:
        if image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in image.info:
            # Transparent pixels often hold black: on white, as on a screen, the code stays a code.
            white = Image.new("RGBA", image.size, "white")
            image = Image.alpha_composite(white, image.convert("RGBA"))
        return np.asarray(image.convert("L"))
    except (OSError, ValueError, TypeError, SyntaxError):
        # A truncated or corrupt file fails only now, when PIL loads the pixels.
        return None


def _grey_of_array(array: Any, cv2: ModuleType, np: ModuleType) -> Any:
    if array.dtype != np.uint8 or array.ndim not in (2, 3):
        return None
    height, width = array.shape[:2]
    if not _fits(width, height):
        return None
    if array.ndim == 2:
        return array
    channels = array.shape[2]
    if channels == 1:
        return array[:, :, 0]
    if channels not in (3, 4):
        return None
    code = cv2.COLOR_BGR2GRAY if channels == 3 else cv2.COLOR_BGRA2GRAY
    # cvtColor wants one contiguous buffer; views (crops, broadcasts) are copied once here.
    return cv2.cvtColor(np.ascontiguousarray(array), code)


def _grey(frame: object, cv2: ModuleType, np: ModuleType) -> Any:
    """`frame` as a contiguous 2-D uint8 array, or None when it cannot be a picture of a code."""
    from PIL import Image

    if isinstance(frame, Image.Image):
        grey = _grey_of_image(frame, np)
    elif isinstance(frame, np.ndarray):
        grey = _grey_of_array(frame, cv2, np)
    else:
        return None
    return None if grey is None else np.ascontiguousarray(grey)


def _read_qr(zxingcpp: ModuleType, grey: Any, *, try_downscale: bool = True) -> list[str]:
    try:
        # try_rotate and try_invert stay on: a phone may be sideways or in dark mode.
        found = zxingcpp.read_barcodes(
            grey, formats=zxingcpp.BarcodeFormat.QRCode, try_downscale=try_downscale
        )
    except (ValueError, TypeError, RuntimeError):
        return []
    # Two copies of one ticket in view are one scan; an empty code is no code.
    return list(dict.fromkeys(barcode.text for barcode in found if barcode.text))


def decode_frame(frame: object) -> list[str]:
    """The texts of the QR codes in `frame`, each once; ``[]`` for garbage.

    A frame is a BGR/BGRA/grey ``uint8`` numpy array (as OpenCV gives it) or a PIL image. The
    texts are the codes' contents verbatim: a screen must escape them before showing them.
    Raises `CameraUnavailable` only when the ``camera`` extra is missing.
    """
    cv2, np, zxingcpp = _modules()
    grey = _grey(frame, cv2, np)
    if grey is None:
        return []
    texts = _read_qr(zxingcpp, grey)
    if texts or max(grey.shape) > _UPSCALE_UP_TO:
        return texts
    # In a dim hall the sensor's noise, with a little blur, defeats zxing's binarizer on codes a
    # person reads at once; smoothing the noise, then doubling the size, reads them (the dim-hall
    # frames of the tests: 0 of 150 tickets by the first pass, 150 by this one). It runs only on
    # frames with no code so far, for ~5-10 ms more at 1280x720.
    smoother = cv2.GaussianBlur(grey, (3, 3), 0)
    bigger = cv2.resize(smoother, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    return _read_qr(zxingcpp, bigger, try_downscale=False)


class FrameSource(Protocol):
    """Where frames come from: a camera, a video, or recorded images."""

    def read(self) -> Frame | None:
        """The next frame, blocking until it is there; None once the source has ended."""

    def close(self) -> None:
        """Release the source; `read` returns None afterwards."""


class _Closing(ABC):
    """Closes the source on leaving a ``with`` block."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    @abstractmethod
    def close(self) -> None: ...


def _could_be_camera(index: object) -> bool:
    if isinstance(index, bool):
        return False
    if isinstance(index, int):
        return 0 <= index <= _MAX_INDEX
    if not isinstance(index, str) or not index:
        return False
    try:
        # OpenCV's binding crashes the process on a string UTF-8 cannot encode (lone surrogates).
        index.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _describe(index: object) -> str:
    if isinstance(index, int) and not isinstance(index, bool):
        # str() of a huge int is slow, and past 4300 digits refused.
        return str(index) if index.bit_length() <= 64 else "(index out of range)"
    return repr(index)[:200]


class OpenCVCamera(_Closing):
    """Frames from camera `index` (or a video file or stream URL) through ``cv2.VideoCapture``.

    Asks the camera for 1280x720; a camera may answer with another size, which is fine. Opening
    blocks (a real webcam takes up to a second or two): from an event loop, open it in a thread.
    Raises `CameraUnavailable` when there is no such camera or the extra is missing.
    `read` and `close` may be called from different threads.
    """

    def __init__(self, index: int | str = 0) -> None:
        cv2, _, _ = _modules()
        if not _could_be_camera(index):
            raise CameraUnavailable(f"no camera {_describe(index)}")
        # OpenCV writes its warnings straight to file descriptor 2, which would tear the TUI's
        # screen; what they say surfaces here as CameraUnavailable or as the end of the frames.
        cv2.setLogLevel(0)
        try:
            capture = cv2.VideoCapture(index)
        except cv2.error as exc:
            raise CameraUnavailable(f"no camera {_describe(index)}") from exc
        if not capture.isOpened():
            capture.release()
            raise CameraUnavailable(f"no camera {_describe(index)}")
        width, height = _CAPTURE_SIZE
        capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
        capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        # One buffered frame: a frame read late is the newest, not one from a second ago.
        capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)
        self._cv2 = cv2
        self._capture: Any = capture
        # Held while reading, so close() from another thread waits for the read in flight
        # instead of releasing the device under it.
        self._lock = threading.Lock()

    def read(self) -> Frame | None:
        """The camera's next frame (BGR); None once it is closed, unplugged or the video ends."""
        with self._lock:
            if self._capture is None:
                return None
            for _ in range(_READ_ATTEMPTS):
                try:
                    ok, frame = self._capture.read()
                except self._cv2.error:
                    return None
                if ok and frame is not None:
                    return frame  # type: ignore[no-any-return]
            return None

    def close(self) -> None:
        with self._lock:
            if self._capture is not None:
                self._capture.release()
                self._capture = None


class ImageFrames(_Closing):
    """Frames from a list or iterator of images (recorded frames); ends with them."""

    def __init__(self, frames: Iterable[Frame]) -> None:
        self._frames: Iterator[Frame] | None = iter(frames)

    def read(self) -> Frame | None:
        if self._frames is None:
            return None
        return next(self._frames, None)

    def close(self) -> None:
        self._frames = None


class _Sightings:
    """When each code was last in view; tells which codes in a frame are new scans."""

    def __init__(self, reappear_after: float) -> None:
        self._reappear_after = reappear_after
        self._last_seen: dict[str, float] = {}

    def new_scans(self, codes: list[str], now: float) -> list[str]:
        fresh = [
            code
            for code in codes
            if now - self._last_seen.get(code, -math.inf) >= self._reappear_after
        ]
        # Codes out of view long enough are forgotten: the map holds only what is in view.
        self._last_seen = {
            code: seen
            for code, seen in self._last_seen.items()
            if now - seen < self._reappear_after
        }
        self._last_seen.update(dict.fromkeys(codes, now))
        return fresh


def _next_codes(source: FrameSource) -> list[str] | None:
    frame = source.read()
    return None if frame is None else decode_frame(frame)


async def _pause(stop: asyncio.Event, seconds: float) -> None:
    if seconds > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)


async def read_codes(
    source: FrameSource,
    on_code: Callable[[str], None],
    *,
    stop: asyncio.Event,
    fps: float = 15,
) -> None:
    """Read frames from `source` and call ``on_code(text)`` for each new code in view.

    At most `fps` frames a second; a code is passed on when it comes into view and again only
    after `REAPPEAR_AFTER` seconds out of view. Returns when `stop` is set (within one frame; no
    code is passed on after it) or the source ends. Exceptions from ``on_code`` propagate.
    Raises ValueError for an `fps` that is not positive.
    """
    if not fps > 0:  # also refuses NaN
        raise ValueError(f"fps must be positive, not {fps!r}")
    _modules()  # a missing extra is said at once, not from the worker thread's first frame
    loop = asyncio.get_running_loop()
    interval = 1 / fps
    sightings = _Sightings(REAPPEAR_AFTER)
    while not stop.is_set():
        started = loop.time()
        codes = await asyncio.to_thread(_next_codes, source)
        if codes is None or stop.is_set():
            return
        for code in sightings.new_scans(codes, loop.time()):
            if stop.is_set():  # on_code itself may have asked to stop
                return
            on_code(code)
        await _pause(stop, started + interval - loop.time())
