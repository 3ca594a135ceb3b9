"""The bytes under the CSV reader: counted and hashed (sha256) as they are read, gzip undone on the fly."""

from __future__ import annotations

import hashlib
import zlib
from typing import IO

GZIP_MAGIC = b"\x1f\x8b"


class HashingStream:
    """Counts and hashes the stored bytes as they are read (the dataset version's sha256)."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self.sha256 = hashlib.sha256()
        self.bytes = 0

    def read(self, size: int) -> bytes:
        data = self._raw.read(size)
        if data:
            self.sha256.update(data)
            self.bytes += len(data)
        return data or b""


class GunzipStream:
    """Streaming gzip decompression (several concatenated members are allowed, as gzip does)."""

    def __init__(self, raw: HashingStream, prefix: bytes) -> None:
        self._raw = raw
        self._pending = prefix
        self._inflater = zlib.decompressobj(wbits=31)
        self._in_member = False
        self._eof = False

    def read(self, size: int) -> bytes:
        out: list[bytes] = []
        produced = 0
        while produced < size and not self._eof:
            data, self._pending = (self._pending or self._raw.read(1024 * 1024)), b""
            if not data:
                if self._in_member:
                    raise zlib.error("the gzip data ends before its end marker (a truncated file)")
                self._eof = True
                break
            piece = self._inflater.decompress(data, size - produced)
            self._in_member = True
            if self._inflater.eof:
                rest = self._inflater.unused_data
                self._inflater = zlib.decompressobj(wbits=31)
                self._in_member = False
                # NUL padding after the last member is tolerated, as gzip itself does.
                self._pending = rest if rest.strip(b"\x00") else b""
            else:
                self._pending = self._inflater.unconsumed_tail
            out.append(piece)
            produced += len(piece)
        return b"".join(out)
