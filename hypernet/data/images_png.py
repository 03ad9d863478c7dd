"""Fast PNG header read for scanning large datasets (PIL's open costs ~4x more per file).

Reads the signature and IHDR (CRC-checked), then walks chunk headers up to the first IDAT.
Anything that could change the answer PIL would give - an EXIF/XMP orientation source, an
unknown IHDR combination, a malformed chunk - returns None so the caller falls back to PIL.
"""
from __future__ import annotations

import zlib
from typing import BinaryIO

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# (colour type -> allowed bit depths), from the PNG specification.
_VALID_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}
_TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt")
_ORIENTATION_KEYWORDS = (b"Raw profile type exif", b"Raw profile type APP1", b"XML:com.adobe.xmp")
_MAX_CHUNKS = 256


def png_size_fast(fh: BinaryIO) -> tuple[int, int] | None:
    """(width, height) of a plain PNG whose orientation is certainly 1, else None.

    `fh` must be positioned at the start of the file; its position afterwards is undefined.
    """
    head = fh.read(33)
    if len(head) < 33 or head[:8] != PNG_SIGNATURE or head[8:16] != b"\x00\x00\x00\x0dIHDR":
        return None
    if zlib.crc32(head[12:29]) != int.from_bytes(head[29:33], "big"):
        return None
    width = int.from_bytes(head[16:20], "big")
    height = int.from_bytes(head[20:24], "big")
    depth, colour, compression, filtering, interlace = head[24:29]
    if depth not in _VALID_DEPTHS.get(colour, ()) or compression or filtering or interlace > 1:
        return None
    if width == 0 or height == 0:
        return None
    for _ in range(_MAX_CHUNKS):
        chunk = fh.read(8)
        if len(chunk) < 8:
            return None
        length = int.from_bytes(chunk[:4], "big")
        kind = chunk[4:]
        if kind == b"IDAT":
            return width, height
        if kind == b"eXIf" or length > 0x7FFFFFFF:
            return None
        if kind in _TEXT_CHUNKS:
            keyword = fh.read(min(length, 80)).split(b"\x00", 1)[0]
            if keyword in _ORIENTATION_KEYWORDS:
                return None
            fh.seek(length - min(length, 80) + 4, 1)
        else:
            fh.seek(length + 4, 1)
    return None
