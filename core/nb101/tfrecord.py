"""TFRecord files without TensorFlow: framing, CRC-32C checks, a streaming reader and a writer.

A record is: uint64 length (little-endian), masked CRC-32C of those 8 bytes, the payload,
masked CRC-32C of the payload. Corrupt records are reported with their byte offset and
record number; the reader can skip them and resynchronise on the next valid header.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import google_crc32c

_MASK_DELTA = 0xA282EAD8
_HEADER = 12  # length (8) + its CRC (4)
_MAX_RECORD = 1 << 26  # no NB-101 record comes near 64 MiB; larger lengths mean corruption


class CorruptRecordError(ValueError):
    """A record that fails its CRC, is truncated, or does not decode."""

    def __init__(self, path, index: int, offset: int, reason: str):
        super().__init__(f"{path}: record {index} at byte offset {offset}: {reason}")
        self.path, self.index, self.offset, self.reason = path, index, offset, reason


def _crc32c_python(data: bytes) -> int:
    """Bit-by-bit CRC-32C: the oracle for tests and the baseline of benchmarks/bench_store.py."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of `data`, by `google-crc32c` (hardware instructions; nothing to compile)."""
    return google_crc32c.value(data)


def masked_crc(data: bytes) -> int:
    """TFRecord's masked CRC: rotate right by 15 bits and add a constant."""
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


@dataclass(frozen=True)
class Record:
    index: int  # 0-based record number
    offset: int  # byte offset of the record's header
    payload: bytes


def _valid_header(header: bytes) -> int | None:
    """The payload length if `header` is a length with a matching CRC, else None."""
    (length,) = struct.unpack_from("<Q", header)
    (crc,) = struct.unpack_from("<I", header, 8)
    if masked_crc(header[:8]) != crc or length > _MAX_RECORD:
        return None
    return length


def _resync(data: memoryview, start: int) -> int | None:
    """Next offset after `start` where a valid header and payload CRC begin, or None."""
    for pos in range(start + 1, len(data) - _HEADER - 4 + 1):
        length = _valid_header(bytes(data[pos : pos + _HEADER]))
        if length is None or pos + _HEADER + length + 4 > len(data):
            continue
        payload = bytes(data[pos + _HEADER : pos + _HEADER + length])
        (crc,) = struct.unpack_from("<I", data, pos + _HEADER + length)
        if masked_crc(payload) == crc:
            return pos
    return None


def read_records(path, skip_corrupt: bool = False, errors: list | None = None) -> Iterator[Record]:
    """Stream the records of a TFRecord file (memory-mapped, so memory stays bounded).

    Corrupt records raise CorruptRecordError, or with `skip_corrupt` are appended to
    `errors` and skipped. Record numbers count every record found, corrupt ones included.
    """
    import mmap

    path = Path(path)
    with open(path, "rb") as f:
        size = path.stat().st_size
        if size == 0:
            return
        with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mm:
            data = memoryview(mm)
            try:
                yield from _walk(path, data, skip_corrupt, errors)
            finally:
                data.release()


def _walk(path, data: memoryview, skip_corrupt: bool, errors: list | None) -> Iterator[Record]:
    pos, index = 0, 0
    while pos < len(data):
        problem, next_pos = None, None
        if len(data) - pos < _HEADER:
            problem = f"truncated header ({len(data) - pos} bytes left)"
        else:
            length = _valid_header(bytes(data[pos : pos + _HEADER]))
            if length is None:
                problem = "length CRC mismatch"
            elif pos + _HEADER + length + 4 > len(data):
                problem = f"truncated payload (needs {length + 4} bytes, {len(data) - pos - _HEADER} left)"
            else:
                payload = bytes(data[pos + _HEADER : pos + _HEADER + length])
                (crc,) = struct.unpack_from("<I", data, pos + _HEADER + length)
                next_pos = pos + _HEADER + length + 4
                if masked_crc(payload) != crc:
                    problem = "payload CRC mismatch"
                else:
                    yield Record(index, pos, payload)
        if problem is not None:
            error = CorruptRecordError(path, index, pos, problem)
            if not skip_corrupt:
                raise error
            if errors is not None:
                errors.append(error)
            if next_pos is None:  # the length cannot be trusted: look for the next good header
                next_pos = _resync(data, pos)
                if next_pos is None:
                    return
        pos, index = next_pos, index + 1


def frame(payload: bytes) -> bytes:
    """One TFRecord: header, payload and CRCs."""
    header = struct.pack("<Q", len(payload))
    return header + struct.pack("<I", masked_crc(header)) + payload + struct.pack("<I", masked_crc(payload))


def write_records(path, payloads) -> int:
    """Write payloads as a TFRecord file; returns the number written."""
    count = 0
    with open(path, "wb") as f:
        for payload in payloads:
            f.write(frame(payload))
            count += 1
    return count
