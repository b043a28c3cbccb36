"""Configuration (DESIGN §7): find the file, interpolate ``${ENV}``, validate, type.

This is the only module that reads the environment. Precedence is
flag > environment variable > config file > default. Secrets are held in
:class:`Secret`, whose ``str``/``repr`` never show the value, so a secret
cannot leak through a log line, an f-string or a traceback by accident.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import ConfigError

APP_NAME = "ecomsend"
DEFAULT_STATUSES = (
    "AWAITING_SHIPMENT",
    "AWAITING_COLLECTION",
    "PARTIALLY_SHIPPING",
    "IN_TRANSIT",
    "DELIVERED",
    "COMPLETED",
)
ALL_STATUSES = DEFAULT_STATUSES + ("UNPAID", "ON_HOLD", "CANCELLED")
INVENTORY_BEHAVIOURS = ("BYPASS", "DECREMENT_IGNORING_POLICY", "DECREMENT_OBEYING_POLICY")
REDACTED = "********"


class Secret:
    """A secret value. Printing, formatting or repr-ing it shows ``********``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        """The real value, for the one place that sends it (an HTTP header, a signature)."""
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return f"Secret({REDACTED!r})"

    def __str__(self) -> str:
        return REDACTED

    def __format__(self, spec: str) -> str:
        return REDACTED


def user_config_path() -> Path:
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.yaml"


def default_store_path() -> Path:
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME)) / "ecomsend.db"


@dataclass(frozen=True)
class ShopifyConfig:
    shop: str = ""
    api_version: str = "2026-07"
    access_token: Secret | None = None
    client_id: str = ""
    client_secret: Secret | None = None

    @property
    def configured(self) -> bool:
        return bool(self.shop) and bool(self.access_token or (self.client_id and self.client_secret))

    @property
    def base_url(self) -> str:
        """``https://x.myshopify.com`` for a bare shop domain; a full URL as given."""
        shop = self.shop.rstrip("/")
        if "://" in shop:
            return shop
        return f"https://{shop}"


@dataclass(frozen=True)
class TikTokConfig:
    api_base_url: str = "https://open-api.tiktokglobalshop.com"
    auth_base_url: str = "https://auth.tiktok-shops.com"
    app_key: str = ""
    app_secret: Secret | None = None
    access_token: Secret | None = None
    refresh_token: Secret | None = None
    shop_cipher: str = ""
    # The authorization step (`ecomsend auth tiktok`): the app's service id (Partner Center,
    # under the app's name), the seller's region (US sellers authorise on their own host),
    # and where to send the seller instead of TikTok's page (the sandbox's, in its configs).
    service_id: str = ""
    region: str = ""
    authorize_url: str = ""

    @property
    def configured(self) -> bool:
        """The app is known; its tokens come from the config or from `ecomsend auth tiktok` (the store)."""
        return bool(self.app_key and self.app_secret)

    @property
    def has_config_tokens(self) -> bool:
        """Tokens are set in the config: they win over those `ecomsend auth tiktok` stored (§7)."""
        return bool(self.access_token or self.refresh_token)


@dataclass(frozen=True)
class SyncConfig:
    statuses: tuple[str, ...] = DEFAULT_STATUSES
    overlap_minutes: int = 15
    initial_days: int = 7
    inventory_behaviour: str = "DECREMENT_OBEYING_POLICY"
    source_name: str = "tiktok"
    tags: tuple[str, ...] = ("TikTok",)
    concurrency: int = 4
    # How long an unconfirmed send is left before it is looked up: Shopify's
    # order search may lag a new order (an order left `creating` is re-created
    # only when absent from search for longer, §5.4), and TikTok may still be
    # handling a push or reference whose answer never came (read back only
    # after it, §6b: tracking.py).
    reconcile_wait_seconds: int = 60
    # Shop-currency value of one unit of another currency, for TikTok orders in
    # a currency the Shopify shop does not keep its books in (§5.7).
    exchange_rates: dict[str, float] = field(default_factory=dict)
    # TikTok-fulfilled (FBT) orders: skipped unless set; then created already
    # fulfilled from this Shopify location (a gid://shopify/Location/N) (§5.8).
    fbt_location_id: str = ""
    samples: str = "create"  # TikTok sample orders: create (tagged tiktok-sample) or skip
    tracking: bool = True  # phase 2 of sync-orders: tracking and references back to TikTok (§6b)
    aftersales: bool = True  # phase 3: TikTok's cancellations and returns into Shopify (§6b)


@dataclass(frozen=True)
class TrackingConfig:
    # Shopify carrier name -> TikTok shipping provider name or id, where the names differ (§6b.1).
    carriers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AftersalesConfig:
    restock: bool = True  # returned goods go back into Shopify's stock (§6b.4)


@dataclass(frozen=True)
class CatalogConfig:
    max_age_minutes: int = 60


@dataclass(frozen=True)
class NotifyConfig:
    # Apprise URLs (Slack, Teams, email, ntfy, a webhook…): one message per sync-orders run that
    # needs the operator (see notify.py). Each may hold a token, so each is a Secret.
    urls: tuple[Secret, ...] = ()
    blocked_after_hours: int = 24  # a blocked order is worth a message this long after it was first pulled
    repeat_hours: int = 24  # the same problems are told again after this long


def redacted_url(url: Secret) -> str:
    """An Apprise URL as it may be shown: its scheme only (``slack://********``)."""
    scheme = url.get().partition("://")[0]
    return f"{scheme}://{REDACTED}" if _URL_SCHEME_RE.fullmatch(scheme) else REDACTED


@dataclass(frozen=True)
class Config:
    store: Path = field(default_factory=default_store_path)
    shopify: ShopifyConfig = field(default_factory=ShopifyConfig)
    tiktok: TikTokConfig = field(default_factory=TikTokConfig)
    sync: SyncConfig = field(default_factory=SyncConfig)
    catalog: CatalogConfig = field(default_factory=CatalogConfig)
    tracking: TrackingConfig = field(default_factory=TrackingConfig)
    aftersales: AftersalesConfig = field(default_factory=AftersalesConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    # How long a command waits for another process's write transaction on the
    # store before giving up with a message naming it (DESIGN §7).
    store_busy_timeout_seconds: int = 10
    # The most one call to Shopify or TikTok may take in all (connection, answer,
    # retries of the exchange): a server that trickles or never answers cannot
    # hold a cron run (issue 15).
    network_deadline_seconds: int = 30
    source: Path | None = None  # the file it came from, if any
    warnings: tuple[str, ...] = ()
    store_is_default: bool = True  # no flag, env var or config key chose the store
    actor: str = ""  # who is running: recorded in the link history
    crash_at: str | None = None  # test hook ($ECOMSEND_TEST_CRASH_AT): sync dies at this step

    def redacted(self) -> dict[str, Any]:
        """The resolved config as plain data, every secret replaced by ``********``."""
        return {
            "source": str(self.source) if self.source else None,
            "store": str(self.store),
            "shopify": _section_dict(self.shopify),
            "tiktok": _section_dict(self.tiktok),
            "sync": _section_dict(self.sync),
            "catalog": _section_dict(self.catalog),
            "tracking": _section_dict(self.tracking),
            "aftersales": _section_dict(self.aftersales),
            "notify": _section_dict(self.notify),
            "store_busy_timeout_seconds": self.store_busy_timeout_seconds,
            "network_deadline_seconds": self.network_deadline_seconds,
        }


def _section_dict(section: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields(section):
        value = getattr(section, f.name)
        if isinstance(value, Secret):
            value = REDACTED if value else ""
        elif isinstance(value, tuple):
            value = [redacted_url(v) if isinstance(v, Secret) else v for v in value]
        elif isinstance(value, dict):
            value = dict(value)
        out[f.name] = value
    return out


# --- schema ---------------------------------------------------------------
# key -> (kind, is_secret). kind is "str", "int", "bool", "strlist", "strmap" (name -> name),
# "rates" (currency -> number), "urllist" (Apprise URLs, each one a secret).
_SCHEMA: dict[str, dict[str, tuple[str, bool]]] = {
    "shopify": {
        "shop": ("str", False),
        "api_version": ("str", False),
        "access_token": ("str", True),
        "client_id": ("str", False),
        "client_secret": ("str", True),
    },
    "tiktok": {
        "api_base_url": ("str", False),
        "auth_base_url": ("str", False),
        "app_key": ("str", False),
        "app_secret": ("str", True),
        "access_token": ("str", True),
        "refresh_token": ("str", True),
        "shop_cipher": ("str", False),
        "service_id": ("str", False),
        "region": ("str", False),
        "authorize_url": ("str", False),
    },
    "sync": {
        "statuses": ("strlist", False),
        "overlap_minutes": ("int", False),
        "initial_days": ("int", False),
        "inventory_behaviour": ("str", False),
        "source_name": ("str", False),
        "tags": ("strlist", False),
        "concurrency": ("int", False),
        "reconcile_wait_seconds": ("int", False),
        "exchange_rates": ("rates", False),
        "fbt_location_id": ("str", False),
        "samples": ("str", False),
        "tracking": ("bool", False),
        "aftersales": ("bool", False),
    },
    "tracking": {
        "carriers": ("strmap", False),
    },
    "aftersales": {
        "restock": ("bool", False),
    },
    "catalog": {
        "max_age_minutes": ("int", False),
    },
    "notify": {
        "urls": ("urllist", True),
        "blocked_after_hours": ("int", False),
        "repeat_hours": ("int", False),
    },
}
_SECTIONS = {
    "shopify": ShopifyConfig,
    "tiktok": TikTokConfig,
    "sync": SyncConfig,
    "catalog": CatalogConfig,
    "tracking": TrackingConfig,
    "aftersales": AftersalesConfig,
    "notify": NotifyConfig,
}
# Top-level keys that are not sections: key -> kind.
_TOP_LEVEL: dict[str, str] = {"store": "path", "store_busy_timeout_seconds": "int",
                              "network_deadline_seconds": "int"}
# Keys holding a URL (or a bare host): no credentials in them, no plain http off this machine.
_URL_KEYS: dict[str, str] = {
    "shopify.shop": "shopify.access_token (or shopify.client_id and shopify.client_secret)",
    "tiktok.api_base_url": "tiktok.app_key, tiktok.app_secret and tiktok.access_token",
    "tiktok.auth_base_url": "tiktok.app_key, tiktok.app_secret and tiktok.refresh_token",
    "tiktok.authorize_url": "tiktok.app_key and tiktok.app_secret",
}
# What an Apprise URL starts with; whether Apprise knows the service is checked where Apprise is
# imported (doctor, config show, sending), not here: loading it costs every command 0.1 s.
_URL_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,31}")
_APPRISE_HINT = ("write each as service://…, e.g. ntfy://ntfy.sh/my-topic or slack://TokenA/TokenB/TokenC "
                 "(Apprise's documentation lists every service)")
_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def find_config_file(flag: str | os.PathLike[str] | None, env: dict[str, str]) -> Path | None:
    """``--config``, then ``$ECOMSEND_CONFIG``, then the user config folder; None if none."""
    if flag:
        path = Path(flag).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"config file {path} does not exist",
                hint="check the --config path, or copy config.example.yaml there",
            )
        return path
    if env.get("ECOMSEND_CONFIG"):
        path = Path(env["ECOMSEND_CONFIG"]).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"config file {path} (from $ECOMSEND_CONFIG) does not exist",
                hint="fix or unset ECOMSEND_CONFIG",
            )
        return path
    path = user_config_path()
    return path if path.is_file() else None


def _login_name() -> str:
    """Who runs ecomsend when the environment does not say (cron, systemd, `env -i`): the
    account of this process, for the history's actor column."""
    import getpass

    try:
        return getpass.getuser()  # reads the password database once the variables are unset
    except (KeyError, OSError):  # a uid with no account (some containers)
        return "unknown"


def config_write_path(flag: str | os.PathLike[str] | None, env: dict[str, str] | None = None) -> Path:
    """Where ``ecomsend init`` writes the config: ``--config``, ``$ECOMSEND_CONFIG``, else the
    user config folder — the places :func:`find_config_file` then looks in, in its order."""
    env = dict(os.environ) if env is None else env
    if flag:
        return Path(flag).expanduser()
    if env.get("ECOMSEND_CONFIG"):
        return Path(env["ECOMSEND_CONFIG"]).expanduser()
    return user_config_path()


def load_config(
    config_path: str | os.PathLike[str] | None = None,
    *,
    store: str | os.PathLike[str] | None = None,
    env: dict[str, str] | None = None,
) -> Config:
    """Resolve the configuration. ``store`` is the ``--store`` flag, if given."""
    env = dict(os.environ) if env is None else env
    path = find_config_file(config_path, env)
    raw: dict[str, Any] = {}
    warnings: list[str] = []
    if path is not None:
        raw = _read_yaml(path)
    where = str(path) if path else "config"

    kwargs: dict[str, Any] = {}
    for key in raw:
        if key not in _TOP_LEVEL and key not in _SCHEMA:
            raise ConfigError(
                f"{where}: unknown key '{key}'",
                hint=f"valid top-level keys: {', '.join([*_TOP_LEVEL, *_SCHEMA])}",
            )
    has_secret = False
    for section, spec in _SCHEMA.items():
        value = raw.get(section)
        if value is None:
            continue
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: '{section}' must be a mapping of keys, not {_kind(value)}")
        values: dict[str, Any] = {}
        for key, item in value.items():
            if key not in spec:
                raise ConfigError(
                    f"{where}: unknown key '{section}.{key}'",
                    hint=f"valid keys under {section}: {', '.join(spec)}",
                )
            kind, secret = spec[key]
            if item is None:
                continue
            item = _coerce(f"{section}.{key}", kind, _interpolate(item, env, where, f"{section}.{key}"), where)
            if kind == "urllist":
                if item:
                    has_secret = True
                item = tuple(Secret(url) for url in item)
            elif secret:
                if item:
                    has_secret = True
                item = Secret(item)
            elif kind == "strlist":
                item = tuple(item)
            if f"{section}.{key}" in _URL_KEYS:
                _check_url(f"{section}.{key}", item, where)
            values[key] = item
        kwargs[section] = _SECTIONS[section](**values)
    _validate(kwargs, where)
    for key in ("store_busy_timeout_seconds", "network_deadline_seconds"):
        if raw.get(key) is not None:
            kwargs[key] = _coerce(key, "int", _interpolate(raw[key], env, where, key), where)
    if kwargs.get("network_deadline_seconds") == 0:
        raise ConfigError(f"{where}: 'network_deadline_seconds' must be at least 1",
                          hint="30 suits most shops")

    store_value: Any = store or env.get("ECOMSEND_STORE") or raw.get("store")
    if store_value is not None:
        if not isinstance(store_value, str | os.PathLike):
            raise ConfigError(f"{where}: 'store' must be a path (string), not {_kind(store_value)}")
        store_value = _interpolate(str(store_value), env, where, "store")
        kwargs["store"] = Path(store_value).expanduser()
        kwargs["store_is_default"] = False
    kwargs["crash_at"] = env.get("ECOMSEND_TEST_CRASH_AT") or None
    kwargs["actor"] = env.get("USER") or env.get("LOGNAME") or env.get("USERNAME") or _login_name()

    if path is not None and has_secret and _readable_by_others(path):
        warnings.append(
            f"{path} holds secrets and can be read by other users; run: chmod 600 {path}"
        )
    return Config(source=path, warnings=tuple(warnings), **kwargs)


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a UTF-8 text file", hint="save it as UTF-8 YAML") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror})") from None
    try:
        data = _load_yaml(text, path)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError(
            f"{path}: not valid YAML{at}: {problem}",
            hint="fix the syntax (compare with config.example.yaml)",
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be a mapping of keys, not {_kind(data)}")
    return data


def _load_yaml(text: str, path: Path) -> Any:
    """``yaml.safe_load``, refusing a key given twice in one mapping (YAML would keep the last, silently)."""
    import yaml

    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _refuse_duplicate_keys(node, "", path, set())
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _refuse_duplicate_keys(node: Any, prefix: str, path: Path, visited: set[int]) -> None:
    import yaml

    if id(node) in visited:  # an alias: checked already (and it may refer to itself)
        return
    visited.add(id(node))
    if isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _refuse_duplicate_keys(item, prefix, path, visited)
        return
    if not isinstance(node, yaml.MappingNode):
        return
    seen: dict[tuple[str, str], int] = {}
    for key_node, value_node in node.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
            name = f"{prefix}{key_node.value}"
            line = key_node.start_mark.line + 1
            first = seen.get((key_node.tag, key_node.value))
            if first is not None:
                raise ConfigError(
                    f"{path}: duplicate key '{name}' at line {line} (first at line {first})",
                    hint="keep one of them: YAML would silently use the last",
                )
            seen[(key_node.tag, key_node.value)] = line
            child = f"{name}."
        else:
            child = prefix
        _refuse_duplicate_keys(value_node, child, path, visited)


def _check_url(key: str, value: str, where: str) -> None:
    """Refuse credentials in a URL-valued key, and plain http:// to anything but this machine.

    The message never repeats the value: it may hold a password.
    """
    from urllib.parse import urlsplit

    if not value:
        return
    try:
        parts = urlsplit(value if "://" in value else f"https://{value}")
    except ValueError:  # an unbalanced '[' or ']' ("Invalid IPv6 URL")
        raise ConfigError(
            f"{where}: '{key}' is not a usable URL (a stray '[' or ']'?)",
            hint="e.g. https://open-api.tiktokglobalshop.com, or my-store.myshopify.com for shopify.shop",
        ) from None
    if "@" in parts.netloc:
        raise ConfigError(
            f"{where}: '{key}' holds a user name or password; credentials do not belong in a URL",
            hint=f"remove the 'user:password@' part and put the credential in {_URL_KEYS[key]}",
        )
    try:
        host = parts.hostname or ""
    except ValueError:
        host = ""
    if parts.scheme == "https" and host:
        return
    if parts.scheme == "http" and host and _is_loopback(host):
        return
    if parts.scheme == "http" and host:
        raise ConfigError(
            f"{where}: '{key}' uses plain http:// to {host}, which sends tokens unencrypted; "
            "only this machine (127.0.0.1, ::1, localhost) may use http://",
            hint=f"use https://{host}",
        )
    raise ConfigError(
        f"{where}: '{key}' must be an https:// URL or a host name",
        hint="e.g. https://open-api.tiktokglobalshop.com, or my-store.myshopify.com for shopify.shop",
    )


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _interpolate(value: Any, env: dict[str, str], where: str, key: str) -> Any:
    if isinstance(value, list):
        return [_interpolate(v, env, where, key) for v in value]
    if isinstance(value, dict):
        return {k: _interpolate(v, env, where, f"{key}.{k}") for k, v in value.items()}
    if not isinstance(value, str):
        return value

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in env:
            raise ConfigError(
                f"{where}: '{key}' refers to ${{{name}}}, which is not set",
                hint=f"export {name}=... or write the value in the file",
            )
        return env[name]

    return _ENV_RE.sub(sub, value)


def _coerce(key: str, kind: str, value: Any, where: str) -> Any:
    if kind == "str":
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise ConfigError(f"{where}: '{key}' must be a string, not {_kind(value)}")
        return str(value)
    if kind == "int":
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: '{key}' must be a whole number, not {_kind(value)}")
        if value < 0:
            raise ConfigError(f"{where}: '{key}' must not be negative")
        return value
    if kind == "strlist":
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not all(
            isinstance(v, str | int) and not isinstance(v, bool) for v in value
        ):
            raise ConfigError(f"{where}: '{key}' must be a list of strings")
        return [str(v) for v in value]
    if kind == "bool":
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no", "on", "off"):
            value = value.strip().lower() in ("true", "yes", "on")
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: '{key}' must be true or false, not {_kind(value)}")
        return value
    if kind == "strmap":
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str | int) and not isinstance(v, bool) for k, v in value.items()
        ):
            raise ConfigError(f"{where}: '{key}' must be a mapping of names to names",
                              hint='e.g. {"DHL Express": "DHL"}')
        return {k: str(v) for k, v in value.items()}
    if kind == "rates":
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: '{key}' must be a mapping of currency codes to rates, "
                              f"not {_kind(value)}", hint="e.g. {GBP: 1.27, EUR: 1.08}")
        rates = {}
        for code, rate in value.items():
            if not isinstance(code, str) or not re.fullmatch(r"[A-Z]{3}", code):
                raise ConfigError(f"{where}: '{key}' has {code!r}, not a three-letter currency code",
                                  hint="use ISO codes in capitals, e.g. GBP")
            if isinstance(rate, str):
                try:
                    rate = float(rate)
                except ValueError:
                    pass
            if isinstance(rate, bool) or not isinstance(rate, int | float) or not 0 < rate < 1e9:
                raise ConfigError(f"{where}: '{key}.{code}' must be a positive number, not {_kind(rate)}",
                                  hint="the shop currency's value of one unit, e.g. 1.27")
            rates[code] = rate
        return rates
    if kind == "urllist":
        # Never repeat a value in a message: an Apprise URL holds the service's token.
        if not isinstance(value, list):
            raise ConfigError(f"{where}: '{key}' must be a list of Apprise URLs, not {_kind(value)}",
                              hint='e.g. urls: ["ntfy://ntfy.sh/my-topic"]')
        for i, url in enumerate(value):
            if not isinstance(url, str):
                raise ConfigError(f"{where}: '{key}[{i}]' must be an Apprise URL (a string), not {_kind(url)}",
                                  hint=_APPRISE_HINT)
            scheme, sep, rest = url.strip().partition("://")
            if not sep or not _URL_SCHEME_RE.fullmatch(scheme) or not rest or any(c.isspace() for c in rest):
                raise ConfigError(f"{where}: '{key}[{i}]' is not an Apprise URL", hint=_APPRISE_HINT)
        return [url.strip() for url in value]
    raise AssertionError(kind)


def _validate(kwargs: dict[str, Any], where: str) -> None:
    tiktok: TikTokConfig | None = kwargs.get("tiktok")
    if tiktok is not None and tiktok.region and not re.fullmatch(r"[A-Za-z]{2}|global", tiktok.region):
        raise ConfigError(
            f"{where}: 'tiktok.region' must be a two-letter region code (e.g. US, GB) or global, "
            f"not {tiktok.region!r}",
            hint="US sellers authorise on TikTok's US host; every other region on the global one")
    sync: SyncConfig | None = kwargs.get("sync")
    if sync is not None:
        if not sync.statuses:
            raise ConfigError(
                f"{where}: 'sync.statuses' is empty, so sync-orders would pull no orders at all",
                hint=f"list the statuses to copy (default: {', '.join(DEFAULT_STATUSES)}), "
                "or remove the key for the default",
            )
        unknown = [s for s in sync.statuses if s not in ALL_STATUSES]
        if unknown:
            raise ConfigError(
                f"{where}: 'sync.statuses' has unknown status {unknown[0]}",
                hint=f"use any of {', '.join(DEFAULT_STATUSES)}",
            )
        if sync.inventory_behaviour not in INVENTORY_BEHAVIOURS:
            raise ConfigError(
                f"{where}: 'sync.inventory_behaviour' must be one of {', '.join(INVENTORY_BEHAVIOURS)}"
            )
        if sync.concurrency < 1:
            raise ConfigError(f"{where}: 'sync.concurrency' must be at least 1")
        if sync.samples not in ("create", "skip"):
            raise ConfigError(f"{where}: 'sync.samples' must be create or skip, not {sync.samples!r}")
        if sync.fbt_location_id and not re.fullmatch(r"gid://shopify/Location/\d+", sync.fbt_location_id):
            raise ConfigError(
                f"{where}: 'sync.fbt_location_id' must be a Shopify location id (gid://shopify/Location/N)",
                hint="copy it from Shopify admin: Settings › Locations (the number in the address)")


def _readable_by_others(path: Path) -> bool:
    try:
        mode = path.stat().st_mode
    except OSError:
        return False
    return bool(mode & (stat.S_IRGRP | stat.S_IROTH))


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, int | float):
        return f"the number {value}"
    return type(value).__name__
