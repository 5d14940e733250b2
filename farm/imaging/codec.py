"""Image and mask decoding with validation, result encoding, and atomic output writes.

Pixels are held in OpenCV's order (BGR), 8 or 16 bits; alpha apart. Pillow reads the header first
(format, size, EXIF orientation, ICC profile) so a decompression bomb is refused before any pixel is
decoded; OpenCV decodes the pixels where it can because it is several times faster than Pillow.
"""

from __future__ import annotations

import functools
import io
import struct
import zlib
from dataclasses import dataclass, replace

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from farm.core.spec import OutputSpec, kept_format
from farm.errors import ImageError
from farm.imaging.jpeg_quality import estimate_quality

# A corrupt file is reported once, as an ImageError; OpenCV's own warnings on stderr would repeat it.
cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
# LAN Farm enforces its own limit (max_pixels) from the header before decoding; Pillow's global
# bomb check would only warn in threads or raise with a less useful message.
Image.MAX_IMAGE_PIXELS = None

DEFAULT_MAX_PIXELS = 100_000_000
SUPPORTED_FORMATS = frozenset({"PNG", "JPEG", "WEBP", "BMP", "TIFF", "GIF"})
_CV2_MODES = frozenset({"RGB", "RGBA", "L", "I;16", "I;16B", "I;16L"})
_CV2_FORMATS = frozenset({"PNG", "JPEG", "WEBP", "BMP"})
_EXIF_ORIENTATION = 0x0112


@dataclass(frozen=True, slots=True)
class Source:
    """How the input was encoded, so the output can be written the same way (``--format keep``):
    Pillow's format name, a JPEG's estimated quality, whether a WebP was lossless, and the EXIF block
    (orientation already applied to the pixels, so it is written back as 1)."""

    format: str
    quality: int | None = None
    lossless: bool = False
    exif: bytes | None = None


@dataclass(slots=True)
class Picture:
    """Decoded pixels: ``color`` HxWx3 BGR (uint8 or uint16), optional ``alpha`` HxW of the same dtype."""

    color: np.ndarray
    alpha: np.ndarray | None = None
    icc: bytes | None = None
    grey: bool = False
    source: Source | None = None

    @property
    def width(self) -> int:
        return int(self.color.shape[1])

    @property
    def height(self) -> int:
        return int(self.color.shape[0])

    @property
    def megapixels(self) -> float:
        return self.width * self.height / 1e6

    def with_color(self, color: np.ndarray) -> Picture:
        return replace(self, color=color)


def decode_image(data: bytes, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Picture:
    """Decode an encoded image; raises ImageError for empty, corrupt, unsupported or oversized data."""
    if not data:
        raise ImageError("empty file (0 bytes)")
    try:
        header = Image.open(io.BytesIO(data))
    except UnidentifiedImageError:
        raise ImageError(
            f"not an image, or a format LAN Farm cannot read (supported: {', '.join(sorted(SUPPORTED_FORMATS))})"
        ) from None
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"corrupt image header ({exc})") from None
    fmt = header.format or "?"
    if fmt not in SUPPORTED_FORMATS:
        raise ImageError(f"unsupported image format {fmt} (supported: {', '.join(sorted(SUPPORTED_FORMATS))})")
    width, height = header.size
    if width <= 0 or height <= 0:
        raise ImageError(f"image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise ImageError(
            f"image is {width}x{height} ({width * height / 1e6:.1f} MP), over the {max_pixels / 1e6:g} MP limit"
        )
    icc = header.info.get("icc_profile") or None
    orientation = _orientation(header, fmt)
    pic = _decode_cv2(data) if fmt in _CV2_FORMATS and header.mode in _CV2_MODES else _decode_pillow(header)
    if pic.width * pic.height != width * height:
        raise ImageError("corrupt image: decoded size differs from its header")
    pic.icc = icc
    pic.source = _source_of(header, fmt, data)
    return _apply_orientation(pic, orientation)


def decode_mask(
    data: bytes, width: int, height: int, *, resize: bool = False, max_pixels: int = DEFAULT_MAX_PIXELS
) -> np.ndarray:
    """Decode a mask to HxW uint8 with 255 where the edit goes.

    White (grey level > 127) marks the area; a transparent pixel never does. The mask must have the
    image's size; with ``resize`` a mask of another size is scaled to it (nearest neighbour). The last
    masks decoded are kept: a batch that shares one mask (``lanfarm run --mask FILE``) decodes it once,
    not once per image (a 24 MP mask: 0.15 s), and each caller gets its own copy.
    """
    return _decoded_mask(data, width, height, resize, max_pixels).copy()


@functools.lru_cache(maxsize=2)
def _decoded_mask(data: bytes, width: int, height: int, resize: bool, max_pixels: int) -> np.ndarray:
    mask = _decode_mask(data, width, height, resize=resize, max_pixels=max_pixels)
    mask.flags.writeable = False  # shared by the cache: callers get copies
    return mask


def _decode_mask(data: bytes, width: int, height: int, *, resize: bool, max_pixels: int) -> np.ndarray:
    grey = _fast_grey_mask(data, max_pixels)
    alpha = None
    if grey is None:
        try:
            pic = decode_image(data, max_pixels=max_pixels)
        except ImageError as exc:
            raise ImageError(f"mask: {exc}") from None
        grey = to_uint8(pic.color[:, :, 0] if pic.grey else cv2.cvtColor(pic.color, cv2.COLOR_BGR2GRAY))
        alpha = pic.alpha
    mh, mw = grey.shape
    if (mw, mh) != (width, height) and not resize:
        raise ImageError(
            f"mask is {mw}x{mh} but the image is {width}x{height} (make them the same size, or allow mask resizing)"
        )
    _, mask = cv2.threshold(grey, 127, 255, cv2.THRESH_BINARY)
    if alpha is not None:
        mask[alpha == 0] = 0
    if mask.shape != (height, width):
        mask = cv2.resize(mask, (width, height), interpolation=cv2.INTER_NEAREST)
    return mask


def _fast_grey_mask(data: bytes, max_pixels: int) -> np.ndarray | None:
    """The common case, an 8-bit greyscale or RGB PNG/JPEG/WebP mask without orientation, decoded
    straight to grey; None sends the mask through the general path."""
    try:
        header = Image.open(io.BytesIO(data))
    except Exception:  # the general path reports it properly
        return None
    fmt = header.format or ""
    if (
        fmt not in _CV2_FORMATS
        or header.mode not in ("L", "RGB")
        or header.size[0] * header.size[1] > max_pixels
        or _orientation(header, fmt) != 1
    ):
        return None
    grey = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE)
    if grey is None or grey.shape != (header.size[1], header.size[0]):
        return None
    return grey


def encode_image(pic: Picture, output: OutputSpec) -> bytes:
    """Encode as PNG (lossless, alpha and 16 bits kept), JPEG or WebP; the ICC profile is kept.

    ``keep`` writes the picture's source format (:func:`farm.core.spec.kept_format`): a JPEG at its own
    estimated quality with its EXIF block, a lossless WebP losslessly.
    """
    output, lossless, exif = resolve_output(pic, output)
    arr = _compose(pic, output)
    if output.format == "png":
        ok, buf = cv2.imencode(".png", arr)
        data = buf.tobytes()
        return _png_with_icc(data, pic.icc) if ok and pic.icc else _checked(ok, data)
    if pic.icc is None and exif is None:
        quality = 101 if lossless else output.quality  # OpenCV: WebP quality over 100 is lossless
        jpeg = output.format == "jpeg"
        params = [cv2.IMWRITE_JPEG_QUALITY, output.quality] if jpeg else [cv2.IMWRITE_WEBP_QUALITY, quality]
        ok, buf = cv2.imencode(output.suffix, arr, params)
        return _checked(ok, buf.tobytes())
    rgb = (
        cv2.cvtColor(arr, cv2.COLOR_BGRA2RGBA if arr.ndim == 3 and arr.shape[2] == 4 else cv2.COLOR_BGR2RGB)
        if arr.ndim == 3
        else arr
    )
    extra: dict[str, object] = {"lossless": True} if lossless else {}
    if pic.icc is not None:
        extra["icc_profile"] = pic.icc
    if exif is not None:
        extra["exif"] = exif
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, format=output.format.upper(), quality=output.quality, **extra)
    return out.getvalue()


def resolve_output(pic: Picture, output: OutputSpec) -> tuple[OutputSpec, bool, bytes | None]:
    """The concrete encoding for ``pic``: (format and quality, lossless WebP, EXIF to write)."""
    if output.format != "keep":
        return output, False, None
    source = pic.source
    fmt = kept_format(source.format if source else None)
    if fmt == "jpeg" and source is not None:
        return OutputSpec("jpeg", source.quality or output.quality), False, source.exif
    if fmt == "webp" and source is not None:
        return OutputSpec("webp", output.quality), source.lossless, source.exif
    return OutputSpec("png"), False, None


def to_uint8(color: np.ndarray) -> np.ndarray:
    """8-bit view of pixels for engines: uint16 is rounded down to 8 bits."""
    if color.dtype == np.uint8:
        return color
    return ((color.astype(np.uint32) + 128) // 257).astype(np.uint8)


def _source_of(header: Image.Image, fmt: str, data: bytes) -> Source:
    if fmt == "JPEG":
        tables = getattr(header, "quantization", None) or {}
        quality = estimate_quality(tables[0]) if 0 in tables and len(tables[0]) == 64 else None
        return Source(fmt, quality=quality, exif=_upright_exif(header))
    if fmt == "WEBP":
        lossless = data[12:16] == b"VP8L" or (data[12:16] == b"VP8X" and b"VP8L" in data[30:4096])
        return Source(fmt, lossless=lossless, exif=_upright_exif(header))
    return Source(fmt)


def _upright_exif(header: Image.Image) -> bytes | None:
    """The EXIF block with its orientation set to 1 (the pixels are turned already); None without one."""
    if not header.info.get("exif"):
        return None
    try:
        exif = header.getexif()
        if exif.get(_EXIF_ORIENTATION, 1) != 1:
            exif[_EXIF_ORIENTATION] = 1
        return exif.tobytes()
    except Exception:  # a broken EXIF block is dropped, never fatal
        return None


def _orientation(header: Image.Image, fmt: str) -> int:
    try:
        if fmt == "PNG":  # getexif() on PNG may decode the whole image to find a late eXIf chunk
            raw = header.info.get("exif")
            if not raw:
                return 1
            exif = Image.Exif()
            exif.load(raw)
        else:
            exif = header.getexif()
        value = exif.get(_EXIF_ORIENTATION, 1)
        return value if isinstance(value, int) and 1 <= value <= 8 else 1
    except Exception:  # a broken EXIF block must not make a good image unreadable
        return 1


def _decode_cv2(data: bytes) -> Picture:
    arr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ImageError("corrupt image data (could not decode pixels)")
    if arr.ndim == 2:
        return Picture(color=cv2.cvtColor(arr, cv2.COLOR_GRAY2BGR), grey=True)
    if arr.shape[2] == 4:
        return Picture(color=np.ascontiguousarray(arr[:, :, :3]), alpha=np.ascontiguousarray(arr[:, :, 3]))
    return Picture(color=arr)


def _decode_pillow(header: Image.Image) -> Picture:
    try:
        header.load()
        im = header
        if im.mode in ("P", "PA"):
            im = im.convert("RGBA" if "transparency" in im.info or im.mode == "PA" else "RGB")
        elif im.mode == "LA":
            im = im.convert("RGBA")
        elif im.mode in ("I", "I;16", "I;16B", "I;16L"):
            grey16 = np.clip(np.asarray(im, dtype=np.int64), 0, 65535).astype(np.uint16)
            return Picture(color=cv2.cvtColor(grey16, cv2.COLOR_GRAY2BGR), grey=True)
        elif im.mode == "1":
            im = im.convert("L")
        elif im.mode not in ("RGB", "RGBA", "L"):
            im = im.convert("RGB")
        arr = np.asarray(im)
    except (OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"corrupt image data ({exc})") from None
    if arr.ndim == 2:
        return Picture(color=cv2.cvtColor(arr, cv2.COLOR_GRAY2BGR), grey=True)
    if arr.shape[2] == 4:
        return Picture(color=cv2.cvtColor(arr[:, :, :3], cv2.COLOR_RGB2BGR), alpha=np.ascontiguousarray(arr[:, :, 3]))
    return Picture(color=cv2.cvtColor(arr, cv2.COLOR_RGB2BGR))


def _apply_orientation(pic: Picture, orientation: int) -> Picture:
    if orientation == 1:
        return pic

    def turn(a: np.ndarray) -> np.ndarray:
        if orientation in (2, 4):
            a = a[:, ::-1] if orientation == 2 else a[::-1]
        elif orientation == 3:
            a = a[::-1, ::-1]
        elif orientation == 5:
            a = np.swapaxes(a, 0, 1)
        elif orientation == 6:
            a = np.swapaxes(a, 0, 1)[:, ::-1]
        elif orientation == 7:
            a = np.swapaxes(a, 0, 1)[::-1, ::-1]
        elif orientation == 8:
            a = np.swapaxes(a, 0, 1)[::-1]
        return np.ascontiguousarray(a)

    return replace(pic, color=turn(pic.color), alpha=None if pic.alpha is None else turn(pic.alpha))


def _compose(pic: Picture, output: OutputSpec) -> np.ndarray:
    color, alpha = pic.color, pic.alpha
    if output.format != "png":  # JPEG and WebP here are 8-bit; JPEG has no alpha
        color = to_uint8(color)
        alpha = None if alpha is None or output.format == "jpeg" else to_uint8(alpha)
    if alpha is not None:
        return np.dstack([color, alpha.astype(color.dtype)])
    if pic.grey:
        return np.ascontiguousarray(color[:, :, 0])
    return color


def _checked(ok: bool, data: bytes) -> bytes:
    if not ok or not data:
        raise ImageError("could not encode the result")
    return data


def _png_with_icc(png: bytes, icc: bytes) -> bytes:
    """Insert an iCCP chunk right after IHDR (OpenCV's PNG writer drops ICC profiles)."""
    ihdr_end = 8 + 4 + 4 + 13 + 4
    body = b"icc\x00\x00" + zlib.compress(icc)
    chunk = struct.pack(">I", len(body)) + b"iCCP" + body
    chunk += struct.pack(">I", zlib.crc32(b"iCCP" + body) & 0xFFFFFFFF)
    return png[:ihdr_end] + chunk + png[ihdr_end:]
