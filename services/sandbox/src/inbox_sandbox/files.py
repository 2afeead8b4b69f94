"""Tiny but well-formed media files the customer simulator "sends" (pure: bytes in, bytes out).

Each kind gets a file a real decoder accepts (a 1x1 PNG, a 1x1 WebP, an Ogg Opus stream, a one-page
PDF, an MP4 with its ``ftyp`` box), varied by a seed so two simulated messages do not share a hash
(except stickers).
"""

from __future__ import annotations

import base64
import hashlib
import struct
import zlib

# Modernizr's lossless WebP probe: a 1x1 transparent image, 34 bytes.
_WEBP_1X1 = base64.b64decode("UklGRhoAAABXRUJQVlA4TA0AAAAvAAAAEAcQERGIiP4HAA==")


def png(seed: bytes) -> bytes:
    """A 1x1 RGB PNG whose colour comes from ``seed``."""
    r, g, b = hashlib.sha256(seed).digest()[:3]

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(bytes([0, r, g, b]))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def webp() -> bytes:
    """A 1x1 WebP (always the same bytes: a simple-format WebP has no room for a varying chunk)."""
    return _WEBP_1X1


def _ogg_crc(data: bytes) -> int:
    # Ogg's CRC-32: polynomial 0x04c11db7, not reflected, initial value 0.
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def _ogg_page(packet: bytes, serial: int, sequence: int, granule: int, flags: int) -> bytes:
    segments = [255] * (len(packet) // 255) + [len(packet) % 255]
    header = (b"OggS" + bytes([0, flags]) + struct.pack("<qIII", granule, serial, sequence, 0)
              + bytes([len(segments)]) + bytes(segments))
    page = header + packet
    crc = _ogg_crc(page)
    return page[:22] + struct.pack("<I", crc) + page[26:]


def ogg_opus(seed: bytes) -> bytes:
    """An Ogg Opus voice note: the two header packets and one 20 ms silent (DTX) frame."""
    serial = int.from_bytes(hashlib.sha256(seed).digest()[:4], "little")
    head = b"OpusHead" + struct.pack("<BBHIhB", 1, 1, 312, 48000, 0, 0)
    vendor = b"inbox-sandbox"
    tags = b"OpusTags" + struct.pack("<I", len(vendor)) + vendor + struct.pack("<I", 0)
    silence = bytes([0xF8])  # TOC: CELT fullband 20 ms, mono, one frame of length 0
    return (_ogg_page(head, serial, 0, 0, 0x02) + _ogg_page(tags, serial, 1, 0, 0x00)
            + _ogg_page(silence, serial, 2, 312 + 960, 0x04))


def pdf(seed: bytes, text: str = "Sandbox document") -> bytes:
    """A one-page PDF with a line of text and a correct cross-reference table."""
    safe = text.encode("latin-1", "replace").replace(b"\\", b"\\\\").replace(b"(", b"\\(").replace(b")", b"\\)")
    stream = b"BT /F1 18 Tf 40 100 Td (" + safe + b") Tj ET"
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 300 144] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n%" + hashlib.sha256(seed).hexdigest()[:8].encode() + b"\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def mp4(seed: bytes) -> bytes:
    """An ISO base media file with its ``ftyp`` box and a ``free`` box (no tracks)."""
    ftyp = b"isom" + struct.pack(">I", 512) + b"isomiso2mp41"
    free = hashlib.sha256(seed).digest()[:16]
    return (struct.pack(">I", 8 + len(ftyp)) + b"ftyp" + ftyp
            + struct.pack(">I", 8 + len(free)) + b"free" + free)


def sample_file(kind: str, seed: bytes, caption: str | None = None) -> tuple[bytes, str, str | None]:
    """(content, mime type, file name) of a generated file for an inbound media message of ``kind``."""
    if kind == "image":
        return png(seed), "image/png", None
    if kind == "sticker":
        return webp(), "image/webp", None
    if kind == "audio":
        return ogg_opus(seed), "audio/ogg; codecs=opus", None
    if kind == "video":
        return mp4(seed), "video/mp4", None
    if kind == "document":
        return pdf(seed, caption or "Sandbox document"), "application/pdf", "document.pdf"
    raise ValueError(f"not a media kind: {kind}")
