"""What every job entry point shares: common flags, config overrides, the tracking URI, and
closing the sweep's parent run with a summary. Jobs stay thin: parse, plan, run, report."""

from __future__ import annotations

import argparse
import sys
import time

from core.config import parse_override


def csv_list(text: str) -> list[str]:
    """`A1, FULL` -> ['A1', 'FULL'] (argparse type for comma-separated flags)."""
    return [t.strip() for t in text.split(",") if t.strip()]


def job_parser(doc: str, config_help: str) -> argparse.ArgumentParser:
    """A parser with the flags every job takes: --config, --tracking-uri, --ray-address,
    --output-dir and repeated --set KEY=VALUE (dotted keys for nested sections)."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--config", help=f"{config_help}: a YAML/JSON file, or env:NAME (JSON in a variable)")
    p.add_argument(
        "--tracking-uri", help="MLflow tracking URI (default: the local server, started if needed)"
    )
    p.add_argument("--ray-address", help="Ray cluster address (default: $RAY_ADDRESS or a local cluster)")
    p.add_argument("--output-dir")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE", help="any config key (a.b for nested)"
    )
    return p


def overrides(args, **flags) -> dict:
    """Job-specific flags, the common ones and every --set, in that order of precedence (last wins)."""
    out = {k: v for k, v in flags.items() if v is not None}
    common = {
        "tracking_uri": args.tracking_uri,
        "ray_address": args.ray_address,
        "output_dir": args.output_dir,
    }
    out |= {k: v for k, v in common.items() if v is not None}
    out |= dict(parse_override(s) for s in args.set)
    return out


def tracking_uri(config) -> str:
    """The configured URI, else the project's local MLflow server (started if needed)."""
    if config.tracking_uri:
        return config.tracking_uri
    from mlflow_server.server import start

    url = start()
    print(f"MLflow tracking server: {url}")
    return url


def fail(err: Exception) -> int:
    """A bad config or input: the message on stderr, exit status 2, nothing started."""
    print(f"error: {err}", file=sys.stderr)
    return 2


def _run_id(result) -> str | None:
    return result.get("run_id") if isinstance(result, dict) else getattr(result, "run_id", None)


def close_sweep(
    tracker,
    parent: str,
    outcome,
    files: list,
    markdown: str,
    start: float,
    uri: str,
    config,
    noun: str = "units",
) -> int:
    """Log the sweep's counts and files on its parent run, print the report and where it is."""
    units = len(outcome.ran) + len(outcome.skipped)
    kept = {k: _run_id(r) for k, r in outcome.results.items() if _run_id(r)}
    duplicates = tracker.prune_duplicates(parent, kept)
    if duplicates:
        print(f"removed {duplicates} duplicate unit run(s) left by an interrupted attempt")
    metrics = {
        "units": units,
        "units_run": len(outcome.ran),
        "units_skipped": len(outcome.skipped),
        "wall_seconds": time.perf_counter() - start,
        "duplicate_runs_removed": duplicates,
    }
    tracker.finish_sweep(parent, metrics, files)
    print(markdown)
    print(
        f"{units} {noun} ({len(outcome.ran)} run, {len(outcome.skipped)} reused) "
        f"in {metrics['wall_seconds']:.0f} s; "
        f"results in {config.output_dir}/ and MLflow run {parent} at {uri} (experiment {config.experiment!r})"
    )
    return 0
