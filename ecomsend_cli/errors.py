"""Every error the core raises, and the exit code each one maps to (DESIGN §3).

The core (store, matching, sync, the API clients) raises these and never
prints; ``cli/common.py`` turns them into a one-line message on stderr and the exit
code below. Messages name the problem and, where there is one, the fix. They
must never contain a secret: callers pass redacted values only.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INCOMPLETE = 3
EXIT_LOCKED = 75
EXIT_INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT, as shells report it


class EcomsendError(Exception):
    """Base class: an expected failure with a message for the operator."""

    exit_code = EXIT_ERROR

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message} — {self.hint}"
        return self.message


class ConfigError(EcomsendError):
    """The configuration file or a value in it is wrong."""


class StoreError(EcomsendError):
    """The link store cannot be opened, is not ours, or is too new."""


class InputError(EcomsendError):
    """An argument or an input file is wrong (unknown SKU, bad CSV, ...)."""


class NotFoundError(InputError):
    """An id or SKU code names nothing."""


class AmbiguousError(InputError):
    """A SKU code names several items; ``candidates`` lists them."""

    def __init__(self, message: str, candidates: list[str], *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.candidates = candidates


class LinkExistsError(InputError):
    """Replacing an existing link needs ``--force`` or a confirmation."""


class NeedsTerminalError(EcomsendError):
    """A prompt would be needed but stdin is not a terminal and --yes was not given."""


class Aborted(EcomsendError):
    """The operator answered no at a prompt. Nothing was changed."""

    exit_code = EXIT_OK


class ApiError(EcomsendError):
    """A remote API answered with an error we cannot recover from."""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        code: str | int | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message, hint=hint)
        self.code = code
        self.request_id = request_id


class AuthError(ApiError):
    """Credentials were refused (bad token, bad app secret, missing scope)."""


class RateLimitedError(ApiError):
    """Throttled, and retries ran out."""


class NetworkError(ApiError):
    """The service could not be reached, or kept failing with 5xx, after retries."""


class PagingError(ApiError):
    """A listing's pages did not end (a repeated token, a cycle, pages beyond plausible)."""


class OutcomeUnknownError(ApiError):
    """A write was sent but its answer never arrived: it may or may not have happened.

    Raised by the Shopify client for ``orderCreate`` instead of retrying (the
    sync engine reconciles by ``source_identifier``, DESIGN §5.4), and for
    ``orderCancel`` and ``refundCreate`` (confirmed by ``cancelledAt``, or
    sent again under the same idempotency key, DESIGN §6b). Raised by the
    TikTok client for its writes (fulfillment, external order references):
    the caller re-reads the TikTok order before any retry (§6b).
    """


class LockHeldError(EcomsendError):
    """Another ``sync-orders`` holds the lock beside the store."""

    exit_code = EXIT_LOCKED
