"""How the API clients open HTTP connections: one TLS context per process.

Building a TLS context (loading the CA bundle) costs about 0.2 s; httpx does
it for every client. The clients here share one, and skip it for plain-HTTP
base URLs (the sandbox on loopback), where there is no certificate to check.
"""

from __future__ import annotations

import ssl
import threading

_context: ssl.SSLContext | None = None
_lock = threading.Lock()


def tls_verify(*base_urls: str) -> ssl.SSLContext | bool:
    """The ``verify=`` argument for an httpx client that talks to ``base_urls``."""
    if base_urls and all(url.lower().startswith("http://") for url in base_urls):
        return False  # no TLS at all: nothing to verify
    global _context
    with _lock:
        if _context is None:
            import certifi

            _context = ssl.create_default_context(cafile=certifi.where())
        return _context
