"""Both sandbox simulators together, and the ecomsend config that points at them.

:class:`Sandbox` starts the Shopify and TikTok simulators in this process on
127.0.0.1, keeps their state files in one folder, and writes a complete
ecomsend config (DESIGN §7 shape) that ``ecomsend`` can use as it is.
:func:`serve` runs a sandbox until SIGTERM/SIGINT; it is the core of
``python -m ecomsend_cli.sandbox serve`` and ``ecomsend sandbox serve``, and
how crash tests run the simulators in a process of their own.

Files in the folder: ``shopify.db`` and ``tiktok.db`` (simulator state; a
sandbox restarted on the same folder keeps its orders, inventory and
tokens), ``ecomsend.db`` (the store path the config names) and
``ecomsend.yaml`` (the config, mode 0600: it holds the sandbox secrets).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .seed import EXCHANGE_RATES

SEEDS = ("demo", "none")
CONFIG_NAME = "ecomsend.yaml"
STORE_NAME = "ecomsend.db"
DEFAULT_API_VERSION = "2026-07"


class Sandbox:
    """Both simulators on loopback, state in ``folder`` (see the module docstring).

    ``seed`` is ``"demo"`` (the story of :func:`~ecomsend_cli.sandbox.seed.demo_seed`)
    or ``None``/``"none"`` (empty stores); it only fills state files that are new.
    ``shopify_options`` / ``tiktok_options`` go to the simulators' constructors
    (e.g. fault settings); ``now`` pins the seed's clock.
    """

    def __init__(
        self,
        folder: Path,
        seed: str | None = "demo",
        *,
        shopify_port: int = 0,
        tiktok_port: int = 0,
        now: int | None = None,
        shopify_options: dict[str, Any] | None = None,
        tiktok_options: dict[str, Any] | None = None,
    ) -> None:
        if seed not in (None, *SEEDS):
            raise ValueError(f"unknown sandbox seed {seed!r}; use one of: {', '.join(SEEDS)}")
        self.folder = Path(folder)
        self.seed = None if seed == "none" else seed
        self.shopify_port = shopify_port
        self.tiktok_port = tiktok_port
        self.now = now
        self.shopify_options = dict(shopify_options or {})
        self.tiktok_options = dict(tiktok_options or {})
        self.shopify: Any = None
        self.tiktok: Any = None

    @property
    def store_path(self) -> Path:
        return self.folder / STORE_NAME

    @property
    def config_path(self) -> Path:
        return self.folder / CONFIG_NAME

    def start(self) -> Sandbox:
        """Start both simulators (returns self)."""
        from .shopify_sim import ShopifySimulator
        from .tiktok_sim import TikTokSimulator

        self.folder.mkdir(parents=True, exist_ok=True)
        data: dict[str, list[dict[str, Any]]] = {}
        if self.seed == "demo":
            from .seed import demo_seed

            data = demo_seed(self.now)
        try:
            # Options given by the caller win over the seed (e.g. a benchmark's own catalog).
            self.shopify = ShopifySimulator(
                self.folder / "shopify.db", port=self.shopify_port,
                **{"products": data.get("shopify_products"), **self.shopify_options},
            ).start()
            self.tiktok = TikTokSimulator(
                self.folder / "tiktok.db", port=self.tiktok_port,
                **{"products": data.get("tiktok_products"), "orders": data.get("tiktok_orders"),
                   "delivery_options": data.get("tiktok_delivery_options"), **self.tiktok_options},
            ).start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop both simulators. Safe to call twice."""
        for sim in (self.tiktok, self.shopify):
            if sim is not None:
                sim.stop()

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def authorize_url(self) -> str:
        """The TikTok simulator's authorization page (``tiktok.authorize_url`` in sandbox configs)."""
        from .tiktok_auth import AUTHORIZE_PATH

        return self.tiktok.url + AUTHORIZE_PATH

    def config_dict(self) -> dict[str, Any]:
        """A complete ecomsend config for this sandbox (DESIGN §7 shape)."""
        if self.shopify is None or self.tiktok is None:
            raise RuntimeError("start the sandbox first")
        shopify_creds = self.shopify.credentials
        tiktok_creds = self.tiktok.credentials
        shopify: dict[str, Any] = {
            "shop": self.shopify.url,
            "api_version": getattr(self.shopify, "api_version", None) or DEFAULT_API_VERSION,
        }
        if shopify_creds.get("access_token"):
            shopify["access_token"] = shopify_creds["access_token"]
        else:
            shopify["client_id"] = shopify_creds.get("client_id", "")
            shopify["client_secret"] = shopify_creds.get("client_secret", "")
        return {
            "store": str(self.store_path),
            "shopify": shopify,
            "tiktok": {
                "api_base_url": self.tiktok.url,
                "auth_base_url": self.tiktok.url,
                "app_key": tiktok_creds["app_key"],
                "app_secret": tiktok_creds["app_secret"],
                "access_token": tiktok_creds["access_token"],
                "refresh_token": tiktok_creds["refresh_token"],
                "shop_cipher": tiktok_creds["shop_cipher"],
                # `ecomsend auth tiktok` on the sandbox: its authorization page, on loopback.
                "service_id": tiktok_creds["service_id"],
                "authorize_url": self.authorize_url,
            },
            # The demo's orders in other currencies than the shop's (§5.7).
            "sync": {"exchange_rates": dict(EXCHANGE_RATES)},
        }

    def config_yaml(self) -> str:
        """:meth:`config_dict` as YAML, with a comment saying what it is."""
        import yaml

        header = (
            "# ecomsend config for the local sandbox (not real stores).\n"
            f"# Shopify simulator: {self.shopify.url}   TikTok simulator: {self.tiktok.url}\n"
            "# To try alerts, add: notify: {urls: [\"json://127.0.0.1:"
            f"{self.shopify.port}/_sandbox/webhook\"], blocked_after_hours: 0}}\n"
            f"# and read what arrived: curl {self.shopify.url}/_sandbox/webhook\n"
        )
        return header + yaml.safe_dump(self.config_dict(), sort_keys=False, allow_unicode=True)

    def write_config(self, path: Path | None = None) -> Path:
        """Write :meth:`config_yaml` (mode 0600, it holds secrets); returns the path."""
        path = Path(path) if path else self.config_path
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(self.config_yaml())
        os.chmod(path, 0o600)
        return path


def serve(
    folder: Path,
    seed: str | None = "demo",
    shopify_port: int = 0,
    tiktok_port: int = 0,
    ready: Callable[[str], None] | None = None,
    *,
    stop: threading.Event | None = None,
) -> None:
    """Run a sandbox until SIGTERM/SIGINT (or until ``stop`` is set).

    Writes the config into ``folder`` and calls ``ready(config_yaml)`` once
    both simulators answer. Signal handlers are installed only when called
    from the main thread, and restored on return.
    """
    stop = stop or threading.Event()
    previous: dict[int, Any] = {}
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            previous[signum] = signal.signal(signum, lambda *_: stop.set())
    try:
        with Sandbox(folder, seed, shopify_port=shopify_port, tiktok_port=tiktok_port) as box:
            box.write_config()
            if ready is not None:
                ready(box.config_yaml())
            while not stop.wait(0.5):
                pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
