"""The local simulators and the demo that runs the whole story on them (DESIGN §8)."""

from __future__ import annotations

from pathlib import Path

import typer

from . import app
from .common import command, session

# --- sandbox, demo -----------------------------------------------------------------------------

sandbox_app = typer.Typer(help="Local simulators of TikTok Shop and Shopify.", no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")


@command(sandbox_app, "serve")
def sandbox_serve(
    folder: Path = typer.Option(
        Path("ecomsend-sandbox"), "--dir", help="Folder for the simulators' state and the config.",
    ),
    seed: str = typer.Option("demo", "--seed", help="demo (a small shop with a story) or none."),
    shopify_port: int = typer.Option(0, "--shopify-port", help="Port (0: any free one)."),
    tiktok_port: int = typer.Option(0, "--tiktok-port", help="Port (0: any free one)."),
) -> None:
    """Run both simulators on 127.0.0.1 until Ctrl-C, and print a config that uses them.

    Example: ecomsend sandbox serve --dir /tmp/sb > /tmp/sb.yaml &
             ecomsend --config /tmp/sb.yaml sync-orders
    """
    from ..errors import InputError
    from ..sandbox import serve

    if seed not in ("demo", "none"):
        raise InputError(f"unknown seed {seed!r}", hint="use --seed demo or --seed none")
    folder.mkdir(parents=True, exist_ok=True)
    out = session().out

    def ready(config_yaml: str) -> None:
        out.text(config_yaml.rstrip("\n"))
        out.info(f"Sandbox running; config written to {folder / 'ecomsend.yaml'}. Ctrl-C stops it.")

    serve(folder, seed, shopify_port, tiktok_port, ready)


@command(app, "demo")
def demo(
    keep: bool = typer.Option(False, "--keep", help="Keep the throwaway folder (its path is printed)."),
) -> None:
    """Run the whole story on the built-in sandbox stores, in a throwaway folder.

    Starts both simulators, syncs orders (some are blocked by unlinked SKUs),
    lists the unlinked SKUs, auto-links the SKU-equal pairs, links one SKU by
    hand, syncs again, and tells what happened. Nothing leaves this machine.

    Example: ecomsend demo
    """
    from ..demo import run_demo

    s = session()
    code = run_demo(s.out, keep=keep)
    if code:
        raise typer.Exit(code)
