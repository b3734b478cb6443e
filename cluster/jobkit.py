"""What every job entry point shares: its flags declared once, the one way configs are resolved
(preset < file < flags < --set), the tracking URI, and the error exit. Jobs stay thin: parse,
plan, run, report.

    CLI = JobCli(__doc__, SweepConfig, flags=(Flag("--spaces", "spaces", csv_list), ...), presets=PRESETS)
    args = CLI.parse(argv)
    config = CLI.config(args)   # a ConfigError naming the key, before any work
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass

from core.config import Config, ConfigError, Presets, load_config, parse_override


def csv_list(text: str) -> list[str]:
    """`A1, FULL` -> ['A1', 'FULL'] (argparse type for comma-separated flags)."""
    return [t.strip() for t in text.split(",") if t.strip()]


@dataclass(frozen=True)
class Flag:
    """A job flag and the config key it sets (dotted for nested sections: `train.epochs`).

    `switch` makes a flag without a value that sets the key to `switch` (e.g. `--no-final` sets
    `final.enabled` to False); `repeat` collects every occurrence and `collect` turns the list
    into the key's value (e.g. NAME=PATH pairs into a mapping).
    """

    flag: str
    key: str
    type: Callable | None = None
    help: str | None = None
    switch: object = None
    repeat: bool = False
    collect: Callable[[list], object] | None = None
    metavar: str | None = None

    @property
    def dest(self) -> str:
        return self.flag.lstrip("-").replace("-", "_")

    def add_to(self, parser: argparse.ArgumentParser) -> None:
        if self.switch is not None:
            parser.add_argument(self.flag, dest=self.dest, action="store_true", help=self.help)
        elif self.repeat:
            parser.add_argument(
                self.flag, dest=self.dest, action="append", default=[], type=self.type,
                help=self.help, metavar=self.metavar,
            )  # fmt: skip
        else:
            parser.add_argument(
                self.flag, dest=self.dest, type=self.type, help=self.help, metavar=self.metavar
            )

    def value(self, args: argparse.Namespace):
        """The config value this flag gives (None: the flag was not used)."""
        raw = getattr(args, self.dest)
        if self.switch is not None:
            return self.switch if raw else None
        if self.repeat:
            return (self.collect or list)(raw) if raw else None
        return raw


def name_value(text: str) -> tuple[str, str]:
    """`NAME=VALUE` -> ('NAME', 'VALUE') (argparse type for repeated mapping flags)."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"{text!r} must look like NAME=VALUE")
    name, value = text.split("=", 1)
    return name.strip(), value.strip()


class JobCli:
    """A job's command line: the common flags, its own flags (each declared once with the config
    key it sets), an optional preset choice and --dry-run."""

    def __init__(
        self,
        doc: str,
        model: type[Config],
        flags: tuple[Flag, ...] = (),
        presets: Presets | None = None,
        dry_run: bool = False,
    ):
        self.doc, self.model, self.flags, self.presets, self.dry_run = doc, model, flags, presets, dry_run

    def parser(self) -> argparse.ArgumentParser:
        p = job_parser(self.doc, f"{self.model.__name__} keys" + (" over the preset" if self.presets else ""))
        if self.presets:
            p.add_argument("--preset", choices=self.presets.names(), help=f"default: {self.presets.default}")
        for flag in self.flags:
            flag.add_to(p)
        if self.dry_run:
            p.add_argument("--dry-run", action="store_true", help="print the plan and what is reused")
        return p

    def parse(self, argv) -> argparse.Namespace:
        return self.parser().parse_args(argv)

    def config(self, args: argparse.Namespace) -> Config:
        """Model defaults < preset < --config file < flags < --set; validated."""
        flags = {flag.key: flag.value(args) for flag in self.flags}
        if self.presets and args.preset:
            flags["preset"] = args.preset
        values = overrides(args, **flags)
        if self.presets:
            return self.presets.resolve(self.model, args.config, values)
        return load_config(self.model, args.config, values)


def job_parser(doc: str, config_help: str) -> argparse.ArgumentParser:
    """A parser with the flags every job takes: --config, --tracking-uri, --ray-address,
    --output-dir and repeated --set KEY=VALUE (dotted keys for nested sections)."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--config", help=f"{config_help}: a YAML/JSON file, or env:NAME (JSON in a variable)")
    p.add_argument(
        "--tracking-uri",
        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else the local server, started if needed)",
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


def tracking_uri(config, dry_run: bool = False) -> str | None:
    """Where the job logs: --tracking-uri, else MLFLOW_TRACKING_URI, else the project's local
    server, started if needed (mlflow_server.uri); checked before any work (TrackingUnreachable
    naming the URI within ~10 s). A dry run starts nothing: None when no store is there yet."""
    from mlflow_server import uri as where

    if not dry_run:
        found = where.resolve(config.tracking_uri)
        print(f"MLflow tracking: {found}")
        return found.uri
    found = where.peek(config.tracking_uri)
    if found is None:
        print(f"MLflow tracking: nothing at {where.choose(config.tracking_uri)} yet (a dry run starts none)")
        return None
    print(f"MLflow tracking: {found}")
    return found.uri


def open_tracker(config, dry_run: bool = False):
    """The job's Tracker (`tracking_uri`'s rule). A dry run only reads: it creates no experiment,
    and gets None when there is no store to read."""
    from cluster.tracking import Tracker

    uri = tracking_uri(config, dry_run)
    return Tracker(uri, config.experiment, create=not dry_run) if uri else None


def finished_units(tracker) -> dict[str, str]:
    """What a dry run counts as reused: every finished unit on the server (none without one)."""
    return tracker.finished_units() if tracker else {}


def input_errors() -> tuple[type[BaseException], ...]:
    """Errors that are the input's fault, not the code's: an `error:` line and exit status 2."""
    import pickle

    from mlflow_server.uri import TrackingUnreachable

    return (
        ConfigError,
        FileNotFoundError,
        NotADirectoryError,
        IsADirectoryError,
        PermissionError,
        pickle.UnpicklingError,
        TrackingUnreachable,
    )


def job_main(*errors: type[BaseException]) -> Callable:
    """Decorate a job's main(argv): any input error (`input_errors()`, plus `errors`) raised
    anywhere in it, before or during the work, ends it with one `error:` line and exit status 2,
    no traceback (an open sweep is marked FAILED with it first). Anything else is a bug: traceback."""

    def decorate(main: Callable) -> Callable:
        import functools

        @functools.wraps(main)
        def wrapper(argv=None) -> int:
            try:
                return main(argv)
            except (*input_errors(), *errors) as err:
                return fail(err)

        return wrapper

    return decorate


def fail(err: Exception) -> int:
    """A bad config or input: the message on stderr, exit status 2, nothing started."""
    print(f"error: {err}", file=sys.stderr)
    return 2
