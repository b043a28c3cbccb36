"""``python -m ecomsend_cli.sandbox serve --dir DIR``: run both simulators until stopped.

Prints the matching ecomsend config (YAML) on stdout once both answer, and
runs until SIGTERM or SIGINT. Talk goes to stderr, so ``> config.yaml`` works.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .runner import SEEDS, serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ecomsend_cli.sandbox",
        description="Local TikTok Shop and Shopify simulators for ecomsend.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "serve",
        help="start both simulators on 127.0.0.1 and print a matching ecomsend config",
        description="Example: python -m ecomsend_cli.sandbox serve --dir /tmp/sandbox > sandbox.yaml",
    )
    run.add_argument("--dir", required=True, type=Path, help="folder for the state files and config")
    run.add_argument("--seed", choices=SEEDS, default="demo", help="initial data for new state files")
    run.add_argument("--shopify-port", type=int, default=0, help="port of the Shopify simulator (0: any)")
    run.add_argument("--tiktok-port", type=int, default=0, help="port of the TikTok simulator (0: any)")
    args = parser.parse_args(argv)

    def ready(config_yaml: str) -> None:
        sys.stdout.write(config_yaml)
        sys.stdout.flush()
        print(f"sandbox running; config written to {args.dir / 'ecomsend.yaml'}; "
              "stop with Ctrl-C or SIGTERM", file=sys.stderr, flush=True)

    try:
        serve(args.dir, args.seed, args.shopify_port, args.tiktok_port, ready)
    except OSError as exc:
        print(f"error: cannot start the sandbox: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
