"""One sync-orders run (DESIGN §6b): the lock, the phases in order, one report.

``sync-orders`` runs, under one lock: (1) orders in (:mod:`.sync`), (2)
what goes back to TikTok — references and tracking (:mod:`.tracking`), (3)
cancellations and returns into Shopify (:mod:`.aftersales`). ``--only``
runs one; ``sync.tracking`` and ``sync.aftersales`` turn a phase off. A
phase that cannot reach a service ends the run there (the next would fail
the same way); any other problem is reported and the run goes on. This
module also owns what the phases share: the lock (:class:`SyncLock`) and the
crash tests' hook (:class:`Checkpoints`).
"""

from __future__ import annotations

import fcntl
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import AuthError, EcomsendError, LockHeldError, NetworkError

if TYPE_CHECKING:
    from .aftersales import AftersalesReport
    from .config import Config
    from .store import Store
    from .sync import SyncOptions, SyncReport
    from .tracking import TrackingReport

PHASES = ("orders", "tracking", "aftersales")
HOLDER_KEY = "sync.holder"

_LOCK_FDS: dict[tuple[int, int], int] = {}
_LOCKS_HELD: set[tuple[int, int]] = set()
_LOCK_GUARD = threading.Lock()


class SyncLock:
    """One ``sync-orders`` per store file: an exclusive ``flock`` on the store file itself.

    The lock belongs to the file (its inode), not to the name it was opened
    by, so a symlink, a hard link or a bind mount naming the same store meets
    the same lock (§5.4). The kernel drops it when its holder dies, however
    it dies, so a killed run never blocks the next.

    The descriptor is kept open for the life of the process and only
    unlocked: closing any descriptor of a file drops every POSIX lock the
    process holds on it, which would take SQLite's own locks on the store
    from under its open connection.
    """

    def __init__(self, store: Store, *, record_holder: bool = True) -> None:
        self.store = store
        self.record_holder = record_holder  # a dry run writes nothing, not even this
        self._key: tuple[int, int] | None = None

    def __enter__(self) -> SyncLock:
        path = self.store.path
        info = os.stat(path)
        key = (info.st_dev, info.st_ino)
        with _LOCK_GUARD:
            if key in _LOCKS_HELD:
                raise self._held()
            fd = _LOCK_FDS.get(key)
            if fd is None:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                _LOCK_FDS[key] = fd
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise self._held() from None
            _LOCKS_HELD.add(key)
        self._key = key
        if self.record_holder:
            holder = {"pid": os.getpid(), "host": socket.gethostname(), "since": time.strftime("%H:%M:%S")}
            self.store.set_state(HOLDER_KEY, json.dumps(holder))
        return self

    def _held(self) -> LockHeldError:
        try:
            holder = json.loads(self.store.get_state(HOLDER_KEY) or "{}")
            who = f"pid {int(holder['pid'])} on {str(holder['host'])[:64]}, since {str(holder['since'])[:8]}"
        except (ValueError, KeyError, TypeError):
            who = "another process"
        return LockHeldError(
            f"another sync-orders is running on {self.store.path} ({who})",
            hint="let it finish; this run did nothing",
        )

    def __exit__(self, *exc: object) -> None:
        if self._key is None:
            return
        with _LOCK_GUARD:
            fcntl.flock(_LOCK_FDS[self._key], fcntl.LOCK_UN)
            _LOCKS_HELD.discard(self._key)
        self._key = None


class Checkpoints:
    """Test hook for the crash tests: ``crash_at`` = ``name`` or ``name:N`` kills this process
    the Nth time the run reaches that point (``$ECOMSEND_TEST_CRASH_AT``).

    ``name:N:stop`` stops it there instead (SIGSTOP), once: the run keeps
    what it holds (the lock, a claimed order) until the test sends SIGCONT,
    so "during a run" does not depend on how fast the machine is.
    """

    def __init__(self, crash_at: str | None) -> None:
        self.crash_at = crash_at
        self.hits = 0

    def __call__(self, name: str) -> None:
        if not self.crash_at:
            return
        target, _, rest = self.crash_at.partition(":")
        if target != name:
            return
        nth, _, action = rest.partition(":")
        self.hits += 1
        if action == "stop":
            if self.hits == int(nth or 1):
                os.kill(os.getpid(), signal.SIGSTOP)
        elif self.hits >= int(nth or 1):
            os.kill(os.getpid(), signal.SIGKILL)


@dataclass
class PhaseReport:
    """What an after-creation phase did, one outcome per order and write (each has ``.what``)."""

    outcomes: list[Any] = field(default_factory=list)

    def count(self, what: str) -> int:
        return sum(1 for o in self.outcomes if o.what == what)

    @property
    def needs_attention(self) -> bool:
        """A failure or a report the operator must act on (exit 3)."""
        return bool(self.count("failed") or self.count("reported"))


@dataclass
class RunReport:
    """The three phases' reports, and what stopped the run, if anything."""

    orders: SyncReport | None = None
    tracking: TrackingReport | None = None
    aftersales: AftersalesReport | None = None
    errors: dict[str, EcomsendError] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)  # phase -> why it did not run

    @property
    def problem(self) -> EcomsendError | None:
        """The first error that ended a phase or cut it short (exit 1)."""
        problems = [*self.errors.values()]
        for report in (self.orders, self.aftersales):
            if report is not None and report.problem is not None:
                problems.append(report.problem)
        return problems[0] if problems else None

    @property
    def needs_attention(self) -> bool:
        """Anything the operator must act on (exit 3)."""
        return any(r is not None and r.needs_attention for r in (self.orders, self.tracking, self.aftersales))

    def as_json(self) -> dict:
        out: dict[str, Any] = self.orders.as_json() if self.orders is not None else {}
        out.pop("error", None)
        if self.tracking is not None:
            out["tracking"] = self.tracking.as_json()
        if self.aftersales is not None:
            out["aftersales"] = self.aftersales.as_json()
        if self.skipped:
            out["skipped_phases"] = dict(self.skipped)
        problem = self.problem
        if problem is not None:
            out["error"] = {"message": problem.message, "hint": problem.hint, "exit_code": problem.exit_code}
        return out


def run_phases(store: Store, tiktok: Any, shopify: Any, config: Config, options: SyncOptions, *,
               phases: tuple[str, ...] = PHASES, on_event: Callable[..., None] | None = None,
               crash_at: str | None = None, refresh_catalog: Callable[[], None] | None = None) -> RunReport:
    """One sync-orders run under the lock of the store file (exit 75 when another run holds it)."""
    from .aftersales import AftersalesPhase
    from .sync import Syncer
    from .tracking import TrackingPhase

    report = RunReport()
    wanted = [p for p in PHASES if p in phases]
    if options.dry_run:
        for phase in ("tracking", "aftersales"):
            if phase in wanted:
                report.skipped[phase] = "a dry run writes nothing, in Shopify or on TikTok"
        wanted = [p for p in wanted if p == "orders"]
    references_only = False
    if "tracking" in wanted and not config.sync.tracking:
        report.skipped["tracking"] = "sync.tracking is off in the config (TikTok references are still written)"
        references_only = True
    if "aftersales" in wanted and not config.sync.aftersales:
        report.skipped["aftersales"] = "sync.aftersales is off in the config"
        wanted.remove("aftersales")
    with SyncLock(store, record_holder=not options.dry_run):
        for phase in wanted:
            try:
                if phase == "orders":
                    report.orders = Syncer(store, tiktok, shopify, config.sync, options, on_event=on_event,
                                           crash_at=crash_at, refresh_catalog=refresh_catalog).run()
                elif phase == "tracking":
                    report.tracking = TrackingPhase(store, tiktok, shopify, dict(config.tracking.carriers),
                                                    on_event=on_event, crash_at=crash_at,
                                                    workers=config.sync.concurrency,
                                                    reconcile_wait=options.reconcile_wait,
                                                    ).run(references_only=references_only)
                else:
                    report.aftersales = AftersalesPhase(store, tiktok, shopify, restock=config.aftersales.restock,
                                                        initial_days=config.sync.initial_days,
                                                        on_event=on_event, crash_at=crash_at).run()
            except (NetworkError, AuthError) as exc:
                report.errors[phase] = exc  # the next phases would meet the same wall
                for later in wanted[wanted.index(phase) + 1:]:
                    report.skipped[later] = f"not run: {phase} could not reach a service"
                break
            except EcomsendError as exc:
                report.errors[phase] = exc
    return report
