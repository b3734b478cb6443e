"""`python -m cluster.queue ...`: the job queue from the command line.

submit JOB [--config FILE] [--priority P] [--name N] [--force]
list [--status S]        status ID        logs ID [--follow]      cancel ID
wait ID [--timeout S]    result ID        dispatch [--max-running N] [--once]
"""

from __future__ import annotations

import argparse
import json
import sys

from cluster.queue.client import Client, ClusterUnreachable
from core.config import ConfigError, read_mapping


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m cluster.queue", description=__doc__.splitlines()[0])
    p.add_argument("--address", default="http://127.0.0.1:8265", help="Ray dashboard / job API address")
    p.add_argument("--tracking-uri", default=None)
    p.add_argument("--queue", default=None, help="queue file (default .cache/queue/jobs.db or $SWEEPS_QUEUE)")
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("submit")
    s.add_argument("job")
    s.add_argument("--config", help="YAML/JSON file with the job's config keys")
    s.add_argument("--priority", type=int, default=0)
    s.add_argument("--name")
    s.add_argument("--force", action="store_true", help="queue even if an identical job is queued/running")
    ls = sub.add_parser("list")
    ls.add_argument("--status")
    for name in ("status", "cancel", "result"):
        sub.add_parser(name).add_argument("id")
    lg = sub.add_parser("logs")
    lg.add_argument("id")
    lg.add_argument("--follow", action="store_true")
    w = sub.add_parser("wait")
    w.add_argument("id")
    w.add_argument("--timeout", type=float)
    d = sub.add_parser("dispatch")
    d.add_argument("--max-running", type=int, default=1)
    d.add_argument("--once", action="store_true")
    d.add_argument("--poll", type=float, default=2.0)
    return p


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    kwargs = {"address": args.address, "tracking_uri": args.tracking_uri}
    if args.queue:
        kwargs["queue_path"] = args.queue
    if args.command == "dispatch":
        kwargs["max_running"] = args.max_running
    client = Client(**kwargs)
    try:
        if args.command == "submit":
            config = read_mapping(args.config) if args.config else {}
            handle = client.submit(args.job, config, args.priority, args.name, args.force)
            print(handle.id)
        elif args.command == "list":
            for job in client.list(args.status):
                print(f"{job.id}  {job.status:9s}  p={job.priority:<3d} {job.job:16s} {job.name}")
        elif args.command == "status":
            print(client.handle(args.id).status())
        elif args.command == "cancel":
            print(client.handle(args.id).cancel())
        elif args.command == "logs":
            print(client.handle(args.id).logs(follow=args.follow), end="")
        elif args.command == "wait":
            print(client.handle(args.id).wait(timeout=args.timeout))
        elif args.command == "result":
            print(json.dumps(client.handle(args.id).result(), indent=1, default=str))
        else:
            from cluster.queue.dispatcher import Dispatcher

            dispatcher = Dispatcher(client)
            if args.once:
                print(dispatcher.step())
            else:
                dispatcher.run(poll=args.poll)
    except (ConfigError, KeyError, ClusterUnreachable, RuntimeError, TimeoutError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
