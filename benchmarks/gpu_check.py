"""GPU paths, ready to prove: each actor kind's work for a few steps on CUDA, one line of figures
each with the GPU memory peak.

Kinds (the plain classes of core/ that the Ray actors wrap, on synthetic data of the thesis' shapes):
  supernet   SupernetTrainer (NB-101 single-path supernet, CIFAR-10 shapes, batch 256), bf16
             autocast and channels-last: images/s
  bns-ft     CellScorer scoring sampled cells in BNS-FT mode (one BN batch of 256, 10,000
             validation images): cells/s
  patch-ddp  PatchClassifierTrainer on the OFA reference sub-network, 236x236 patches, batch 128,
             bf16 autocast, DistributedDataParallel over every visible GPU (NCCL): patches/s
  bone-age   bone-age Trainer (ConvNeXt-Small, 600x600, batch 16, autocast): images/s
  detection  TorchvisionTrainer (Mask R-CNN R50-FPN v2, thesis sizes, bf16 autocast): iterations/s

Without CUDA it says so and exits 0. `--device cpu --small` runs the same code paths at toy
sizes on the CPU (the tests do). The figures are for a first look at a GPU machine (warm-up
included, a few steps), not a benchmark against a baseline.

    python benchmarks/gpu_check.py [--steps 3] [--only supernet,bns-ft]
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402


@dataclass(frozen=True)
class Sizes:
    """The shapes a check runs at: the thesis' on a GPU, toy ones for the CPU path."""

    cifar_batch: int = 256
    supernet_modules: int = 3
    cells: int = 50
    validation: int = 10_000
    patch_size: int = 236
    patch_batch: int = 128
    patch_studies: int = 60
    hand_size: int = 600
    hand_batch: int = 16
    hand_preset: str = "thesis"
    detector: dict | None = None  # DetectorConfig keys over the thesis preset


SMALL = Sizes(
    cifar_batch=32,
    supernet_modules=1,
    cells=3,
    validation=64,
    patch_size=32,
    patch_batch=8,
    patch_studies=12,
    hand_size=32,
    hand_batch=8,
    hand_preset="embedded",
    detector={
        "preset": "cpu-small", "backbone": "resnet18", "fpn_channels": 16, "head_channels": 16,
        "box_fc": 32, "min_size": [64], "max_size": 64, "rpn_pre_nms_top_n_train": 100,
        "rpn_post_nms_top_n_train": 50, "rpn_batch_size_per_image": 32, "box_batch_size_per_image": 16,
        "detections_per_image": 10, "batch_size": 2,
    },
)  # fmt: skip


def peak_gib(device: str) -> float:
    return torch.cuda.max_memory_allocated() / 2**30 if device.startswith("cuda") else 0.0


# ---- supernet trainer and BNS-FT scoring ---------------------------------------------------
def _supernet(device: str, sizes: Sizes, steps: int):
    from core.data.images import Split
    from core.nb101.benchmark import DEFAULT_MINIBENCH, Benchmark
    from core.ws.cells import space_cells
    from core.ws.config import SupernetConfig
    from core.ws.trainer import SupernetTrainer

    cfg = SupernetConfig(  # CIFAR-10's recipe; the images are random tensors of its shape, not a folder
        space="FULL",
        dataset="cifar10",
        cifar10_root="(random tensors)",
        epochs=1,
        batch_size=sizes.cifar_batch,
        modules_per_stack=sizes.supernet_modules,
    )
    g = torch.Generator().manual_seed(0)
    n_train = sizes.cifar_batch * steps

    def split(n: int) -> Split:
        return Split(torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g))

    data = {"train": split(n_train), "validation": split(sizes.validation)}
    cells = space_cells(Benchmark.open(DEFAULT_MINIBENCH), "FULL")
    return SupernetTrainer(cfg, cells, data, device), cells, data


def check_supernet(device: str, sizes: Sizes, steps: int) -> str:
    trainer, _, _ = _supernet(device, sizes, steps)
    record = trainer.step()  # one epoch = `steps` batches
    amp, channels_last = trainer.config.amp and trainer.gpu, trainer.config.channels_last and trainer.gpu
    return (
        f"{record['images_per_s']:,.0f} images/s ({steps} steps of batch {sizes.cifar_batch}, "
        f"bf16 autocast {amp}, channels-last {channels_last})"
    )


def check_bnsft(device: str, sizes: Sizes, steps: int) -> str:
    from core.ws.cells import CellSampler
    from core.ws.evaluate import CellScorer

    trainer, cells, data = _supernet(device, sizes, 1)
    scorer = CellScorer(trainer.model, data, bn_batch=sizes.cifar_batch, device=device)
    sampler = CellSampler(cells, seed=1)
    specs = [sampler.spec(r) for r in sampler.unique(sizes.cells)]
    scorer.score(specs[:1], "BNS-FT")  # warm-up
    start = time.perf_counter()
    scores = scorer.score(specs, "BNS-FT")
    seconds = time.perf_counter() - start
    assert ((scores >= 0) & (scores <= 1)).all()
    return f"{len(specs) / seconds:,.1f} cells/s ({len(specs)} cells, {sizes.validation:,} validation images)"


# ---- patch fine-tuners: DDP over every visible GPU -------------------------------------------
def _patch_data(sizes: Sizes):
    from cluster.patch_nas.config import resolve_config
    from cluster.patch_nas.data import prepare_data

    overrides = {
        "data.input_size": sizes.patch_size,
        "data.synthetic.studies": sizes.patch_studies,
        "recipe.epochs": 1,
        "recipe.batch_size": sizes.patch_batch,
        "final.enabled": False,
    }
    config = resolve_config("smoke", overrides=overrides)
    return config.recipe, prepare_data(config, verbose=False).data


def _finetune_rank(rank: int, world: int, port: int, recipe, data, device: str, out: str) -> None:
    """One rank of the gang: joins the process group (NCCL on GPU, gloo on CPU) and trains an epoch."""
    import torch.distributed as dist

    from core.models.ofa_subnet import build_subnet, build_supernet
    from core.patches.finetune import PatchClassifierTrainer
    from search.ofa_space import OFA_REFERENCE, decode

    if device == "cuda":
        torch.cuda.set_device(rank)
        device = f"cuda:{rank}"
    if world > 1:
        backend = "nccl" if device.startswith("cuda") else "gloo"
        dist.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    supernet = build_supernet(None, 0)
    model = build_subnet(supernet, decode(OFA_REFERENCE.genome), 2, recipe.dropout, recipe.seed)
    record = PatchClassifierTrainer(model, recipe, data, device).step()
    Path(out, f"rank{rank}.json").write_text(json.dumps(record | {"peak_gib": peak_gib(device)}))
    if world > 1:
        dist.destroy_process_group()


def check_patch_ddp(device: str, sizes: Sizes, steps: int) -> str:
    recipe, data = _patch_data(sizes)
    world = torch.cuda.device_count() if device == "cuda" else 1
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as out:
        args = (world, port, recipe, data, device, out)
        if world > 1:
            torch.multiprocessing.spawn(_finetune_rank, args=args, nprocs=world)
        else:
            _finetune_rank(0, *args)
        ranks = [json.loads(p.read_text()) for p in sorted(Path(out).glob("rank*.json"))]
    rate = ranks[0]["images_per_s"]  # every rank's share counted: the gang's rate
    backend = ("NCCL" if device == "cuda" else "gloo") if world > 1 else "no process group"
    peak = max(r["peak_gib"] for r in ranks)
    return (
        f"{rate:,.0f} patches/s over {world} process(es) ({backend}, {sizes.patch_size}px, "
        f"batch {sizes.patch_batch}); peak on a rank {peak:.2f} GiB"
    )


# ---- bone-age and detection trainers ------------------------------------------------------
def check_bone_age(device: str, sizes: Sizes, steps: int) -> str:
    from core.boneage.config import PRESETS, ModelConfig, SyntheticConfig, TrainConfig
    from core.boneage.records import load_rsna
    from core.boneage.synthetic import ensure_synthetic, synthetic_sources
    from core.boneage.training import Trainer

    n = sizes.hand_batch * steps
    root = ensure_synthetic(
        SyntheticConfig(n_rsna=max(n, 8), n_rhpe=4, n_clinical=8, image_size=max(sizes.hand_size, 32)),
        verbose=False,
    )
    frame = load_rsna(synthetic_sources(root)[0]).head(n)
    preset = PRESETS.table[sizes.hand_preset]
    model = ModelConfig(**preset.get("model", {}))
    shape = {"epochs": 1, "batch_size": sizes.hand_batch, "image_size": sizes.hand_size}
    train = TrainConfig(**(preset.get("train", {}) | shape))
    trainer = Trainer(model, train, frame, None, None, False, device, log=lambda _line: None)
    record = trainer.step()
    dtype = str(trainer.amp_dtype).replace("torch.", "") if trainer.amp_dtype else "off"
    return (
        f"{record['images_per_s']:,.1f} images/s ({model.backbone}, {sizes.hand_size}px, "
        f"batch {sizes.hand_batch}, autocast {dtype})"
    )


def check_detection(device: str, sizes: Sizes, steps: int) -> str:
    from core.detection.backends import make_trainer
    from core.detection.config import DetectorConfig
    from core.detection.synthetic import SyntheticSpec, synthetic_dataset

    keys = sizes.detector or {"preset": "thesis"}
    config = DetectorConfig(**(keys | {"iterations": steps + 1, "amp": True, "checkpoint_every": steps + 1}))
    image = 64 if sizes.detector else 512
    data = synthetic_dataset(SyntheticSpec(studies=8, image_size=image, seed=1))
    trainer = make_trainer(config, data, device)
    trainer.train(until=1, progress=False)  # warm-up
    start = time.perf_counter()
    trainer.train(until=steps + 1, progress=False)
    rate = steps / (time.perf_counter() - start)
    batch = config.resolved().batch_size
    return f"{rate:,.2f} iterations/s (batch {batch}, {image}px synthetic images, bf16 autocast on GPU)"


CHECKS: dict[str, Callable[[str, Sizes, int], str]] = {
    "supernet": check_supernet,
    "bns-ft": check_bnsft,
    "patch-ddp": check_patch_ddp,
    "bone-age": check_bone_age,
    "detection": check_detection,
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    p.add_argument("--steps", type=int, default=3, help="training steps (batches) per kind")
    p.add_argument("--small", action="store_true", help="toy sizes (the CPU path, for tests)")
    p.add_argument("--only", help=f"comma-separated kinds among {', '.join(CHECKS)}")
    args = p.parse_args(argv)
    kinds = args.only.split(",") if args.only else list(CHECKS)
    unknown = [k for k in kinds if k not in CHECKS]
    if unknown:
        print(f"error: --only: unknown kind(s) {unknown}; expected {list(CHECKS)}", file=sys.stderr)
        return 2
    if args.device == "cuda" and not torch.cuda.is_available():
        print(
            "no CUDA: torch sees no GPU here, nothing to check (run this on a GPU machine; "
            "--device cpu runs the same paths on the CPU)"
        )
        return 0
    sizes = SMALL if args.small else Sizes()
    where = "CPU"
    if args.device == "cuda":
        where = f"{torch.cuda.get_device_name(0)} x {torch.cuda.device_count()}"
    small = " (small sizes)" if args.small else ""
    print(f"gpu_check on {where}, torch {torch.__version__}, {args.steps} steps per kind{small}")
    for kind in kinds:
        if args.device == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        line = CHECKS[kind](args.device, sizes, args.steps)
        seconds = time.perf_counter() - start
        peak = peak_gib(args.device)
        print(f"{kind:10s} {line}; peak GPU memory {peak:.2f} GiB; {seconds:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
