"""What every command shares: the session, error handling and exit codes, rendering.

:class:`Session` opens what a command needs, lazily. :func:`_run` turns
errors from the core (:mod:`errors`) into a one-line message on stderr and
the exit code of DESIGN §3; :func:`command` registers a command with it.
Heavy modules (httpx, the store) are imported inside methods, so
``ecomsend --help`` stays fast.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import typer

from ..errors import EXIT_INTERRUPTED, Aborted, EcomsendError

if TYPE_CHECKING:
    from ..config import Config
    from ..output import Output
    from ..store import Store

F = TypeVar("F", bound=Callable[..., Any])

# The largest number SQLite stores: a larger id or limit is a usage error, not an OverflowError.
SQLITE_INT_MAX = 2**63 - 1


class Session:
    """What one invocation works with: options, config, store and output, opened lazily."""

    def __init__(self, config_path: str | None, store_path: str | None, quiet: bool, verbose: bool):
        from ..output import Output

        self.config_path = config_path
        self.store_path = store_path
        self.out: Output = Output(quiet=quiet, verbose=verbose)
        self.out.context = global_options(config_path, store_path)
        self._config: Config | None = None
        self._store: Store | None = None
        self._clients: list[Any] = []

    @property
    def config(self) -> Config:
        if self._config is None:
            from ..config import load_config

            self._config = load_config(self.config_path, store=self.store_path)
            for warning in self._config.warnings:
                self.out.warn(warning)
        return self._config

    @property
    def store(self) -> Store:
        if self._store is None:
            from ..store import Store

            config = self.config
            self._store = Store.open(config.store, create_folder=config.store_is_default,
                                     busy_timeout=config.store_busy_timeout_seconds)
            self.store_warnings()
        return self._store

    def store_warnings(self) -> None:
        """Say what the store has to say (a store readable by others holding tokens), once."""
        if self._store is not None:
            for warning in self._store.warnings:
                self.out.warn(warning)
            self._store.warnings.clear()

    def shopify(self, **options: Any) -> Any:
        """A Shopify client for the configured shop, its token cached in the store.

        ``options`` go to :class:`~ecomsend_cli.shopify.ShopifyClient` (e.g. ``max_retries``).
        """
        from ..shopify import ShopifyClient

        return self._client(
            ShopifyClient, self.config.shopify, "Shopify",
            "set shopify.shop and shopify.access_token (or client_id and client_secret)",
            **options,
        )

    def tiktok(self) -> Any:
        """A TikTok Shop client, its refreshed tokens kept in the store."""
        from ..tiktok import TikTokClient

        return self._client(
            TikTokClient, self.config.tiktok, "TikTok Shop",
            "run `ecomsend init`, or set tiktok.app_key and tiktok.app_secret",
        )

    def _client(self, cls: Any, section: Any, name: str, what_to_set: str, **options: Any) -> Any:
        from ..errors import ConfigError

        if not section.configured:
            raise ConfigError(
                f"{name} is not configured",
                hint=f"{what_to_set} in the config; see config.example.yaml, or try `ecomsend demo`",
            )
        client = cls(section, self.store, deadline=self.config.network_deadline_seconds, **options)
        self._clients.append(client)
        return client

    def ensure_catalog(self, *, dry_run: bool = False, local_ok: bool = False) -> None:
        """Refresh the Shopify catalog cache when older than ``catalog.max_age_minutes`` (§4.3).

        Without Shopify credentials the cache is used as it is; a dry run
        writes nothing, so it only says the cache is stale. ``local_ok``: the
        command's data is local (``list-unlinked``), so when Shopify cannot be
        reached it warns that the cache may be stale, and goes on with it.
        """
        config = self.config
        if not config.shopify.configured:
            return
        from ..catalog import catalog_age, catalog_is_stale, refresh_catalog

        if not catalog_is_stale(self.store, config.catalog.max_age_minutes):
            return
        if dry_run:
            self.out.warn(
                f"the Shopify catalog cache is older than {config.catalog.max_age_minutes} min; "
                "a dry run writes nothing, so run `ecomsend catalog refresh` for current proposals"
            )
            return
        self.out.info("Refreshing the Shopify catalog cache…")
        if not local_ok:
            result = refresh_catalog(self.store, self.shopify(), poll_interval=1.0)
        else:
            from ..errors import ApiError

            try:
                # One retry: the listing does not need Shopify, so it does not wait long for it.
                result = refresh_catalog(self.store, self.shopify(max_retries=1), poll_interval=1.0)
            except ApiError as exc:
                age = catalog_age(self.store)
                cache = ("the cache was never refreshed" if age is None
                         else f"the cache was refreshed {_duration(age)} ago")
                self.out.warn(
                    f"could not refresh the Shopify catalog cache ({exc.message}); {cache} and may be "
                    "stale (suggestions and variant details as of then) — run `ecomsend catalog "
                    "refresh` once Shopify can be reached"
                )
                return
        self.out.info(f"Catalog cache: {result.variants} variant(s) ({result.mode} refresh).")
        if warning := result.refused_warning():
            self.out.warn(warning)

    def close(self) -> None:
        for client in self._clients:
            client.close()
        self._clients.clear()
        if self._store is not None:
            self.store_warnings()  # raised after opening, e.g. by a refreshed token
            self._store.close()
            self._store = None


def global_options(config_path: str | None, store_path: str | None) -> str:
    """``--config``/``--store`` as the user gave them, shell-quoted, for the hints to repeat."""
    import shlex

    parts = []
    if config_path:
        parts += ["--config", shlex.quote(config_path)]
    if store_path:
        parts += ["--store", shlex.quote(store_path)]
    return " ".join(parts)


def _duration(age: Any) -> str:
    """A ``timedelta`` as a person says it: ``45 s``, ``12 min``, ``3 h 5 min``, ``2 d 4 h``."""
    seconds = max(0, int(age.total_seconds()))
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


_session: Session | None = None


def session() -> Session:
    assert _session is not None, "the main callback sets the session"
    return _session


def _run(fn: F) -> F:
    """Turn core errors into one line on stderr and the exit code of DESIGN §3.

    A command called with ``--json`` (its ``as_json`` argument) also prints,
    on any handled failure, one JSON document on stdout:
    ``{"error": {"message", "hint", "exit_code"}}`` — unless it already wrote
    its own document (``link --csv --json`` lists the invalid rows, then fails).
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        as_json = bool(kwargs.get("as_json"))
        try:
            return fn(*args, **kwargs)
        except Aborted as exc:
            session().out.info(str(exc))
            _fail(as_json, exc.message, exc.hint, exc.exit_code)
        except EcomsendError as exc:
            session().out.error(str(exc))
            _fail(as_json, exc.message, exc.hint, exc.exit_code)
        except KeyboardInterrupt:
            message = "interrupted; nothing more was written"
            session().out.error(message)
            _fail(as_json, message, None, EXIT_INTERRUPTED)
        except typer.BadParameter as exc:
            # Raised by the command itself (a wrong combination of options): typer prints
            # the usage on stderr and exits 2; the script reading stdout gets its document.
            if as_json and not session().out.data_written:
                session().out.json(_error_document(exc.format_message(), None, exc.exit_code))
            raise
        except Exception as exc:
            error = _store_error(exc)
            if error is None:
                raise
            session().out.error(str(error))
            _fail(as_json, error.message, error.hint, error.exit_code)
        finally:
            if _session is not None:
                _session.close()

    return wrapper  # type: ignore[return-value]


def _error_document(message: str, hint: str | None, exit_code: int) -> dict:
    """What ``--json`` prints on failure (a documented interface, like the listings' fields)."""
    return {"error": {"message": message, "hint": hint, "exit_code": exit_code}}


def _fail(as_json: bool, message: str, hint: str | None, exit_code: int) -> NoReturn:
    """End the command with ``exit_code``, after the JSON error document when ``--json`` asked."""
    out = session().out
    if as_json and not out.data_written:
        out.json(_error_document(message, hint and out.in_context(hint), exit_code))
    raise typer.Exit(exit_code) from None


def _store_error(exc: Exception) -> EcomsendError | None:
    """A SQLite error that escaped the store (a plain read of a busy or damaged file) as a StoreError."""
    import sqlite3

    if not isinstance(exc, sqlite3.Error):
        return None
    from ..store import store_error

    s = session()
    if s._store is not None:
        return s._store.error(exc)
    config = s._config
    return store_error(exc, config.store if config else Path("store"),
                       busy_timeout=config.store_busy_timeout_seconds if config else 10)


def command(target: typer.Typer, name: str | None = None, **kwargs: Any) -> Callable[[F], F]:
    """Register a command on ``target`` with the shared error handling."""

    def decorator(fn: F) -> F:
        target.command(name, **kwargs)(_run(fn))
        return fn

    return decorator


JSON_OPT = typer.Option(False, "--json", help="One JSON document on stdout (stable field names).")


def shell_args(*args: str) -> str:
    """Arguments as a shell reads them back (for the commands hints name)."""
    import shlex

    return " ".join(shlex.quote(a) for a in args)


def variant_number(variant_id: str) -> str:
    """The plain number of a variant GID (the CLI accepts it for SHOPIFY)."""
    return variant_id.rsplit("/", 1)[-1]


def _variant_label(variant: Any) -> str:
    if variant is None:
        return ""
    title = variant.product_title
    if variant.variant_title and variant.variant_title != "Default Title":
        title += f" / {variant.variant_title}"
    return title


def _warn_stale(out: Output, stale: dict[str, Any], *, limit: int = 20) -> None:
    """Say which links are stale and how to fix each (stderr), at most ``limit`` of them."""
    if not stale:
        return
    out.warn(f"{len(stale)} link(s) are stale: their Shopify variant was deleted or changed SKU, "
             "and orders needing them wait (blocked) until they are fixed:")
    for item in list(stale.values())[:limit]:
        out.info(f"  {item.tiktok_sku_id}: {item.reason}")
    if len(stale) > limit:
        out.info(f"  … and {len(stale) - limit} more; `ecomsend links --json` lists them all.")


def notify_after_run(s: Session, report: Any, options: Any) -> None:
    """After a sync-orders run: the alert of :mod:`..notify`, if one is due. A receiver that fails is a
    warning on stderr; nothing here changes the run's outcome or exit code."""
    if not s.config.notify.urls or options.dry_run:
        return  # the common case costs nothing: no store reads, no imports
    from ..notify import notify_after_run as notify

    try:
        result = notify(s.store, s.config, report, options)
    except EcomsendError as exc:  # e.g. a busy store: the sync itself is done
        s.out.warn(f"the alert could not be prepared: {exc}")
        return
    for warning in result.warnings:
        s.out.warn(f"alert not delivered to {warning}")
    if result.sent:
        s.out.info(f"Alert sent: {result.title}")
    elif result.why_not and result.alerts:
        s.out.note(f"No alert sent: {result.why_not}.")
