#!/usr/bin/python3
"""Seeds of fuzz_jpeg: small JPEGs as a JPEG shard stores them (PIL's encoder, the libjpeg-turbo
sslrun decodes with; TurboJPEG itself, through ctypes, for the 4:4:0 and 4:1:1 subsampling PIL cannot
write), each after the harness's 27-byte parameter header (tests/fuzz/fuzz_jpeg.c says the layout):
flags (bit 0 C = 3, bit 1 two crops, bit 2 the stored size is bytes 1-4 as given, else the JPEG's
own, bit 3 a previous sample first), h, w, two crops of out_size, crop_h, crop_w, crop_y, crop_x,
the previous sample's length, all u16 big-endian. The crops are chosen so the seeds decode at every
scale from 1/8 to 8/8.
Writes tests/fuzz/corpus/jpeg/seed-* and regress-* (overwriting those only):
  seed-gray-baseline, seed-gray-progressive, seed-gray-thin-1x300, seed-gray-flat-512x512 (the
  harness's largest size), seed-rgb-1x1
  seed-rgb420-baseline, seed-rgb444-baseline (decoded to gray), seed-rgb422-optimized,
  seed-rgb420-progressive, seed-rgb440-turbojpeg, seed-rgb411-turbojpeg
  seed-cmyk (refused: no CMYK to RGB conversion), seed-rgb420-wrong-size (stored size one row more)
  seed-*-trunc-*: cut at 2/3, before the first scan (header only), without the EOI marker
  seed-prev-*: a sample after a previous one (bit 3): a progressive after a larger gray one, a
  4:2:0 one after a corrupt one
  regress-*: results that depended on the previous sample, when a decoder kept its TurboJPEG handle
  (io/jpeg_decode.c now makes one per image):
    regress-header-error-then-valid: a valid progressive JPEG after one cut before its first scan:
      the failed header read left the handle broken, the next one "succeeded" without a size and
      the valid sample was refused as "0 x 0"
    regress-no-dqt-after-other: a JPEG without its quantisation tables (DQT removed) after another
      one: decoded with the other's tables instead of refused
    regress-no-dht-after-optimized: a JPEG without Huffman tables (libjpeg-turbo then uses the
      standard ones, as for Motion JPEG) after one with optimized tables: decoded with those
Usage: tests/fuzz/gen_jpeg_seeds.py   (needs PIL; deterministic for one libjpeg-turbo version)"""
import ctypes
import ctypes.util
import io
import os
import struct

from PIL import Image

HDR = 27


def header(C, crops, h, w, claimed=False, prev=None):
    """crops: up to two (out_size, crop_h, crop_w, crop_y, crop_x) inside h x w, stored so that the
    harness's mapping (out 1 + v % 512, crop_h 1 + v % h, crop_y v % (h - crop_h + 1)) gives them back."""
    assert 1 <= len(crops) <= 2 and C in (1, 3)
    flags = (C == 3) | (len(crops) == 2) << 1 | claimed << 2 | (prev is not None) << 3
    b = struct.pack(">BHH", flags, h, w)
    for out, ch, cw, y, x in list(crops) + [(1, 1, 1, 0, 0)] * (2 - len(crops)):
        assert 1 <= out <= 512 and 1 <= ch <= h and 1 <= cw <= w and 0 <= y <= h - ch and 0 <= x <= w - cw
        b += struct.pack(">HHHHH", out - 1, ch - 1, cw - 1, y, x)
    b += struct.pack(">H", len(prev) if prev is not None else 0)
    assert len(b) == HDR
    return b


def pattern(mode, w, h):
    """Deterministic content with edges and gradients (so every DCT coefficient band is used)."""
    n = len(mode) if mode != "L" else 1
    px = bytearray()
    for y in range(h):
        for x in range(w):
            for c in range(n):
                px.append(((x * (7 + 3 * c) + y * (13 - 2 * c)) ^ (x * y >> 2) ^ (64 * c if (x // 5 + y // 3) % 2 else 0)) & 255)
    return Image.frombytes(mode, (w, h), bytes(px))


def pil_jpeg(mode, w, h, flat=False, **kw):
    im = Image.new(mode, (w, h), 128) if flat else pattern(mode, w, h)
    f = io.BytesIO()
    im.save(f, "JPEG", **kw)
    return f.getvalue()


def turbojpeg(w, h, subsamp, quality=85):
    """TurboJPEG's tjCompress2 of an RGB pattern (TJSAMP_440 = 4, TJSAMP_411 = 5)."""
    lib = ctypes.CDLL(ctypes.util.find_library("turbojpeg") or "libturbojpeg.so.0")
    lib.tjInitCompress.restype = ctypes.c_void_p
    lib.tjCompress2.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_int, ctypes.c_int,
                                ctypes.c_int, ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_ulong),
                                ctypes.c_int, ctypes.c_int, ctypes.c_int]
    lib.tjDestroy.argtypes = [ctypes.c_void_p]
    lib.tjFree.argtypes = [ctypes.c_void_p]
    tj = lib.tjInitCompress()
    assert tj
    src = pattern("RGB", w, h).tobytes()
    buf, size = ctypes.c_void_p(None), ctypes.c_ulong(0)
    rc = lib.tjCompress2(tj, src, w, 0, h, 0, ctypes.byref(buf), ctypes.byref(size), subsamp, quality, 0)
    assert rc == 0, "tjCompress2 failed"
    out = ctypes.string_at(buf, size.value)
    lib.tjFree(buf)
    lib.tjDestroy(tj)
    return out


def without(j, marker):
    """j without its marker segments of type marker (0xdb DQT, 0xc4 DHT) before the first scan."""
    out, i = j[:2], 2
    while j[i + 1] != 0xDA:
        assert j[i] == 0xFF
        n = 2 + struct.unpack(">H", j[i + 2:i + 4])[0]
        if j[i + 1] != marker:
            out += j[i:i + n]
        i += n
    return out + j[i:]


def first_sos(j):
    i = j.index(b"\xff\xda")
    assert i > 0
    return i


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = os.path.join(here, "corpus", "jpeg")
    os.makedirs(out, exist_ok=True)
    seeds = {}

    def add(name, jpeg, C, crops, h, w, claimed=False, check=True, claim_hw=None, prev=None):
        if check:  # intact seeds: PIL reads them back at their size
            im = Image.open(io.BytesIO(jpeg))
            im.load()
            assert im.size == (w, h), (name, im.size)
        ch, cw = claim_hw or (h, w)
        seeds[name] = header(C, crops, ch, cw, claimed, prev) + (prev or b"") + jpeg

    # gray: baseline at 1/8 (out 2 of a 16 px side), progressive decoded to RGB at 8/8, thin (8/8: a
    # 1-row crop), the largest size at 2/8
    g = pil_jpeg("L", 24, 16, quality=90)
    add("seed-gray-baseline", g, 1, [(2, 16, 24, 0, 0)], 16, 24)
    add("seed-gray-progressive", pil_jpeg("L", 33, 21, quality=80, progressive=True), 3,
        [(21, 21, 33, 0, 0)], 21, 33)
    add("seed-gray-thin-1x300", pil_jpeg("L", 300, 1, quality=75), 1, [(1, 1, 120, 0, 97)], 1, 300)
    add("seed-gray-flat-512x512", pil_jpeg("L", 512, 512, flat=True, quality=50), 1,
        [(90, 400, 380, 60, 100), (96, 512, 512, 0, 0)], 512, 512)
    add("seed-rgb-1x1", pil_jpeg("RGB", 1, 1, quality=95), 3, [(1, 1, 1, 0, 0)], 1, 1)

    # colour: 4:2:0 (two crops, 3/8), 4:4:4 to gray (4/8), 4:2:2 optimized Huffman (5/8),
    # progressive 4:2:0 (two crops, 6/8), TurboJPEG's 4:4:0 (7/8) and 4:1:1 (8/8)
    c420 = pil_jpeg("RGB", 37, 29, quality=90, subsampling=2)
    add("seed-rgb420-baseline", c420, 3, [(4, 20, 17, 3, 5), (8, 29, 37, 0, 0)], 29, 37)
    add("seed-rgb444-baseline", pil_jpeg("RGB", 32, 32, quality=85, subsampling=0), 1,
        [(16, 32, 32, 0, 0)], 32, 32)
    add("seed-rgb422-optimized", pil_jpeg("RGB", 40, 24, quality=75, subsampling=1, optimize=True), 3,
        [(10, 16, 30, 4, 6)], 24, 40)
    prog = pil_jpeg("RGB", 48, 40, quality=85, subsampling=2, progressive=True)
    add("seed-rgb420-progressive", prog, 3, [(6, 9, 11, 30, 36), (30, 40, 40, 0, 8)], 40, 48)
    add("seed-rgb440-turbojpeg", turbojpeg(28, 20, 4), 3, [(14, 16, 20, 2, 5)], 20, 28)
    add("seed-rgb411-turbojpeg", turbojpeg(36, 20, 5), 1, [(20, 20, 36, 0, 0), (3, 5, 7, 11, 13)], 20, 36)

    # refused: CMYK (TurboJPEG cannot give RGB), a stored size one row more than the JPEG's
    add("seed-cmyk", pil_jpeg("CMYK", 16, 16, quality=90), 3, [(8, 16, 16, 0, 0)], 16, 16)
    add("seed-rgb420-wrong-size", c420, 3, [(8, 30, 37, 0, 0)], 29, 37, claimed=True, claim_hw=(30, 37))

    # truncated: 2/3 of the data, the headers alone (no scan), everything but the EOI marker
    add("seed-rgb420-progressive-trunc-2of3", prog[: len(prog) * 2 // 3], 3, [(12, 40, 48, 0, 0)], 40, 48,
        check=False)
    add("seed-rgb420-baseline-trunc-nosos", c420[: first_sos(c420)], 3, [(8, 29, 37, 0, 0)], 29, 37,
        check=False)
    assert g[-2:] == b"\xff\xd9"
    add("seed-gray-baseline-trunc-noeoi", g[:-2], 1, [(16, 16, 24, 0, 0)], 16, 24, check=False)

    # a previous sample first: larger (the decoder's buffer is reused), corrupt (its handle survives)
    flat = pil_jpeg("L", 512, 512, flat=True, quality=50)
    add("seed-prev-gray-then-progressive", prog, 3, [(6, 9, 11, 30, 36)], 40, 48, prev=flat)
    bad = bytearray(c420)
    bad[first_sos(c420) + 40:first_sos(c420) + 48] = b"\x00\xff\x01\xff\xd3\xff\x00\xaa"
    add("seed-prev-corrupt-then-rgb420", c420, 1, [(4, 20, 17, 3, 5)], 29, 37, prev=bytes(bad))
    add("regress-header-error-then-valid", prog, 3, [(6, 9, 11, 30, 36), (30, 40, 40, 0, 8)], 40, 48,
        prev=c420[: first_sos(c420)])
    q30 = pil_jpeg("RGB", 37, 29, quality=30, subsampling=2)
    add("regress-no-dqt-after-other", without(c420, 0xDB), 3, [(8, 29, 37, 0, 0)], 29, 37, prev=q30,
        check=False)
    opt = pil_jpeg("RGB", 37, 29, quality=90, subsampling=2, optimize=True)
    add("regress-no-dht-after-optimized", without(c420, 0xC4), 3, [(37, 29, 37, 0, 0)], 29, 37, prev=opt)

    for name, blob in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(blob)
    print(f"{len(seeds)} inputs written to {out}")


if __name__ == "__main__":
    main()
