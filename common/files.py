"""Serving stored files back to browsers without letting them run as pages.

The content type comes from the file's own first bytes, never from a name a user chose:
a PNG+HTML polyglot uploaded as ``x.html`` is served as ``image/png``. Images are served
inline; anything else as an attachment. Every file answer also carries ``nosniff`` and a
sandboxing Content-Security-Policy, so that even a file a browser would render as a
document gets an opaque origin and runs no script."""
from __future__ import annotations

import os
from typing import BinaryIO

from django.http import FileResponse

# (magic bytes at offset 0, content type, extension); WebP is RIFF....WEBP.
_SIGNATURES: tuple[tuple[bytes, str, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
    (b"\xff\xd8\xff", "image/jpeg", ".jpg"),
    (b"GIF87a", "image/gif", ".gif"),
    (b"GIF89a", "image/gif", ".gif"),
    (b"BM", "image/bmp", ".bmp"),
    (b"II*\x00", "image/tiff", ".tif"),
    (b"MM\x00*", "image/tiff", ".tif"),
    (b"PK\x03\x04", "application/zip", ".zip"),
)
FILE_CSP = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"


def sniff_type(head: bytes) -> tuple[str, str]:
    """(content type, extension) of a file from its first 16 bytes; unknown bytes are
    ``application/octet-stream``."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp", ".webp"
    for magic, content_type, extension in _SIGNATURES:
        if head.startswith(magic):
            return content_type, extension
    return "application/octet-stream", ""


def file_response(fh: BinaryIO, *, filename: str) -> FileResponse:
    """A FileResponse for ``fh``: images inline, named with the extension of their sniffed
    type (``x.html`` holding a PNG is ``x.png``); anything else as an attachment of
    ``application/octet-stream`` (or zip); ``nosniff`` and a sandboxing CSP on both."""
    head = fh.read(16)
    fh.seek(0)
    content_type, extension = sniff_type(head)
    inline = content_type.startswith("image/")
    stem, named_extension = os.path.splitext(os.path.basename(filename))
    response = FileResponse(fh, content_type=content_type, as_attachment=not inline,
                            filename=f"{stem or 'file'}{extension or named_extension}")
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = FILE_CSP
    return response
