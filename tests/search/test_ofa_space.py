"""The 45-gene OFA space: layout, encode/decode, the published reference net, canonicalisation."""

from __future__ import annotations

import numpy as np
import pytest

from search.ofa_space import (
    GENE_CHOICES,
    GENE_NAMES,
    N_GENES,
    OFA_REFERENCE,
    canonical,
    decode,
    describe,
    encode,
    genome_key,
    parse,
    random_genome,
    same_network,
    validate,
)

# SPEC.md §2, flops@595M_top1@80.0_finetune@75 ('-' = the inactive 4th block of stage 1)
SPEC_D = [3, 4, 4, 4, 4]
SPEC_KS = [3, 5, 3, None, 5, 5, 3, 5, 7, 5, 3, 5, 3, 5, 7, 3, 3, 3, 5, 3]
SPEC_E = [3, 4, 3, None, 4, 4, 6, 3, 6, 6, 3, 4, 6, 6, 6, 4, 6, 6, 6, 3]


def test_layout_is_5_depths_20_kernels_20_expands():
    assert N_GENES == 45 == len(GENE_NAMES) == len(GENE_CHOICES)
    assert GENE_NAMES[:5] == ("d1", "d2", "d3", "d4", "d5")
    assert GENE_NAMES[5] == "k1.1" and GENE_NAMES[24] == "k5.4" and GENE_NAMES[25] == "e1.1"
    assert set(GENE_CHOICES[:5]) == {(2, 3, 4)}
    assert set(GENE_CHOICES[5:25]) == {(3, 5, 7)} and set(GENE_CHOICES[25:]) == {(3, 4, 6)}


def test_reference_net_is_the_published_one():
    cfg = decode(OFA_REFERENCE.genome)
    assert cfg["d"] == SPEC_D
    assert [k for k, s in zip(cfg["ks"], SPEC_KS) if s is not None] == [s for s in SPEC_KS if s is not None]
    assert [e for e, s in zip(cfg["e"], SPEC_E) if s is not None] == [s for s in SPEC_E if s is not None]
    assert OFA_REFERENCE.resolution == 236
    assert describe(OFA_REFERENCE.genome) == "d34444 k353_.5535.7535.3573.3353 e343_.4463.6634.6664.6663"


def test_encode_decode_parse_round_trip():
    rng = np.random.default_rng(0)
    for _ in range(50):
        g = random_genome(rng)
        assert encode(**decode(g)) == g
        assert parse(describe(g)) == canonical(g)


def test_canonical_forms_share_one_key():
    ref = list(OFA_REFERENCE.genome)
    variant = list(ref)
    variant[5 + 3], variant[25 + 3] = 7, 6  # the inactive block of stage 1: no effect
    assert variant != ref
    assert same_network(variant, ref) and canonical(variant) == canonical(ref)
    assert genome_key(variant) == genome_key(ref)
    changed = list(ref)
    changed[5 + 4] = 7  # an active block of stage 2
    assert genome_key(changed) != genome_key(ref)
    deeper = list(variant)
    deeper[0] = 4  # stage 1 now has 4 blocks: the formerly inactive genes count
    assert genome_key(deeper) != genome_key([4] + ref[1:])


def test_canonicalisation_matches_the_ofa_network():
    """Two genomes with one canonical form give the same sub-network (same weights, same outputs);
    an active change does not (checked on the ofa package's own sub-networks)."""
    import torch

    from core.models.ofa_subnet import SUPERNET_ARGS, build_supernet

    assert SUPERNET_ARGS["ks_list"] == list(GENE_CHOICES[5]) and SUPERNET_ARGS["expand_ratio_list"] == list(
        GENE_CHOICES[25]
    )
    assert SUPERNET_ARGS["depth_list"] == list(GENE_CHOICES[0])
    supernet = build_supernet(None, seed=0)
    ref = list(OFA_REFERENCE.genome)
    variant = list(ref)
    variant[5 + 3], variant[25 + 3] = 7, 6
    states = []
    for g in (ref, variant):
        supernet.set_active_subnet(**decode(g))
        states.append(supernet.get_active_subnet(preserve_weight=True).state_dict())
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])
    configs = []
    for g in (ref, variant):
        supernet.set_active_subnet(**decode(g))
        configs.append(supernet.get_active_net_config())
    assert configs[0] == configs[1]
    changed = list(ref)
    changed[25 + 4] = 6  # expand ratio of an active block: another network
    supernet.set_active_subnet(**decode(changed))
    assert supernet.get_active_net_config() != configs[0]


@pytest.mark.parametrize(
    ("genome", "message"),
    [
        ([3] * 44, "45 genes"),
        ([3, 4, 4, 4, 5] + [3] * 40, "gene 4 (d5) = 5"),
        ([3] * 5 + [4] + [3] * 39, "gene 5 (k1.1) = 4"),
        ([3] * 44 + [5], "gene 44 (e5.4) = 5"),
    ],
)
def test_invalid_genomes_name_the_gene(genome, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate(genome)
