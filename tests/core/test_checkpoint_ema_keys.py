"""core.checkpoint (one format, atomic and private), core.ema (one EMA), core.keys (one hash)."""

from __future__ import annotations

import hashlib
import json
import stat

import pytest
import torch

from core import checkpoint
from core.ema import EMA
from core.keys import stable_key


def test_checkpoint_round_trip_is_private_and_refuses_code(tmp_path):
    weights = torch.arange(6.0).reshape(2, 3)
    state = {"format": "toy-1", "epoch": 3, "weights": weights, "history": [{"loss": 0.5}]}
    path = checkpoint.save(tmp_path / "ck" / "last.pt", state)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert not list(path.parent.glob(".*tmp*"))  # the temporary file was renamed, not left behind
    back = checkpoint.load(path)
    assert back["epoch"] == 3 and torch.equal(back["weights"], weights)
    assert back["history"] == [{"loss": 0.5}]
    checkpoint.check_format(back, "toy-1")
    with pytest.raises(ValueError, match="'toy-1', expected 'toy-2'"):
        checkpoint.check_format(back, "toy-2")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    import io
    import pickle

    buffer = io.BytesIO()
    pickle.dump({"x": Evil()}, buffer)
    with pytest.raises(pickle.UnpicklingError):
        checkpoint.from_bytes(buffer.getvalue())


def test_stable_key_is_the_sha256_of_canonical_json():
    value = {"b": [1, 2.5], "a": {"z": None, "y": "text"}}
    expected = hashlib.sha256(json.dumps(value, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert stable_key(value) == expected[:20]
    assert stable_key({"a": {"y": "text", "z": None}, "b": [1, 2.5]}) == stable_key(value)  # key order
    assert stable_key(value, length=12) == expected[:12]
    assert stable_key({"b": [2.5, 1]}) != stable_key({"b": [1, 2.5]})  # list order matters


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))


@pytest.mark.parametrize("buffers", ["average", "copy"])
def test_ema_matches_the_hand_computed_average(buffers):
    live = _model()
    ema = EMA(live, decay=0.9, warmup=False, buffers=buffers)
    start = {k: v.clone() for k, v in live.state_dict().items()}
    with torch.no_grad():
        for p in live.parameters():
            p.add_(1.0)
    live.train()(torch.randn(8, 3))  # moves the batch-norm statistics
    ema.update(live)
    got, now = ema.module.state_dict(), live.state_dict()
    weight = "0.weight"
    assert torch.allclose(got[weight], 0.9 * start[weight] + 0.1 * now[weight])
    mean = "1.running_mean"
    expected = 0.9 * start[mean] + 0.1 * now[mean] if buffers == "average" else now[mean]
    assert torch.allclose(got[mean], expected)
    assert got["1.num_batches_tracked"] == now["1.num_batches_tracked"]  # integers are copied


def test_ema_warmup_and_state():
    ema = EMA(_model(), decay=0.999)
    assert ema.current_decay() == pytest.approx(2 / 11)  # (1 + n) / (10 + n) at the first update
    ema.update(_model())
    other = EMA(_model(), decay=0.999)
    other.load_state_dict(ema.state_dict())
    assert other.updates == 1 and other.current_decay() == pytest.approx(3 / 12)
    with pytest.raises(ValueError, match="decay"):
        EMA(_model(), decay=1.0)
