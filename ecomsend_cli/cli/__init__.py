"""The command line: parse, call the core, render. No rules live here.

Each command opens what it needs through :class:`Session`, calls one core
function, and renders with :class:`Output`. Errors from the core
(:mod:`errors`) become a one-line message on stderr and the exit code of
DESIGN §3 in :func:`_run`. Heavy modules (httpx, the sandbox) are imported
inside the commands that need them, so ``ecomsend --help`` stays fast.

This module holds the ``app``, its global options and the entry point;
:mod:`.common` what every command shares; one module per command group
(:mod:`.linking`, :mod:`.orders`, :mod:`.catalog`, :mod:`.auth`, :mod:`.init`,
:mod:`.sandbox`) its
commands, registered on ``app`` when imported at the end of this module.
"""

from __future__ import annotations

import sys

import typer
from typer.core import TyperGroup

from .. import __version__
from ..errors import EXIT_ERROR, EcomsendError
from . import common
from .common import Session

EXIT_CODES_HELP = (
    "Exit codes: 0 success; 1 error (config, auth, network, bad input); 2 usage; "
    "3 sync-orders left orders blocked or failed; 75 another sync-orders holds the lock; "
    "130 interrupted. With --json, a failure prints {\"error\": {message, hint, exit_code}} on stdout."
)

# The global options, as `_hoist_global_options` moves them: those taking a value, and flags.
_VALUED = ("--config", "-c", "--store")
_FLAGS = ("--quiet", "-q", "--verbose", "-v")


def _is_global(arg: str) -> int:
    """How many argv items a global option starting at ``arg`` takes (0: not a global option)."""
    if arg in _VALUED:
        return 2
    if arg in _FLAGS or (len(arg) > 2 and arg[0] == "-" and arg[1] != "-" and set(arg[1:]) <= {"q", "v"}):
        return 1
    if arg.startswith(("--config=", "--store=")) or (arg.startswith("-c") and len(arg) > 2):
        return 1
    return 0


def _hoist_global_options(args: list[str], own_valued: frozenset[str] = frozenset()) -> list[str]:
    """Move global options given after the command to before it, as gh and stripe accept them.

    ``ecomsend list-unlinked --config x.yaml`` then reads x.yaml, as
    ``ecomsend --config x.yaml list-unlinked`` does. Nothing after ``--`` moves;
    an option value is moved with its option. No command has an option of its
    own named like a global one, so nothing is taken from a command; and the
    value of a command's own option (``own_valued``: those taking one) stays
    with it even when it looks like a global option (``--search -v``).
    """
    i = 0
    while i < len(args):  # skip the global options before the command
        arg = args[i]
        if arg == "--":
            return args
        if not arg.startswith("-") or arg == "-":
            break
        i += _is_global(arg) or 1
    if i >= len(args):
        return args
    moved: list[str] = []
    kept: list[str] = []
    j = i + 1
    while j < len(args):
        arg = args[j]
        if arg == "--":
            kept += args[j:]
            break
        if arg in own_valued:  # `--search -v`: "-v" is what is searched for
            kept += args[j:j + 2]
            j += 2
            continue
        width = _is_global(arg)
        if width and j + width <= len(args):
            moved += args[j:j + width]
            j += width
            continue
        kept.append(arg)
        j += 1
    return args[:i] + moved + [args[i]] + kept


def _valued_options(group: TyperGroup, ctx: typer.Context, args: list[str]) -> frozenset[str]:
    """The option names taking a value of the command ``args`` names (through its groups)."""
    names: set[str] = set()
    command = group
    for word in (x for x in args if not x.startswith("-")):
        found = command.get_command(ctx, word) if hasattr(command, "get_command") else None
        if found is None:
            continue
        command = found
        for param in command.params:
            if param.param_type_name == "option" and not getattr(param, "is_flag", False):
                names.update(param.opts)
        if not hasattr(command, "get_command"):
            break
    return frozenset(names)


class _Group(TyperGroup):
    def parse_args(self, ctx: typer.Context, args: list[str]) -> list[str]:
        args = list(args)
        return super().parse_args(ctx, _hoist_global_options(args, _valued_options(self, ctx, args)))


app = typer.Typer(
    name="ecomsend",
    cls=_Group,
    help="Copy TikTok Shop orders into Shopify and link TikTok SKUs to Shopify variants.\n\n"
    + EXIT_CODES_HELP,
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,  # locals can hold tokens
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)
links_app = typer.Typer(
    help="List links, or export them as CSV. Example: ecomsend links --json", no_args_is_help=False
)
config_app = typer.Typer(help="Show the resolved configuration.", no_args_is_help=True)
app.add_typer(links_app, name="links")
app.add_typer(config_app, name="config")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"ecomsend {__version__}")
        raise typer.Exit()


@app.callback()
def main_callback(
    config: str | None = typer.Option(
        None, "--config", "-c", help="Config file. Default: $ECOMSEND_CONFIG, then the user "
        "config folder (e.g. ~/.config/ecomsend/config.yaml).", metavar="FILE",
    ),
    store: str | None = typer.Option(
        None, "--store", help="Link store (SQLite file). Default: $ECOMSEND_STORE, then `store:` "
        "in the config, then the user data folder.", metavar="FILE",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only errors and data."),
    verbose: bool = typer.Option(False, "--verbose", "-v", help="More detail on stderr."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Copy TikTok Shop orders into Shopify and link TikTok SKUs to Shopify variants."""
    common._session = Session(config, store, quiet, verbose)


# Each group registers its commands on import, in this order: the order `ecomsend --help` lists them.
from . import linking, orders, catalog, auth, init, sandbox  # noqa: E402, F401, I001


def main() -> None:
    """Console-script entry point."""
    try:
        app()
    except SystemExit as exc:
        # Click ends a write to a closed pipe with exit 1, raised while handling the EPIPE. The
        # reader has all it wanted (`ecomsend orders | head -1`): that is success, and quiet.
        if isinstance(exc.__context__, BrokenPipeError):
            _drop_stdout()
            raise SystemExit(0) from None
        raise
    except EcomsendError as exc:  # raised outside a command (should not happen)
        from ..output import terminal_safe

        print(f"error: {terminal_safe(str(exc))}", file=sys.stderr)
        raise SystemExit(EXIT_ERROR) from None



def _drop_stdout() -> None:
    """Point stdout at /dev/null, so flushing it at exit cannot fail on the closed pipe again."""
    import os

    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):
        pass
