"""The README's headline on the embedded default, as an assertion on a seeded run: BNS-FT ranks
cells better than NO-FT in every space (thesis 4.4.1, table 4.3's left half).

One supernet per space with the embedded preset's recipe (digits, 8 filters), shortened to 25
epochs, seed 0; 150 cells drawn as the correlation study draws them; one torch thread, so the run
is the same run on any machine. About a minute on an idle 2-core machine.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from cluster.nb101.config import EMBEDDED_RECIPE
from core.nb101.benchmark import Benchmark
from core.ws.cells import CellSampler, space_cells
from core.ws.config import SupernetConfig
from core.ws.evaluate import CellScorer
from core.ws.trainer import SupernetTrainer, load_data

SPACES = ("A1", "A2", "A3", "FULL", "RES", "NRES")  # every space of the embedded benchmark


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_bns_ft_ranks_cells_better_than_no_ft_in_every_space(one_thread):
    bench = Benchmark.default()
    validation = bench.mean("validation_accuracy")
    gaps = {}
    for space in SPACES:
        cells = space_cells(bench, space)
        config = SupernetConfig(**(EMBEDDED_RECIPE | {"space": space, "epochs": 25, "seed": 0}))
        data = load_data(config)
        trainer = SupernetTrainer(config, cells, data)
        trainer.train()
        rows = CellSampler(cells, seed=1000).unique(150)
        specs = [CellSampler(cells, seed=0).spec(r) for r in rows]
        truth = validation[bench.lookup(cells["hash"].to_numpy(zero_copy_only=False)[rows])[0]]
        scorer = CellScorer(trainer.model, data, seed=0)
        rho = {mode: spearmanr(scorer.score(specs, mode), truth).statistic for mode in ("NO-FT", "BNS-FT")}
        gaps[space] = rho["BNS-FT"] - rho["NO-FT"]
    assert all(gap > 0 for gap in gaps.values()), gaps
    assert np.mean(list(gaps.values())) > 0.1, gaps
