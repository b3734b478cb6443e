"""TFRecord framing, CRC-32C and the ModelMetrics wire format on real and corrupted records."""

from __future__ import annotations

import json

import pytest

from core.nb101 import metrics_proto
from core.nb101 import native as native_mod
from core.nb101.tfrecord import CorruptRecordError, _crc32c_python, crc32c, frame, read_records, write_records

RECORD = "nasbench_rs_test_record_00005c14_epochs4"


def test_crc32c_check_values():
    # the standard CRC-32C check value, and RFC 3720's 32 zero bytes
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(bytes(32)) == 0x8A9136AA
    assert _crc32c_python(b"123456789") == 0xE3069283
    assert native_mod.library() is not None


def test_real_record_decodes_to_its_published_content(nb101_dir):
    expected = json.loads((nb101_dir / f"{RECORD}.json").read_text())
    records = list(read_records(nb101_dir / f"{RECORD}.tfrecord"))
    assert len(records) == 1 and records[0].offset == 0
    assert len(records[0].payload) == expected["tfrecord_framing"]["length_u64_le"]
    row = json.loads(records[0].payload)
    assert row[:4] == expected["json_row"][:4]
    import base64

    metrics = metrics_proto.decode(base64.b64decode(row[4]))
    decoded = expected["decoded_ModelMetrics"]
    assert metrics.evaluation_data == decoded["evaluation_data"]  # exact doubles
    assert metrics.trainable_parameters == decoded["trainable_parameters"]
    assert metrics.total_time == decoded["total_time"]
    # and re-framing the payload gives back the original bytes, CRCs included
    assert frame(records[0].payload) == (nb101_dir / f"{RECORD}.tfrecord").read_bytes()


def test_metrics_round_trip_and_malformed_input():
    m = metrics_proto.ModelMetrics(
        [dict.fromkeys(metrics_proto.EVAL_FIELDS, 0.25) for _ in range(3)], 123_456, 9.5
    )
    assert metrics_proto.decode(metrics_proto.encode(m)) == m
    good = metrics_proto.encode(m)
    with pytest.raises(ValueError, match="truncated|past the end"):
        metrics_proto.decode(good[:-3])
    with pytest.raises(ValueError, match="wire type"):
        metrics_proto.decode(bytes([(2 << 3) | 1]) + bytes(8))  # parameters as a double


def _three_records(tmp_path):
    path = tmp_path / "three.tfrecord"
    write_records(path, [b"first", b"second-record", b"third"])
    return path


def test_reader_streams_records_with_offsets(tmp_path):
    records = list(read_records(_three_records(tmp_path)))
    assert [r.payload for r in records] == [b"first", b"second-record", b"third"]
    assert [r.offset for r in records] == [0, 21, 21 + 29]
    assert [r.index for r in records] == [0, 1, 2]


def test_payload_crc_error_names_record_and_offset(tmp_path):
    path = _three_records(tmp_path)
    data = bytearray(path.read_bytes())
    data[21 + 12 + 3] ^= 0xFF  # a byte inside the second payload
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptRecordError, match=r"record 1 at byte offset 21: payload CRC mismatch"):
        list(read_records(path))
    errors = []
    kept = list(read_records(path, skip_corrupt=True, errors=errors))
    assert [r.payload for r in kept] == [b"first", b"third"]
    assert len(errors) == 1 and errors[0].offset == 21


def test_corrupt_length_resynchronises_on_next_record(tmp_path):
    path = _three_records(tmp_path)
    data = bytearray(path.read_bytes())
    data[21] ^= 0x40  # the second record's length
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptRecordError, match="record 1 at byte offset 21: length CRC mismatch"):
        list(read_records(path))
    errors = []
    kept = list(read_records(path, skip_corrupt=True, errors=errors))
    assert [r.payload for r in kept] == [b"first", b"third"]
    assert kept[1].offset == 50 and len(errors) == 1


def test_truncated_file(tmp_path):
    path = _three_records(tmp_path)
    path.write_bytes(path.read_bytes()[:-6])
    with pytest.raises(CorruptRecordError, match=r"record 2 at byte offset 50: truncated payload"):
        list(read_records(path))
    errors = []
    assert len(list(read_records(path, skip_corrupt=True, errors=errors))) == 2
    assert "truncated" in str(errors[0])
