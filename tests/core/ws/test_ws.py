"""Supernet training and proxy evaluation: exact resume, sampling variants, NO-FT and BNS-FT."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import torch

from core import checkpoint
from core.data.digits import digits_splits
from core.models.supernet import extract_standalone
from core.nb101.benchmark import Benchmark
from core.ws.cells import CellSampler, space_cells
from core.ws.config import SupernetConfig
from core.ws.evaluate import CellScorer
from core.ws.trainer import SupernetTrainer

TINY = {
    "dataset": "digits",
    "epochs": 4,
    "batch_size": 128,
    "lr": 0.05,
    "bn_momentum": 0.1,
    "stem_filters": 4,
    "num_stacks": 2,
    "modules_per_stack": 1,
}


@pytest.fixture(scope="module")
def cells(real_nb101):
    return space_cells(Benchmark.real_subset(), "A2").slice(0, 400)


@pytest.fixture(scope="module")
def data():
    return digits_splits()


def _weights(trainer):
    return {k: v.clone() for k, v in trainer.model.state_dict().items()}


@pytest.mark.parametrize("variant", ["uniform", "AVG-3"])
def test_resume_from_checkpoint_ends_with_identical_weights(cells, data, variant):
    torch.use_deterministic_algorithms(True)
    try:
        config = SupernetConfig(space="A2", variant=variant, **TINY)
        straight = SupernetTrainer(config, cells, data)
        straight.train()
        first = SupernetTrainer(config, cells, data)
        first.step()
        first.step()
        blob = checkpoint.to_bytes(first.state_dict())
        torch.manual_seed(12345)  # a restarted process starts from other random states
        resumed = SupernetTrainer(config, cells, data)
        resumed.load_state_dict(checkpoint.from_bytes(blob))  # torch.load(weights_only=True)
        assert resumed.position == 2 and resumed.total == 4
        resumed.train()
    finally:
        torch.use_deterministic_algorithms(False)
    a, b = _weights(straight), _weights(resumed)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert [h["loss"] for h in straight.history] == [h["loss"] for h in resumed.history]


def test_training_lowers_the_loss(cells, data):
    trainer = SupernetTrainer(SupernetConfig(space="A2", **(TINY | {"epochs": 8})), cells, data)
    history = trainer.train()
    assert history[-1]["loss"] < history[0]["loss"] - 0.3


def test_pro_rata_draws_in_proportion_to_parameters():
    table = pa.table(
        {
            "hash": ["a" * 32, "b" * 32, "c" * 32],
            "num_vertices": [2, 2, 2],
            "adj_bits": [1, 1, 1],
            "ops": pa.FixedSizeListArray.from_arrays(pa.array([255] * 15, pa.uint8()), 5),
            "params_16": [100, 300, 600],
        }
    )
    sampler = CellSampler(table, seed=0, pro_rata=True)
    draws = sampler.rng.choice(3, 30_000, p=sampler.p)
    assert np.allclose(np.bincount(draws) / 30_000, [0.1, 0.3, 0.6], atol=0.01)
    assert CellSampler(table, seed=0).p is None  # uniform
    assert len(set(CellSampler(table, seed=1).unique(3))) == 3


def test_bns_ft_equals_the_standalone_network_with_batch_statistics(cells, data):
    config = SupernetConfig(space="A2", **TINY)
    trainer = SupernetTrainer(config, cells, data)
    trainer.train()
    scorer = CellScorer(trainer.model, data, bn_batch=256, seed=0)
    sampler = CellSampler(cells, seed=0)
    specs = [sampler.spec(r) for r in range(5)]
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    bns = scorer.score(specs, "BNS-FT")
    after = trainer.model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # the supernet is left as it was
    for spec, got in zip(specs, bns):
        net = extract_standalone(trainer.model, spec)
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.reset_running_stats()
                m.momentum = None  # cumulative average over one batch = that batch's statistics
        net.train()
        with torch.no_grad():
            net(scorer.bn_x)
            net.eval()
            logits = net(data["validation"].x)
        n = len(data["validation"])
        acc = int((logits.argmax(1) == data["validation"].y).sum()) / n
        # equal up to near-ties: the two graphs sum in another order, so an image whose two best
        # logits are within float noise may flip (seen: 1 of 359 on one CPU, none on another)
        top2 = logits.topk(2, dim=1).values
        ties = int((top2[:, 0] - top2[:, 1] < 1e-4).sum())
        assert abs(got - acc) <= ties / n + 1e-9
    no_ft = scorer.score(specs, "NO-FT")
    assert np.array_equal(no_ft, scorer.score(specs, "NO-FT"))
    with pytest.raises(ValueError, match="mode must be one of"):
        scorer.score(specs, "FT")


def test_bad_recipe_is_refused():
    with pytest.raises(ValueError, match="cifar10_root"):
        SupernetConfig(dataset="cifar10")
    with pytest.raises(ValueError, match="unknown sub-space"):
        SupernetConfig(space="A7")
