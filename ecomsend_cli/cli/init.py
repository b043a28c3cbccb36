"""`ecomsend init`: the first run, from nothing to a working config and both shops connected.

Asks (or takes from flags) the Shopify shop and credentials and the TikTok
app, offering ``${ENV}`` references instead of secrets in the file; writes the
config (mode 0600, an existing one only replaced when the operator says so);
then runs ``auth tiktok``, ``auth shopify``, a ``catalog refresh`` and a
``sync-orders --dry-run``, and ends with the cron line to install.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import typer

from . import app
from .common import Session, command, session

_DEFAULT_ENV = {
    "shopify.access_token": "SHOPIFY_ACCESS_TOKEN",
    "shopify.client_secret": "SHOPIFY_CLIENT_SECRET",
    "tiktok.app_secret": "TIKTOK_APP_SECRET",
}


def _env_ref(value: str) -> str | None:
    """``NAME`` when ``value`` is ``$NAME`` or ``${NAME}``, else None."""
    import re

    match = re.fullmatch(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", value.strip())
    return match.group(1) if match else None


def _ask_secret(s: Session, question: str) -> str:
    """A secret typed at the terminal, not echoed (it must not stay on the screen)."""
    s.out.require_terminal("ecomsend init")
    try:
        import termios
    except ImportError:  # no termios (Windows): getpass hides it there
        import getpass

        return getpass.getpass(f"{question}: ", stream=sys.stderr).strip()
    fd = sys.stdin.fileno()
    old = termios.tcgetattr(fd)
    quiet = termios.tcgetattr(fd)
    quiet[3] &= ~termios.ECHO
    # TCSADRAIN, not TCSAFLUSH: a secret typed ahead of the prompt must not be thrown away.
    termios.tcsetattr(fd, termios.TCSADRAIN, quiet)
    try:
        s.out.err.print(f"{question} (not shown): ", end="", markup=False)
        line = sys.stdin.readline()
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)
        s.out.err.print("")
    return line.strip()


def _looks_like_a_secret(name: str) -> bool:
    """True when a "variable name" typed is more likely the secret itself (pasted at the wrong prompt).

    Variable names are short or upper case (TIKTOK_APP_SECRET); app secrets and
    tokens are long runs of lower case and digits (``shpat_…``, hex).
    """
    return len(name) >= 20 and not name.isupper()


class _Answers:
    """The flags given, and the questions for what they left out (asked only on a terminal)."""

    def __init__(self, s: Session, interactive: bool) -> None:
        self.s = s
        self.interactive = interactive
        self.env_secrets = True
        self.used_env: list[str] = []

    def text(self, flag: str | None, question: str, *, default: str = "", needed: str = "") -> str:
        from ..errors import InputError

        if flag:
            return flag.strip()
        if not self.interactive:
            if default or not needed:
                return default
            raise InputError(f"{needed} is needed", hint=f"pass {needed}, or run `ecomsend init` on a terminal")
        while True:
            answer = self.s.out.ask(question, what="ecomsend init", default=default)
            if answer is None:
                from ..errors import Aborted

                raise Aborted("Nothing written.")
            if answer or not needed:
                return answer
            self.s.out.warn("an answer is needed here")

    def secret(self, flag: str | None, key: str, question: str) -> str:
        """The config value of a secret: ``${NAME}`` (recommended) or the secret itself."""
        name = _DEFAULT_ENV[key]
        if flag:
            value = flag.strip()
        elif not self.interactive:
            value = "${" + name + "}"
        elif self.env_secrets:
            while True:
                answer = self.text(None, f"{question}: the environment variable holding it", default=name)
                value = answer if answer.startswith("$") else "$" + answer
                if _env_ref(value) and _looks_like_a_secret(_env_ref(value) or ""):
                    # Written as ${…}, the secret would sit in the config and in the cron advice.
                    self.s.out.warn("that looks like the secret itself, not a variable name; it is not "
                                    f"written. Type the variable's NAME (e.g. {name}), then export it")
                    continue
                if _env_ref(value):
                    break
                self.s.out.warn("type a variable name (letters, digits and _), e.g. " + name)
        else:
            value = ""
            while not value:
                value = _ask_secret(self.s, question)
        ref = _env_ref(value)
        if ref:
            self.used_env.append(ref)
            return "${" + ref + "}"
        return value


def _config_text(data: dict[str, Any]) -> str:
    import time

    import yaml

    header = (f"# ecomsend config, written by `ecomsend init` on {time.strftime('%Y-%m-%d')}.\n"
              "# Every key is described in config.example.yaml. TikTok's tokens are not kept here:\n"
              "# `ecomsend auth tiktok` keeps them in the store.\n")
    return header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True)


def _step(s: Session, path: Path, title: str, *args: str, expect: tuple[int, ...] = (0,)) -> int:
    """Run ``ecomsend ARGS`` with the new config, as the operator would next; relay what it says."""
    import subprocess

    from ..errors import EcomsendError

    s.out.info(f"── {title}\n$ ecomsend {' '.join(args)}")
    store = ["--store", s.store_path] if s.store_path else []
    result = subprocess.run([sys.executable, "-m", "ecomsend_cli", "--config", str(path), *store, *args],
                            capture_output=True, text=True, timeout=600)
    text = (result.stdout + result.stderr).rstrip()
    if text:
        s.out.relay(text)
    if result.returncode not in expect:
        raise EcomsendError(f"`ecomsend {' '.join(args)}` exited {result.returncode}",
                            hint="the output above says why; fix it and run that command again "
                            "(the config is written)")
    return result.returncode


@command(app, "init")
def init(
    shop_domain: str | None = typer.Option(None, "--shop-domain", metavar="DOMAIN",
                                           help="The Shopify shop: my-store.myshopify.com (or a full URL)."),
    shopify_token: str | None = typer.Option(
        None, "--shopify-token", metavar="TOKEN",
        help="A custom app's Admin API token, or '${VAR}' to read it from the environment."),
    shopify_client_id: str | None = typer.Option(None, "--shopify-client-id", metavar="ID",
                                                 help="A Dev Dashboard app's client ID."),
    shopify_client_secret: str | None = typer.Option(
        None, "--shopify-client-secret", metavar="SECRET",
        help="Its client secret, or '${VAR}' (default: '${SHOPIFY_CLIENT_SECRET}')."),
    tiktok_app_key: str | None = typer.Option(None, "--tiktok-app-key", metavar="KEY",
                                              help="The TikTok Shop app key (Partner Center)."),
    tiktok_app_secret: str | None = typer.Option(
        None, "--tiktok-app-secret", metavar="SECRET",
        help="Its app secret, or '${VAR}' (default: '${TIKTOK_APP_SECRET}')."),
    tiktok_service_id: str | None = typer.Option(None, "--tiktok-service-id", metavar="ID",
                                                 help="The app's service ID (for the authorization page)."),
    tiktok_region: str | None = typer.Option(None, "--tiktok-region", metavar="REGION",
                                             help="The seller's region: US, or global (any other)."),
    tiktok_code: str | None = typer.Option(None, "--tiktok-code", metavar="CODE",
                                           help="The TikTok authorization code (else asked for)."),
    tiktok_shop: str | None = typer.Option(None, "--tiktok-shop", metavar="NAME",
                                           help="The TikTok shop to work on, when several are authorised."),
    tiktok_api_url: str | None = typer.Option(None, "--tiktok-api-url", metavar="URL",
                                              help="TikTok's API host (the sandbox's, or a proxy)."),
    tiktok_auth_url: str | None = typer.Option(None, "--tiktok-auth-url", metavar="URL",
                                               help="TikTok's auth host (the sandbox's, or a proxy)."),
    tiktok_authorize_url: str | None = typer.Option(
        None, "--tiktok-authorize-url", metavar="URL",
        help="The authorization page, instead of TikTok's for the region (the sandbox's)."),
    yes: bool = typer.Option(False, "--yes", "-y",
                             help="Ask nothing: answers from the flags; replace an existing config."),
) -> None:
    """First run: write the config, connect both shops, refresh the catalog, try a dry run.

    On a terminal it asks for what the flags leave out; secrets are best
    given as environment variable references (${VAR}), which is what it
    offers. Without a terminal (or with --yes) every answer comes from the
    flags. An existing config is replaced only when you say so (kept as .bak).

    Example: ecomsend init
             ecomsend init --yes --shop-domain my-store.myshopify.com --shopify-client-id ID \\
               --tiktok-app-key KEY --tiktok-service-id SID --tiktok-code CODE
    """
    from ..config import config_write_path
    from ..connect import write_new_config
    from ..errors import Aborted, ConfigError, EcomsendError, NeedsTerminalError

    s = session()
    out = s.out
    interactive = out.interactive() and not yes
    path = config_write_path(s.config_path)
    replace = False
    if path.exists():
        if yes:
            replace = True
        elif not interactive:
            raise NeedsTerminalError(f"{path} exists already and stdin is not a terminal to ask",
                                     hint="pass --yes to replace it (the old one is kept as .bak)")
        elif out.confirm(f"{path} exists already. Replace it (the old one is kept as {path.name}.bak)?",
                         what="ecomsend init"):
            replace = True
        else:
            raise Aborted(f"Kept {path}; nothing written. `ecomsend auth tiktok` and `ecomsend auth "
                          "shopify` work with it as it is.")

    a = _Answers(s, interactive)
    if interactive:
        out.info("Connect your shops. Secrets are best kept out of the config file: it will refer to "
                 "environment variables (${VAR}) that you export before running ecomsend.")
    shopify: dict[str, Any] = {"shop": a.text(shop_domain, "Shopify shop domain (my-store.myshopify.com)",
                                              needed="--shop-domain")}
    if interactive and not (shopify_token or shopify_client_id or tiktok_app_secret):
        answer = a.text(None, "Keep secrets in environment variables (e) or in the config file (f)?",
                        default="e")
        a.env_secrets = not answer.lower().startswith("f")
    if not (shopify_token or shopify_client_id):
        kind = a.text(None, "Shopify credentials: a Dev Dashboard app's client ID and secret (1), or a "
                      "custom app's Admin API token (2)?", default="1")
        use_token = kind.strip() == "2"
    else:
        use_token = bool(shopify_token)
    if use_token:
        shopify["access_token"] = a.secret(shopify_token, "shopify.access_token", "Shopify Admin API token")
    else:
        shopify["client_id"] = a.text(shopify_client_id, "Shopify app client ID", needed="--shopify-client-id")
        shopify["client_secret"] = a.secret(shopify_client_secret, "shopify.client_secret",
                                            "Shopify app client secret")
    tiktok: dict[str, Any] = {}
    if tiktok_api_url:
        tiktok["api_base_url"] = tiktok_api_url
    if tiktok_auth_url:
        tiktok["auth_base_url"] = tiktok_auth_url
    tiktok["app_key"] = a.text(tiktok_app_key, "TikTok Shop app key", needed="--tiktok-app-key")
    tiktok["app_secret"] = a.secret(tiktok_app_secret, "tiktok.app_secret", "TikTok Shop app secret")
    tiktok["service_id"] = a.text(tiktok_service_id, "TikTok app service ID (below the app's name in "
                                  "Partner Center)", needed="" if tiktok_code else "--tiktok-service-id")
    tiktok["region"] = a.text(tiktok_region, "Seller region: US, or global for any other", default="global")
    if tiktok_authorize_url:
        tiktok["authorize_url"] = tiktok_authorize_url
    tiktok = {k: v for k, v in tiktok.items() if v}

    kept = write_new_config(path, _config_text({"shopify": shopify, "tiktok": tiktok}), replace=replace)
    out.success(f"Wrote {path} (mode 600)" + (f"; the old one is kept as {kept}." if kept else "."))
    s.config_path = str(path)
    try:
        s.config  # noqa: B018  (loads and checks it: an unset ${VAR} is named here)
    except ConfigError as exc:
        raise ConfigError(f"{exc.message}", hint=(exc.hint or "fix the config") +
                          "; then run `ecomsend auth tiktok` and `ecomsend auth shopify`") from None

    from .auth import _shopify_flow, _tiktok_flow

    out.info("── 1/4 TikTok Shop: authorise the app")
    tiktok_ok = True
    try:
        _tiktok_flow(s, tiktok_code, tiktok_shop)
    except NeedsTerminalError as exc:
        tiktok_ok = False
        out.warn(f"{exc.message}; {exc.hint}")
    out.info("── 2/4 Shopify: credentials and scopes")
    if not _shopify_flow(s)["ok"]:
        raise EcomsendError("the Shopify app lacks a scope sync-orders cannot do without (listed above)",
                            hint="add it to the app, install the new version, then run `ecomsend auth shopify`")
    s.close()  # the children below open the store themselves
    _step(s, path, "3/4 Shopify catalog into the local cache", "catalog", "refresh")
    if tiktok_ok:
        _step(s, path, "4/4 A dry run: what sync-orders would do (nothing is written)",
              "sync-orders", "--dry-run", expect=(0, 3))
    _finish(s, path, a.used_env, tiktok_ok)


def _finish(s: Session, path: Path, env_names: list[str], tiktok_ok: bool) -> None:
    import shlex
    import shutil

    from ..config import user_config_path

    program = shutil.which("ecomsend") or f"{shlex.quote(sys.executable)} -m ecomsend_cli"
    options = "" if path == user_config_path() else f" --config {shlex.quote(str(path))}"
    options += f" --store {shlex.quote(s.store_path)}" if s.store_path else ""
    source = ""
    if env_names:
        env_file = path.parent / "env"
        source = f". {shlex.quote(str(env_file))} && "
    lines = ["── Done. Run sync-orders every 5 minutes: add this line with `crontab -e`:",
             f"*/5 * * * * {source}{program}{options} sync-orders >> $HOME/ecomsend.log 2>&1"]
    if env_names:
        lines.append(f"cron does not see your shell's variables: put `export {env_names[0]}=…` lines for "
                     f"{', '.join(sorted(set(env_names)))} in {path.parent / 'env'} (chmod 600), as the "
                     "line above reads them.")
    if not tiktok_ok:
        lines.append("First authorise TikTok Shop: ecomsend auth tiktok")
    lines += ["Next: ecomsend doctor · ecomsend list-unlinked · ecomsend autolink · ecomsend sync-orders",
              "Tokens: ecomsend auth status"]
    s.out.info("\n".join(lines))
