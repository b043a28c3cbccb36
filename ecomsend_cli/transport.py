"""How the API clients open HTTP connections: httpx without its command line, one TLS context
per process, and total deadlines.

The clients import httpx from here. httpx imports its own command-line tool
with itself whenever click is installed (sqlite-utils installs it): click,
pygments and Rich's progress and syntax modules, about 20 ms of the start-up
of every cron run of ``sync-orders``. ecomsend never runs that
tool; with ``None`` in its place in ``sys.modules``, httpx takes the fallback it
has for an install without the tool.

Building a TLS context (loading the CA bundle) costs about 0.2 s; httpx does
it for every client. The clients here share one, and skip it for plain-HTTP
base URLs (the sandbox on loopback), where there is no certificate to check.

**Deadlines** (issue 15). httpx's timeouts bound each socket operation, not a
whole exchange: a server that trickles its answer a byte a second, or sends
headers and then nothing, keeps a per-read timeout from ever firing. Every
socket operation of :func:`http_client`'s connections is bounded by the
deadline of the :func:`deadline` block it runs in (besides its own timeout),
so connecting, sending and reading an answer together cannot outlast it.
Past the deadline the operation fails as httpx's ``ConnectTimeout``,
``WriteTimeout`` or ``ReadTimeout`` with a message that says so.
"""

from __future__ import annotations

import ssl
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

sys.modules.setdefault("httpx._main", None)  # see the module docstring

import httpx  # noqa: E402  (after the line above)

_context: ssl.SSLContext | None = None
_lock = threading.Lock()
_local = threading.local()
DEADLINE_MESSAGE = "the call's total deadline passed"


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


@contextmanager
def deadline(seconds: float | None = None, *, until: float | None = None) -> Iterator[None]:
    """Bound every network operation of this thread inside the block by ``seconds`` in all.

    ``until`` gives the end as a ``time.monotonic()`` value instead, for an
    exchange read in several blocks (a streamed download). Nested blocks keep
    the earliest deadline; no bound at all adds none.
    """
    previous = getattr(_local, "deadline", None)
    mine = until if until is not None else (time.monotonic() + seconds if seconds is not None else None)
    if mine is not None:
        _local.deadline = mine if previous is None else min(previous, mine)
    try:
        yield
    finally:
        _local.deadline = previous


def deadline_passed(exc: BaseException) -> bool:
    """Whether an httpx error was raised because a :func:`deadline` ran out."""
    return DEADLINE_MESSAGE in str(exc)


def http_client(*, verify: ssl.SSLContext | bool, timeout: Any, **kwargs: Any) -> Any:
    """An ``httpx.Client`` whose connections honour :func:`deadline` (see the module docstring)."""
    return httpx.Client(transport=_DeadlineTransport(verify=verify), timeout=timeout, **kwargs)


def _remaining(timeout: float | None, error: type[Exception]) -> float | None:
    """``timeout`` cut to what is left of this thread's deadline; ``error`` once nothing is."""
    end = getattr(_local, "deadline", None)
    if end is None:
        return timeout
    left = end - time.monotonic()
    if left <= 0:
        raise error(DEADLINE_MESSAGE)
    return left if timeout is None else min(timeout, left)


def _deadline_classes() -> tuple[type, type]:
    """The transport and network backend classes, built on first use."""
    import httpcore

    def bounded(operation: Any, timeout: float | None, error: type[Exception]) -> Any:
        """Run ``operation(timeout)`` with the timeout cut to the deadline; a timeout that the
        deadline caused says so."""
        try:
            return operation(_remaining(timeout, error))
        except error:
            end = getattr(_local, "deadline", None)
            if end is not None and time.monotonic() >= end:
                raise error(DEADLINE_MESSAGE) from None
            raise

    class DeadlineStream(httpcore.NetworkStream):
        def __init__(self, stream: httpcore.NetworkStream) -> None:
            self._stream = stream

        def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            return bounded(lambda t: self._stream.read(max_bytes, t), timeout, httpcore.ReadTimeout)

        def write(self, buffer: bytes, timeout: float | None = None) -> None:
            bounded(lambda t: self._stream.write(buffer, t), timeout, httpcore.WriteTimeout)

        def close(self) -> None:
            self._stream.close()

        def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                      timeout: float | None = None) -> httpcore.NetworkStream:
            return DeadlineStream(bounded(
                lambda t: self._stream.start_tls(ssl_context, server_hostname, t), timeout,
                httpcore.ConnectTimeout))

        def get_extra_info(self, info: str) -> Any:
            return self._stream.get_extra_info(info)

    class DeadlineBackend(httpcore.NetworkBackend):
        def __init__(self, backend: httpcore.NetworkBackend) -> None:
            self._backend = backend

        def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                        local_address: str | None = None, socket_options: Any = None) -> httpcore.NetworkStream:
            return DeadlineStream(bounded(
                lambda t: self._backend.connect_tcp(host, port, t, local_address, socket_options),
                timeout, httpcore.ConnectTimeout))

        def connect_unix_socket(self, path: str, timeout: float | None = None,
                                socket_options: Any = None) -> httpcore.NetworkStream:  # pragma: no cover
            return DeadlineStream(bounded(
                lambda t: self._backend.connect_unix_socket(path, t, socket_options),
                timeout, httpcore.ConnectTimeout))

        def sleep(self, seconds: float) -> None:  # pragma: no cover - httpcore retries only
            self._backend.sleep(seconds)

    class DeadlineTransport(httpx.HTTPTransport):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            # httpx builds its connection pool with httpcore's default backend
            # and offers no argument to choose another: wrap the pool's own.
            # Tested at both ends of the httpx pin (tests/test_deadlines.py).
            pool = self._pool
            pool._network_backend = DeadlineBackend(pool._network_backend)

    return DeadlineTransport, DeadlineBackend


def _DeadlineTransport(**kwargs: Any) -> Any:  # noqa: N802 - a class, built lazily
    global _TRANSPORT
    if _TRANSPORT is None:
        _TRANSPORT = _deadline_classes()[0]
    return _TRANSPORT(**kwargs)


_TRANSPORT: Any = None
