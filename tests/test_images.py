"""Tests for reedit.data.images: mode conversion, EXIF orientation, decoding and validation."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image, features

from reedit.data import images
from reedit.data.images import check_image_bytes, decode_image_bytes, to_rgb

ORIENTATION = 0x0112


def _encode(img: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kwargs)
    return buf.getvalue()


def _pixels(img: Image.Image) -> list[tuple[int, int, int]]:
    w, h = img.size
    return [img.getpixel((x, y)) for y in range(h) for x in range(w)]


def _assert_rgb(img: Image.Image, size: tuple[int, int]) -> None:
    assert img.mode == "RGB"
    assert img.size == size


# ---------------------------------------------------------------- alpha onto white


def test_rgb_passes_through_unchanged() -> None:
    src = Image.new("RGB", (2, 1))
    src.putpixel((0, 0), (1, 2, 3))
    src.putpixel((1, 0), (250, 128, 7))
    out = to_rgb(src)
    _assert_rgb(out, (2, 1))
    assert _pixels(out) == [(1, 2, 3), (250, 128, 7)]


def test_rgba_half_transparent_composited_on_white() -> None:
    src = Image.new("RGBA", (4, 1))
    src.putpixel((0, 0), (200, 100, 0, 128))  # half transparent
    src.putpixel((1, 0), (10, 20, 30, 0))  # fully transparent
    src.putpixel((2, 0), (10, 20, 30, 255))  # opaque
    src.putpixel((3, 0), (0, 0, 0, 51))  # 20 % black
    out = to_rgb(src)
    _assert_rgb(out, (4, 1))
    # c * a/255 + 255 * (1 - a/255), rounded:
    #   200*128/255 + 127 = 227.39 -> 227; 100*128/255 + 127 = 177.20 -> 177; 0 + 127 = 127
    #   black at alpha 51: 255 * 204/255 = 204
    assert _pixels(out) == [(227, 177, 127), (255, 255, 255), (10, 20, 30), (204, 204, 204)]


def test_rgba_does_not_modify_input() -> None:
    src = Image.new("RGBA", (1, 1), (0, 0, 0, 0))
    to_rgb(src)
    assert src.mode == "RGBA"
    assert src.getpixel((0, 0)) == (0, 0, 0, 0)


def test_la_composited_on_white() -> None:
    src = Image.new("LA", (2, 1))
    src.putpixel((0, 0), (100, 128))
    src.putpixel((1, 0), (0, 0))
    out = to_rgb(src)
    _assert_rgb(out, (2, 1))
    # 100*128/255 + 127 = 177.20 -> 177
    assert _pixels(out) == [(177, 177, 177), (255, 255, 255)]


def test_premultiplied_rgba_composited_on_white() -> None:
    # (200, 100, 0) at alpha 128, premultiplied: (100, 50, 0, 128); on white: c + 255 - a.
    src = Image.frombytes("RGBa", (2, 1), bytes([100, 50, 0, 128, 0, 0, 0, 0]))
    out = to_rgb(src)
    _assert_rgb(out, (2, 1))
    assert _pixels(out) == [(227, 177, 127), (255, 255, 255)]


def test_premultiplied_la_composited_on_white() -> None:
    src = Image.frombytes("La", (2, 1), bytes([50, 128, 0, 255]))
    out = to_rgb(src)
    _assert_rgb(out, (2, 1))
    assert _pixels(out) == [(177, 177, 177), (0, 0, 0)]


def test_pa_composited_on_white() -> None:
    src = Image.new("PA", (2, 1))
    src.putpalette([200, 100, 0, 0, 0, 255])
    src.putpixel((0, 0), (0, 128))
    src.putpixel((1, 0), (1, 255))
    out = to_rgb(src)
    _assert_rgb(out, (2, 1))
    assert _pixels(out) == [(227, 177, 127), (0, 0, 255)]


def test_palette_with_transparency_index() -> None:
    src = Image.new("P", (2, 1))
    src.putpalette([255, 0, 0, 0, 255, 0])
    src.putpixel((0, 0), 0)
    src.putpixel((1, 0), 1)
    src.info["transparency"] = 1
    out = to_rgb(src)
    _assert_rgb(out, (2, 1))
    assert _pixels(out) == [(255, 0, 0), (255, 255, 255)]


def test_palette_with_transparency_via_png_roundtrip() -> None:
    src = Image.new("P", (3, 1))
    src.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 0])
    for x in range(3):
        src.putpixel((x, 0), x)
    # per-entry alpha (tRNS chunk): red opaque, green invisible, black at 128
    data = _encode(src, "PNG", transparency=bytes([255, 0, 128]))
    with Image.open(io.BytesIO(data)) as reopened:
        assert reopened.mode == "P"
        out = to_rgb(reopened)
    _assert_rgb(out, (3, 1))
    assert _pixels(out) == [(255, 0, 0), (255, 255, 255), (127, 127, 127)]


def test_palette_without_transparency() -> None:
    src = Image.new("P", (2, 1))
    src.putpalette([12, 34, 56, 200, 150, 100])
    src.putpixel((1, 0), 1)
    out = to_rgb(src)
    _assert_rgb(out, (2, 1))
    assert _pixels(out) == [(12, 34, 56), (200, 150, 100)]


def test_rgb_with_colour_key_transparency() -> None:
    src = Image.new("RGB", (2, 1), (1, 2, 3))
    src.putpixel((1, 0), (9, 9, 9))
    data = _encode(src, "PNG", transparency=(1, 2, 3))
    with Image.open(io.BytesIO(data)) as reopened:
        out = to_rgb(reopened)
    assert _pixels(out) == [(255, 255, 255), (9, 9, 9)]


# ---------------------------------------------------------------- high bit depth


@pytest.mark.parametrize("mode", ["I;16", "I;16L", "I;16B"])
def test_sixteen_bit_scaled_by_257(mode: str) -> None:
    values = [0, 128, 129, 257, 32896, 65535]
    fmt = ">H" if mode == "I;16B" else "<H"
    raw = b"".join(struct.pack(fmt, v) for v in values)
    src = Image.frombytes(mode, (len(values), 1), raw)
    assert src.getpixel((5, 0)) == 65535
    out = to_rgb(src)
    _assert_rgb(out, (len(values), 1))
    # round(v / 257): 0, 0.498 -> 0, 0.502 -> 1, 1, 128, 255
    assert [p[0] for p in _pixels(out)] == [0, 0, 1, 1, 128, 255]
    assert all(p[0] == p[1] == p[2] for p in _pixels(out))


def test_sixteen_bit_png_roundtrip() -> None:
    src = Image.frombytes("I;16", (2, 1), struct.pack("<HH", 65535, 257))
    data = _encode(src, "PNG")
    out = decode_image_bytes(data)
    _assert_rgb(out, (2, 1))
    assert _pixels(out) == [(255, 255, 255), (1, 1, 1)]


def test_int32_clipped_to_16_bit_range() -> None:
    values = [-5, 0, 257, 65535, 70000]
    src = Image.frombytes("I", (len(values), 1), struct.pack("<5i", *values))
    out = to_rgb(src)
    _assert_rgb(out, (len(values), 1))
    assert [p[0] for p in _pixels(out)] == [0, 0, 1, 255, 255]


def test_float_unit_range_scaled_to_255() -> None:
    values = [0.0, 0.5, 1.0, -0.25]
    src = Image.frombytes("F", (len(values), 1), struct.pack("<4f", *values))
    out = to_rgb(src)
    _assert_rgb(out, (len(values), 1))
    # 0.5 * 255 = 127.5 rounds half up to 128
    assert [p[0] for p in _pixels(out)] == [0, 128, 255, 0]


def test_float_large_range_clipped_to_255() -> None:
    values = [100.4, 300.0, -3.0, 2.0]
    src = Image.frombytes("F", (len(values), 1), struct.pack("<4f", *values))
    out = to_rgb(src)
    _assert_rgb(out, (len(values), 1))
    assert [p[0] for p in _pixels(out)] == [100, 255, 0, 2]


# ---------------------------------------------------------------- plain PIL conversions


def test_bilevel() -> None:
    src = Image.new("1", (2, 1), 0)
    src.putpixel((1, 0), 1)
    out = to_rgb(src)
    _assert_rgb(out, (2, 1))
    assert _pixels(out) == [(0, 0, 0), (255, 255, 255)]


def test_grayscale() -> None:
    src = Image.new("L", (1, 1), 77)
    assert _pixels(to_rgb(src)) == [(77, 77, 77)]


def test_cmyk() -> None:
    src = Image.new("CMYK", (3, 1), (0, 0, 0, 0))
    src.putpixel((1, 0), (255, 0, 0, 0))
    src.putpixel((2, 0), (0, 0, 0, 255))
    out = to_rgb(src)
    _assert_rgb(out, (3, 1))
    assert _pixels(out) == [(255, 255, 255), (0, 255, 255), (0, 0, 0)]


def test_ycbcr() -> None:
    src = Image.new("YCbCr", (1, 1), (255, 128, 128))
    out = to_rgb(src)
    _assert_rgb(out, (1, 1))
    assert all(c >= 254 for c in out.getpixel((0, 0)))


def test_hsv() -> None:
    src = Image.new("HSV", (2, 1), (0, 255, 255))
    src.putpixel((1, 0), (0, 0, 255))
    out = to_rgb(src)
    _assert_rgb(out, (2, 1))
    assert _pixels(out) == [(255, 0, 0), (255, 255, 255)]


def test_lab() -> None:
    src = Image.new("LAB", (2, 1), (0, 128, 128))
    src.putpixel((1, 0), (255, 128, 128))
    out = to_rgb(src)
    _assert_rgb(out, (2, 1))
    dark, light = _pixels(out)
    assert max(dark) <= 2
    assert min(light) >= 253


# ---------------------------------------------------------------- EXIF orientation


def _marked_image(mode: str = "RGB") -> Image.Image:
    """A 40x20 image, grey except a red 2x2 marker at the top-left corner."""
    img = Image.new(mode, (40, 20), (128, 128, 128))
    for x in range(2):
        for y in range(2):
            img.putpixel((x, y), (255, 0, 0))
    return img


def test_exif_orientation_6_rotates_in_memory() -> None:
    src = _marked_image()
    src.getexif()[ORIENTATION] = 6
    out = to_rgb(src)
    _assert_rgb(out, (20, 40))
    # orientation 6: display = stored rotated 90 degrees clockwise; top-left goes to top-right
    assert out.getpixel((19, 0)) == (255, 0, 0)
    assert out.getpixel((0, 0)) == (128, 128, 128)
    assert out.getpixel((0, 39)) == (128, 128, 128)


def test_exif_orientation_6_from_encoded_png() -> None:
    src = _marked_image("RGBA")
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    out = decode_image_bytes(_encode(src, "PNG", exif=exif))
    _assert_rgb(out, (20, 40))
    assert out.getpixel((19, 0)) == (255, 0, 0)
    assert out.getpixel((0, 0)) == (128, 128, 128)


def test_no_orientation_keeps_size() -> None:
    out = to_rgb(_marked_image())
    _assert_rgb(out, (40, 20))
    assert out.getpixel((0, 0)) == (255, 0, 0)


# ---------------------------------------------------------------- decoding bytes


def _close(a: tuple[int, ...], b: tuple[int, ...], tol: int) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b, strict=True))


def test_decode_png_bytes() -> None:
    src = Image.new("RGBA", (5, 3), (10, 200, 30, 255))
    src.putpixel((4, 2), (0, 0, 0, 0))
    out = decode_image_bytes(_encode(src, "PNG"))
    _assert_rgb(out, (5, 3))
    assert out.getpixel((0, 0)) == (10, 200, 30)
    assert out.getpixel((4, 2)) == (255, 255, 255)


def test_decode_jpeg_bytes() -> None:
    src = Image.new("RGB", (16, 8), (200, 40, 40))
    out = decode_image_bytes(_encode(src, "JPEG", quality=95))
    _assert_rgb(out, (16, 8))
    assert _close(out.getpixel((8, 4)), (200, 40, 40), 6)


def test_decode_cmyk_jpeg_bytes() -> None:
    src = Image.new("CMYK", (8, 8), (0, 0, 0, 0))
    out = decode_image_bytes(_encode(src, "JPEG", quality=95))
    _assert_rgb(out, (8, 8))
    assert _close(out.getpixel((4, 4)), (255, 255, 255), 3)


@pytest.mark.skipif(not features.check("webp"), reason="Pillow built without WEBP")
def test_decode_webp_bytes() -> None:
    src = Image.new("RGBA", (12, 12), (30, 60, 220, 255))
    src.putpixel((0, 0), (0, 0, 0, 0))
    out = decode_image_bytes(_encode(src, "WEBP", lossless=True))
    _assert_rgb(out, (12, 12))
    assert out.getpixel((6, 6)) == (30, 60, 220)
    assert out.getpixel((0, 0)) == (255, 255, 255)


def test_decode_accepts_bytearray() -> None:
    data = bytearray(_encode(Image.new("RGB", (2, 2), (1, 2, 3)), "PNG"))
    assert decode_image_bytes(data).getpixel((1, 1)) == (1, 2, 3)


@pytest.mark.parametrize("data", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\0" * 40])
def test_garbage_bytes_raise_value_error(data: bytes) -> None:
    with pytest.raises(ValueError, match="cannot decode image"):
        decode_image_bytes(data)
    with pytest.raises(ValueError, match="cannot decode image"):
        check_image_bytes(data)


def _noisy_png() -> bytes:
    # pseudo-random pixels so that the IDAT data is large and truncation cuts through it
    w = h = 64
    raw = bytes((i * 7919 + (i >> 3) * 104729) % 251 for i in range(w * h * 3))
    return _encode(Image.frombytes("RGB", (w, h), raw), "PNG")


def test_truncated_png_rejected() -> None:
    data = _noisy_png()
    check_image_bytes(data)  # the complete file is fine
    truncated = data[: len(data) // 2]
    with pytest.raises(ValueError, match="cannot decode image"):
        check_image_bytes(truncated)
    with pytest.raises(ValueError, match="cannot decode image"):
        decode_image_bytes(truncated)


def test_corrupted_png_crc_rejected_by_check() -> None:
    data = bytearray(_noisy_png())
    data[len(data) // 2] ^= 0xFF  # flips a byte inside IDAT -> CRC mismatch
    with pytest.raises(ValueError, match="cannot decode image"):
        check_image_bytes(bytes(data))


def test_check_accepts_valid_images() -> None:
    for fmt in ("PNG", "JPEG", "GIF"):
        assert check_image_bytes(_encode(Image.new("RGB", (3, 3), (9, 9, 9)), fmt)) is None


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = struct.pack(">I", zlib.crc32(kind + payload))
    return struct.pack(">I", len(payload)) + kind + payload + crc


def test_zero_width_png_rejected() -> None:
    ihdr = struct.pack(">IIBBBBB", 0, 10, 8, 2, 0, 0, 0)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", ihdr)
        + _chunk(b"IDAT", zlib.compress(b""))
        + _chunk(b"IEND", b"")
    )
    with pytest.raises(ValueError, match="cannot decode image"):
        check_image_bytes(data)
    with pytest.raises(ValueError, match="cannot decode image"):
        decode_image_bytes(data)


def test_zero_size_reported_even_if_pil_opens_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # Pillow itself refuses zero-size files; make sure our own check would catch one anyway.
    real_open = Image.open

    def fake_open(fp: object, *args: object, **kwargs: object) -> Image.Image:
        img = real_open(fp, *args, **kwargs)
        img._size = (0, 1)
        return img

    monkeypatch.setattr(images.Image, "open", fake_open)
    data = _encode(Image.new("RGB", (1, 1)), "PNG")
    with pytest.raises(ValueError, match="zero-size"):
        check_image_bytes(data)
    with pytest.raises(ValueError, match="zero-size"):
        decode_image_bytes(data)


def test_non_bytes_rejected() -> None:
    with pytest.raises(TypeError, match="expected bytes, got str"):
        decode_image_bytes("iVBORw0KGgo=")  # type: ignore[arg-type]
