"""RS and GS on hand-built spaces, the regret of eq. 4.1, and the evaluator's repeat draws."""

from __future__ import annotations

import numpy as np
import pytest

from core.nb101.space import encode_matrix
from core.nb101.spec import CellSpec
from search.greedy import GreedySearch
from search.random_search import RandomSearch
from search.regret import Evaluator, incumbents, regret_curve, trajectory_table
from search.runner import run_search
from search.space_data import SpaceData

C3, C1, MP = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"
OP_LABEL = {C3: 0, C1: 1, MP: 2}


def tiny_space(scores: dict[str, float], name: str = "FULL") -> tuple[SpaceData, dict[str, str]]:
    """The 7 cells with at most 3 vertices, each with a fixed validation score (3 equal repeats)."""
    cells = {"E": CellSpec([[0, 1], [0, 0]], ["input", "output"])}
    for op, tag in ((C3, "c3"), (C1, "c1"), (MP, "mp")):
        cells[f"C_{tag}"] = CellSpec([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", op, "output"])
        cells[f"R_{tag}"] = CellSpec([[0, 1, 1], [0, 0, 1], [0, 0, 0]], ["input", op, "output"])
    names = sorted(cells, key=lambda k: cells[k].hash)
    ops = np.full((7, 5), 255, dtype=np.uint8)
    for i, k in enumerate(names):
        for j, op in enumerate(cells[k].ops[1:-1]):
            ops[i, j] = OP_LABEL[op]
    val = np.array([[scores[k]] * 3 for k in names])
    space = SpaceData(
        name=name,
        epochs=108,
        hashes=np.array([cells[k].hash for k in names]),
        num_vertices=np.array([cells[k].num_vertices for k in names]),
        adj_bits=np.array([encode_matrix(cells[k].matrix) for k in names]),
        ops=ops,
        validation=val,
        training_time=np.full((7, 3), 10.0),
        test_mean=val[:, 0] - 0.01,
    )
    return space, {k: cells[k].hash for k in names}


SCORES = {"E": 0.10, "C_c3": 0.50, "C_c1": 0.40, "C_mp": 0.20, "R_c3": 0.90, "R_c1": 0.60, "R_mp": 0.30}


def test_greedy_walks_the_expected_path():
    space, h = tiny_space(SCORES)
    by_hash = {v: k for k, v in h.items()}
    gs = GreedySearch(space, seed=0)
    gs._starts = np.array([space.row(h["C_mp"])] + [i for i in range(7) if i != space.row(h["C_mp"])])
    walked = []
    while (proposal := gs.ask()) is not None:
        walked.append(by_hash[proposal.candidate])
        gs.tell(proposal, SCORES[by_hash[proposal.candidate]])
    # C_mp's neighbourhood, then C_c3's new neighbour, then R_c3's new ones; then nothing is left
    assert walked == ["C_mp", "C_c3", "C_c1", "R_mp", "R_c3", "R_c1", "E"]
    assert gs.counters["moves"] == 2 and gs.counters["restarts"] == 1
    assert gs.counters["reused_scores"] == 4  # C_c1, C_mp around C_c3; R_mp, C_c3 around R_c3
    assert gs.counters["skipped_untabulated"] > 0  # 4-vertex additions are not in this table
    assert gs.finished


def test_greedy_never_pays_twice_and_waits_for_outstanding_scores():
    space, h = tiny_space(SCORES)
    gs = GreedySearch(space, seed=3)
    first = gs.ask()
    assert gs.ask() is None  # the start must be scored before its neighbourhood is known
    gs.tell(first, 0.5)
    asked = [gs.ask() for _ in range(3)]
    assert None not in asked[:1] and len(set(a.candidate for a in asked if a)) == len([a for a in asked if a])
    for a in asked:
        if a:
            gs.tell(a, 0.1)
    seen = [first.candidate, *[a.candidate for a in asked if a]]
    while (proposal := gs.ask()) is not None:
        assert proposal.candidate not in seen
        seen.append(proposal.candidate)
        gs.tell(proposal.index, 0.2)  # a proposal is told by its handle or its index
    assert sorted(seen) == sorted(h.values())


def test_greedy_in_a_subspace_stays_inside_it():
    space, h = tiny_space(SCORES, name="RES")
    res = [h[k] for k in ("R_c3", "R_c1", "R_mp", "E")]
    keep = [space.row(x) for x in res]
    sub = SpaceData(
        "RES",
        108,
        space.hashes[keep],
        space.num_vertices[keep],
        space.adj_bits[keep],
        space.ops[keep],
        space.validation[keep],
        space.training_time[keep],
        space.test_mean[keep],
    )
    result = run_search("GS", sub, seed=0, budget=100, validation="mean")
    assert set(result.trajectory["hash"].to_pylist()) <= set(res)
    assert result.stats["evaluations"] == 4 and result.stats["exhausted"]


def test_random_search_is_unique_seeded_and_exhaustive():
    hashes = np.array([f"{i:032x}" for i in range(50)])
    a = RandomSearch(hashes, 7)
    drawn = [a.ask().candidate for _ in range(50)]
    assert sorted(drawn) == sorted(hashes.tolist()) and a.ask() is None and a.finished
    b = RandomSearch(hashes, 7)
    assert [b.ask().candidate for _ in range(50)] == drawn
    c = RandomSearch(hashes, 8)
    assert [c.ask().candidate for _ in range(50)] != drawn


def test_incumbents_and_regret_by_hand():
    assert incumbents([0.5, 0.7, 0.7, 0.6, 0.9]).tolist() == [0, 1, 1, 1, 4]
    regret = regret_curve([0.5, 0.7, 0.7, 0.6, 0.9], [0.40, 0.80, 0.95, 0.1, 0.85], best_test=0.96)
    assert np.allclose(regret, [0.56, 0.16, 0.16, 0.16, 0.11])


def test_trajectory_clock_and_regret():
    t = trajectory_table(["a", "b", "c"], [0.2, 0.1, 0.3], [0.5, 0.9, 0.7], [10.0, 5.0, 2.5], best_test=0.9)
    assert t["step"].to_pylist() == [1, 2, 3]
    assert t["sim_time"].to_pylist() == [10.0, 15.0, 17.5]
    assert np.allclose(t["regret"].to_numpy(), [0.4, 0.4, 0.2])


def test_evaluator_draws_one_repeat_or_averages():
    space, h = tiny_space(SCORES)
    space.validation = space.validation + np.array([0.0, 0.01, 0.02])
    space.training_time = np.tile([10.0, 20.0, 30.0], (7, 1))
    draws = [Evaluator(space, "sample", seed=s)(h["R_c3"]) for s in range(60)]
    assert {round(d[0] - 0.90, 4) for d in draws} == {0.0, 0.01, 0.02}
    assert all(d[2] == 10.0 * (1 + round((d[0] - 0.9) * 100)) for d in draws)  # its own repeat's time
    val, test, cost = Evaluator(space, "mean")(h["R_c3"])
    assert val == pytest.approx(0.91) and cost == 20.0 and test == pytest.approx(0.89)
    with pytest.raises(ValueError, match="validation mode"):
        Evaluator(space, "median")
    with pytest.raises(KeyError, match="not tabulated"):
        Evaluator(space, "mean")("0" * 32)


def test_search_on_the_real_subset_reproduces_and_reports(real_nb101):
    from core.nb101.benchmark import Benchmark

    space = SpaceData.from_benchmark(Benchmark.real_subset(), "A3")
    a = run_search("GS", space, seed=5, budget=300)
    b = run_search("GS", space, seed=5, budget=300)
    assert a.trajectory.equals(b.trajectory)
    assert a.stats["skipped_untabulated"] > 0  # 36% subset: some neighbours are missing
    assert len(set(a.trajectory["hash"].to_pylist())) == 300  # no cell paid twice
    regret = a.trajectory["regret"].to_numpy()
    assert (regret >= 0).all() and regret[-1] <= regret[0]
