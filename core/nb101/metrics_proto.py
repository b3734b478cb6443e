"""NB-101's `ModelMetrics` protobuf, decoded and encoded by hand (no TensorFlow, no protoc).

    message EvaluationData {          message ModelMetrics {
      double current_epoch = 1;         repeated EvaluationData evaluation_data = 1;
      double training_time = 2;         int32 trainable_parameters = 2;
      double train_accuracy = 3;        double total_time = 3;
      double validation_accuracy = 4; }
      double test_accuracy = 5;
      string checkpoint_path = 6;
    }

`evaluation_data[2]` is the final epoch, `[1]` the halfway point (NB-101's convention).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
EVAL_FIELDS = ("current_epoch", "training_time", "train_accuracy", "validation_accuracy", "test_accuracy")


@dataclass
class ModelMetrics:
    evaluation_data: list[dict] = field(default_factory=list)
    trainable_parameters: int = 0
    total_time: float = 0.0


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result, shift = 0, 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


def _fields(buf: bytes) -> Iterator[tuple[int, int, object]]:
    """(field number, wire type, value) of each field; raises ValueError on malformed input."""
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            value, pos = _varint(buf, pos)
        elif wire == _I64:
            if pos + 8 > len(buf):
                raise ValueError(f"truncated 64-bit field {number}")
            (value,) = struct.unpack_from("<d", buf, pos)
            pos += 8
        elif wire == _LEN:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise ValueError(f"field {number} runs past the end of the message")
            value = buf[pos : pos + size]
            pos += size
        elif wire == _I32:
            if pos + 4 > len(buf):
                raise ValueError(f"truncated 32-bit field {number}")
            value = buf[pos : pos + 4]
            pos += 4
        else:
            raise ValueError(f"unsupported wire type {wire} for field {number}")
        yield number, wire, value


def _expect(number: int, wire: int, expected: int, name: str) -> None:
    if wire != expected:
        raise ValueError(f"field {number} ({name}) has wire type {wire}, expected {expected}")


def _evaluation(buf: bytes) -> dict:
    out = dict.fromkeys(EVAL_FIELDS, 0.0)
    for number, wire, value in _fields(buf):
        if 1 <= number <= 5:
            _expect(number, wire, _I64, EVAL_FIELDS[number - 1])
            out[EVAL_FIELDS[number - 1]] = value
    return out


def decode(buf: bytes) -> ModelMetrics:
    """Parse a serialized ModelMetrics; unknown fields are skipped, malformed input raises."""
    metrics = ModelMetrics()
    for number, wire, value in _fields(buf):
        if number == 1:
            _expect(number, wire, _LEN, "evaluation_data")
            metrics.evaluation_data.append(_evaluation(value))
        elif number == 2:
            _expect(number, wire, _VARINT, "trainable_parameters")
            metrics.trainable_parameters = value - (1 << 64) if value >= 1 << 63 else value
        elif number == 3:
            _expect(number, wire, _I64, "total_time")
            metrics.total_time = value
    return metrics


def _put_varint(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def encode(metrics: ModelMetrics) -> bytes:
    """Serialize a ModelMetrics (zero doubles are written too; decoding gives them back)."""
    out = bytearray()
    for ev in metrics.evaluation_data:
        body = b"".join(
            _put_varint((i << 3) | _I64) + struct.pack("<d", float(ev[name]))
            for i, name in enumerate(EVAL_FIELDS, start=1)
        )
        out += _put_varint((1 << 3) | _LEN) + _put_varint(len(body)) + body
    out += _put_varint((2 << 3) | _VARINT) + _put_varint(metrics.trainable_parameters)
    out += _put_varint((3 << 3) | _I64) + struct.pack("<d", metrics.total_time)
    return bytes(out)
