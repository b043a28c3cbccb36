"""Local simulators of TikTok Shop and Shopify, for the demo, the tests and trials (DESIGN §8).

* :mod:`.tiktok_sim` — the TikTok Shop Open API (signatures, tokens, pages, rate limits);
* :mod:`.shopify_sim` — the Shopify Admin GraphQL API;
* :mod:`.seed` — the demo story both start with;
* :mod:`.runner` — :class:`Sandbox` (both at once, plus a matching config) and :func:`serve`.

The top level stays light (``ecomsend --help`` must not pay for it):
``Sandbox``, ``serve`` and ``demo_seed`` are imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .runner import Sandbox, serve
    from .seed import demo_seed

__all__ = ["Sandbox", "serve", "demo_seed"]


def __getattr__(name: str) -> Any:
    if name in ("Sandbox", "serve"):
        from . import runner

        return getattr(runner, name)
    if name == "demo_seed":
        from .seed import demo_seed

        return demo_seed
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
