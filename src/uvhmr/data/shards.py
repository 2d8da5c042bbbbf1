"""One shard = one file of named numpy arrays, memory-mapped for reading.

Layout (all integers little-endian)::

    bytes 0-7    magic  b"UVHMRSHD"
    bytes 8-15   uint64 H: length of the header that follows (JSON, UTF-8, space-padded so the
                 data starts on a 64-byte boundary)
    bytes 16-    header {"format": "uvhmr-shard", "version": 1, "size": total file bytes,
                 "attrs": {...}, "arrays": {name: {"dtype": "<f4", "shape": [...],
                 "offset": bytes from the data start, "nbytes": ..., "crc32": ...}}}
    16 + H -     the arrays' raw C-order bytes, each starting on a 64-byte boundary

Readers check the magic, the header and the file size when they open a shard (cheap), and the
CRC-32 of every array on `verify()` (SampleDataset does, once per process and file); every failure
is a `ShardError` whose message names the file and says how to recover. Writing is atomic
(io.atomic_path) and deterministic: the same arrays and attrs give the same bytes.
"""
from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np

from uvhmr.io import atomic_path

MAGIC = b"UVHMRSHD"
VERSION = 1
ALIGN = 64
SUFFIX = ".shard"
_REBUILD = "rebuild it (delete the split's folder and rerun the workflow's dataset rule)"


# Shards whose CRCs passed in this process: (resolved path, inode, size, mtime_ns).
_VERIFIED: set[tuple] = set()


class ShardError(ValueError):
    """A shard that cannot be read: missing, truncated, corrupt or of another format version."""


def _pad(n: int) -> int:
    return (-n) % ALIGN


def _crc(a: np.ndarray) -> int:
    mv = memoryview(np.ascontiguousarray(a).reshape(-1).view(np.uint8))
    crc = 0
    for i in range(0, len(mv), 1 << 24):           # chunked: a memmap is not read at once
        crc = zlib.crc32(mv[i:i + (1 << 24)], crc)
    return crc


def write_shard(path: str | Path, arrays: dict[str, np.ndarray], attrs: dict | None = None) -> int:
    """Write `arrays` (name -> array, any numeric dtype) and JSON-able `attrs` atomically.
    -> the file size in bytes."""
    arrays = {k: np.ascontiguousarray(v) for k, v in arrays.items()}
    meta, off = {}, 0
    for name, a in arrays.items():
        if a.dtype.hasobject:
            raise TypeError(f"shard array {name!r}: object arrays cannot be stored")
        meta[name] = {"dtype": a.dtype.str, "shape": list(a.shape), "offset": off, "nbytes": int(a.nbytes),
                      "crc32": _crc(a)}
        off += a.nbytes + _pad(a.nbytes)
    head = {"format": "uvhmr-shard", "version": VERSION, "attrs": attrs or {}, "arrays": meta}
    # The size depends on the header's length, which depends on the size's digits: iterate to
    # the fixed point (two rounds at most, the padding absorbs most changes).
    size = -1
    while True:
        head["size"] = max(size, 0)
        text = json.dumps(head, sort_keys=True, separators=(",", ":")).encode()
        hlen = len(text) + _pad(16 + len(text))
        if 16 + hlen + off == size:
            break
        size = 16 + hlen + off
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(MAGIC + struct.pack("<Q", hlen) + text + b" " * (hlen - len(text)))
        for a in arrays.values():
            fh.write(memoryview(a.reshape(-1).view(np.uint8)))
            fh.write(b"\0" * _pad(a.nbytes))
    return size


class Shard:
    """A shard opened for reading: `shard["name"]` is a read-only memory-mapped array.

    Picklable (DataLoader workers with the spawn start method reopen the file lazily)."""

    def __init__(self, path: str | Path, verify: bool = False):
        self.path = Path(path)
        self._mm = None
        self._read_header()
        if verify:
            self.verify()

    def _fail(self, what: str):
        raise ShardError(f"{self.path}: {what}; {_REBUILD}")

    def _read_header(self):
        if not self.path.is_file():
            raise ShardError(f"{self.path}: no such shard; {_REBUILD}")
        actual = self.path.stat().st_size
        with open(self.path, "rb") as fh:
            pre = fh.read(16)
            if len(pre) < 16 or pre[:8] != MAGIC:
                self._fail("not a uvhmr shard (bad magic bytes)" if len(pre) >= 8 else
                           f"truncated: {actual} bytes, too short for a shard header")
            (hlen,) = struct.unpack("<Q", pre[8:16])
            if 16 + hlen > actual:
                self._fail(f"truncated: {actual} bytes, but its header alone needs {16 + hlen}")
            raw = fh.read(hlen)
        try:
            head = json.loads(raw.decode().rstrip(" "))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            self._fail(f"corrupt header ({e})")
        if head.get("format") != "uvhmr-shard":
            self._fail("not a uvhmr shard (unknown format in its header)")
        if head.get("version") != VERSION:
            self._fail(f"shard format version {head.get('version')}, this uvhmr reads version {VERSION}")
        if actual != head["size"]:
            self._fail(f"truncated or padded: {actual} bytes on disk, its header says {head['size']}")
        self.header = head
        self.attrs = head["attrs"]
        self._data = 16 + hlen

    def _map(self):
        if self._mm is None:
            self._mm = np.memmap(self.path, dtype=np.uint8, mode="r")
        return self._mm

    def keys(self):
        return self.header["arrays"].keys()

    def __contains__(self, name: str) -> bool:
        return name in self.header["arrays"]

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            m = self.header["arrays"][name]
        except KeyError:
            raise KeyError(f"{self.path}: no array {name!r} (it holds {', '.join(self.keys())})") from None
        start = self._data + m["offset"]
        raw = self._map()[start:start + m["nbytes"]]
        return raw.view(np.dtype(m["dtype"])).reshape(m["shape"])

    def verify(self) -> None:
        """Check every array's CRC-32 (reads the whole file, once per process: a file already
        verified, unchanged since (same inode, size and mtime), is not read again)."""
        st = self.path.stat()
        key = (str(self.path.resolve()), st.st_ino, st.st_size, st.st_mtime_ns)
        if key in _VERIFIED:
            return
        for name, m in self.header["arrays"].items():
            if _crc(self[name]) != m["crc32"]:
                self._fail(f"corrupt: array {name!r} fails its CRC-32 check")
        _VERIFIED.add(key)

    def __getstate__(self):
        return {"path": self.path, "header": self.header, "attrs": self.attrs, "_data": self._data, "_mm": None}

    def __setstate__(self, state):
        self.__dict__.update(state)


def pack_mask(mask: np.ndarray) -> np.ndarray:
    """(..., H, W) bool -> (..., ceil(H * W / 8)) uint8 bits, row-major."""
    flat = mask.reshape(mask.shape[:-2] + (-1,))
    return np.packbits(flat, axis=-1)


def unpack_mask(bits: np.ndarray, height: int, width: int) -> np.ndarray:
    """Inverse of pack_mask for one (n,) row -> (H, W) bool."""
    return np.unpackbits(np.asarray(bits), count=height * width).reshape(height, width).astype(bool)
