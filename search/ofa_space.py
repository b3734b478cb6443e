"""The Once-for-All MobileNetV3 search space of thesis 5.3.3 as 45 categorical genes.

The supernet `ofa_mbv3_d234_e346_k357_w1.2` has 5 stages of up to 4 inverted-residual blocks.
A network is chosen by a depth per stage (2, 3 or 4) and a kernel size (3, 5, 7) and expand
ratio (3, 4, 6) per block: 5 + 20 + 20 = 45 genes, in that order (`GENE_NAMES`). This is the
layout of the `ofa` package's `set_active_subnet(ks=..., e=..., d=...)`: `decode` gives those
three lists, `encode` goes back.

Blocks beyond a stage's depth are not in the network, so their kernel and expand genes have no
effect: `canonical` sets them to the first choice (3), and `genome_key` hashes the canonical
genome, so two genomes of the same network share one key (and one cached evaluation). The
optimiser keeps the raw genome: an inactive gene may drift and matter later, when a mutation
deepens its stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from core.keys import stable_key

STAGES = 5
BLOCKS_PER_STAGE = 4
DEPTHS = (2, 3, 4)
KERNELS = (3, 5, 7)
EXPANDS = (3, 4, 6)
N_BLOCKS = STAGES * BLOCKS_PER_STAGE
N_GENES = STAGES + 2 * N_BLOCKS  # 45
SUPERNET = "ofa_mbv3_d234_e346_k357_w1.2"

GENE_NAMES: tuple[str, ...] = (
    tuple(f"d{s + 1}" for s in range(STAGES))
    + tuple(f"k{s + 1}.{b + 1}" for s in range(STAGES) for b in range(BLOCKS_PER_STAGE))
    + tuple(f"e{s + 1}.{b + 1}" for s in range(STAGES) for b in range(BLOCKS_PER_STAGE))
)
GENE_CHOICES: tuple[tuple[int, ...], ...] = (DEPTHS,) * STAGES + (KERNELS,) * N_BLOCKS + (EXPANDS,) * N_BLOCKS

Genome = tuple[int, ...]


def validate(genome: Sequence[int]) -> Genome:
    """The genome as a tuple of ints; a wrong length or value is a ValueError naming the gene."""
    values = tuple(genome)
    if len(values) != N_GENES:
        raise ValueError(
            f"an OFA genome has {N_GENES} genes (5 depths, 20 kernels, 20 expands), got {len(values)}"
        )
    out = []
    for i, (value, choices) in enumerate(zip(values, GENE_CHOICES)):
        if isinstance(value, bool) or int(value) != value or int(value) not in choices:
            raise ValueError(f"gene {i} ({GENE_NAMES[i]}) = {value!r}: expected one of {list(choices)}")
        out.append(int(value))
    return tuple(out)


def encode(ks: Sequence[int], e: Sequence[int], d: Sequence[int]) -> Genome:
    """OFA's `ks` (20), `e` (20) and `d` (5) lists as one genome (depths, kernels, expands)."""
    if len(ks) != N_BLOCKS or len(e) != N_BLOCKS or len(d) != STAGES:
        raise ValueError(
            f"expected {N_BLOCKS} kernel sizes, {N_BLOCKS} expand ratios and {STAGES} depths, "
            f"got {len(ks)}, {len(e)}, {len(d)}"
        )
    return validate(list(d) + list(ks) + list(e))


def decode(genome: Sequence[int]) -> dict[str, list[int]]:
    """{'ks': 20 kernel sizes, 'e': 20 expand ratios, 'd': 5 depths}: `set_active_subnet(**decode(g))`."""
    g = validate(genome)
    return {
        "ks": list(g[STAGES : STAGES + N_BLOCKS]),
        "e": list(g[STAGES + N_BLOCKS :]),
        "d": list(g[:STAGES]),
    }


def active_blocks(genome: Sequence[int]) -> np.ndarray:
    """Boolean (20,): which blocks are in the network (block b of stage s when b < depth_s)."""
    g = validate(genome)
    depth = np.asarray(g[:STAGES])
    return (np.arange(BLOCKS_PER_STAGE)[None, :] < depth[:, None]).reshape(-1)


def canonical(genome: Sequence[int]) -> Genome:
    """The genome with the kernel and expand genes of inactive blocks set to 3 (their first choice):
    every genome of one network has the same canonical form."""
    g = list(validate(genome))
    for b, active in enumerate(active_blocks(g)):
        if not active:
            g[STAGES + b] = KERNELS[0]
            g[STAGES + N_BLOCKS + b] = EXPANDS[0]
    return tuple(g)


def same_network(a: Sequence[int], b: Sequence[int]) -> bool:
    return canonical(a) == canonical(b)


def genome_key(genome: Sequence[int]) -> str:
    """Short stable hash of the canonical genome (the architecture's identity)."""
    return stable_key(list(canonical(genome)), length=16)


def describe(genome: Sequence[int]) -> str:
    """Readable form, one group per stage, `_` for an inactive block:
    'd34444 k353_.5535.7535.3573.3353 e343_.4463.6634.6664.6663'."""
    g = validate(genome)
    active = active_blocks(g).reshape(STAGES, BLOCKS_PER_STAGE)
    cfg = decode(g)

    def stages(values):
        v = np.asarray(values).reshape(STAGES, BLOCKS_PER_STAGE)
        return ".".join("".join(str(x) if a else "_" for x, a in zip(v[s], active[s])) for s in range(STAGES))

    return f"d{''.join(map(str, cfg['d']))} k{stages(cfg['ks'])} e{stages(cfg['e'])}"


def parse(text: str) -> Genome:
    """Inverse of `describe` (inactive blocks `_` become 3)."""
    try:
        d_part, k_part, e_part = text.split()
        depths = [int(c) for c in d_part.removeprefix("d")]
        ks = [3 if c == "_" else int(c) for c in k_part.removeprefix("k").replace(".", "")]
        e = [3 if c == "_" else int(c) for c in e_part.removeprefix("e").replace(".", "")]
    except ValueError:
        raise ValueError(f"cannot parse {text!r}: expected 'd34444 k3535.... e3463....'") from None
    return encode(ks, e, depths)


def random_genome(rng: np.random.Generator) -> Genome:
    """A uniformly random genome (each gene independently)."""
    return tuple(int(rng.choice(choices)) for choices in GENE_CHOICES)


@dataclass(frozen=True)
class Architecture:
    """A named network of the space (with the input resolution it was published for)."""

    name: str
    genome: Genome
    resolution: int


# The best OFA ImageNet network (`flops@595M_top1@80.0_finetune@75`, Cai et al. 2020), SPEC.md §2:
# stage 1 has depth 3, so its fourth block ('-' in the published lists) is inactive.
OFA_REFERENCE = Architecture(
    name="flops@595M_top1@80.0_finetune@75",
    genome=canonical(
        encode(
            ks=[3, 5, 3, 3, 5, 5, 3, 5, 7, 5, 3, 5, 3, 5, 7, 3, 3, 3, 5, 3],
            e=[3, 4, 3, 3, 4, 4, 6, 3, 6, 6, 3, 4, 6, 6, 6, 4, 6, 6, 6, 3],
            d=[3, 4, 4, 4, 4],
        )
    ),
    resolution=236,
)
