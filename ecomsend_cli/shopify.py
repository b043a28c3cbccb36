"""The Shopify Admin GraphQL client (DESIGN §4.3, §5.3–§5.5, §6b).

Owns: authentication (a custom-app access token, or the client-credentials
grant with the token cached and renewed), the cost limiter shared by every
thread using one client, retries, and the few calls ecomsend makes. The
documents themselves live in :mod:`ecomsend_cli.shopify_documents`; the
records of the after-creation calls (fulfillments, cancellations, refunds)
and the checks of their answers in :mod:`ecomsend_cli.shopify_records`.

Retry policy
------------
* Reads are retried on ``THROTTLED`` (after waiting for the bucket to refill),
  429 (honouring ``Retry-After``), 5xx, and network errors, with exponential
  back-off and jitter; when retries run out they raise
  :class:`~ecomsend_cli.errors.RateLimitedError` or
  :class:`~ecomsend_cli.errors.NetworkError`.
* Writes (``orderCreate``: Shopify takes no idempotency key; ``orderCancel``;
  ``refundCreate``, whose key makes the *caller's* resend safe) are retried
  here only where Shopify certainly did nothing: the
  connection could not be made, the pool had no connection, the answer was
  401 (the token is renewed), 429 or ``THROTTLED`` (all refused before
  execution). A well-formed answer whose errors all carry a code Shopify
  gives before running anything (``ACCESS_DENIED``, ``MAX_COST_EXCEEDED``)
  is a known refusal. **Everything else** after the request may have reached
  Shopify raises :class:`~ecomsend_cli.errors.OutcomeUnknownError` (DESIGN
  §5.4): a timeout, a dropped connection, any other 4xx or 5xx (a 500 can
  follow a committed write; a 502/504/408 comes from a proxy that may have
  forwarded it), a body that is not JSON, ``data: null``, errors without a
  code or not shaped as a list, an answer with neither an order nor
  well-formed ``userErrors``. The sync engine then looks the order up by
  ``sourceIdentifier``, which is cheap, whereas a wrong guess would create
  a second order.

The cost limiter
----------------
Shopify meters each app+shop with a leaky bucket and reports it in
``extensions.cost.throttleStatus`` on every answer. The client keeps a local
model of that bucket: before a call it reserves the call's estimated cost,
waiting (with the injected ``sleep``) until the bucket holds that much; after
the answer it refunds the difference to the actual cost and re-synchronises
with Shopify's figures. Concurrent threads share one model, so a run spends
the budget without being throttled; if it is throttled anyway (another
process on the same app), it waits for the refill and retries.
"""

from __future__ import annotations

import json
import random
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from . import shopify_documents as docs
from .config import ShopifyConfig
from .errors import (
    ApiError,
    AuthError,
    ConfigError,
    InputError,
    NetworkError,
    NotFoundError,
    OutcomeUnknownError,
    RateLimitedError,
)
from .models import TokenCache, Variant

# The records are part of this client's interface: re-exported here.
from .shopify_records import RESTOCK_TYPES as RESTOCK_TYPES
from .shopify_records import CancelResult as CancelResult
from .shopify_records import Fulfillment as Fulfillment
from .shopify_records import OrderFulfillments as OrderFulfillments
from .shopify_records import (
    RecordRefused,
    Refusals,
    catalog_product,
    catalog_variant,
    connection_page,
    created_lines,
    fulfillment_line,
    fulfillment_order,
    is_gid,
    is_job,
    money_of,
    money_text,
    order_line,
    refund_line_input,
    refund_record,
    refund_transaction_input,
    shape_error,
    transaction_record,
    user_errors,
)
from .shopify_records import RefundResult as RefundResult
from .shopify_records import Tracking as Tracking
from .transport import deadline, deadline_passed, http_client, httpx, tls_verify

INVENTORY_BEHAVIOURS = ("BYPASS", "DECREMENT_IGNORING_POLICY", "DECREMENT_OBEYING_POLICY")
TOKEN_NAME = "shopify"
# Renew a client-credentials token this long before Shopify says it expires
# (at most a tenth of its life), so a call never starts with a token about to lapse.
TOKEN_RENEW_MARGIN = 300.0
# Until the first answer tells us the shop's real bucket, assume the smallest
# one Shopify has published (1000 points, 50/s): too slow at worst, never throttled.
DEFAULT_BUCKET = 1000.0
DEFAULT_RESTORE_RATE = 50.0
MAX_RETRY_AFTER = 120.0
# The most one call may take, connection, answer and retries of the exchange
# included (issue 15: a server that trickles or never answers must not hold a run).
DEFAULT_DEADLINE = 30.0
# Shopify's trial and development stores allow 5 orderCreate a minute; the refusal
# ("Exceeded order API rate limit, please try again in a minute") is made before
# anything is created, so the same order is sent again after the wait.
ORDER_LIMIT_WAIT = 60.0
ORDER_LIMIT_PACING = 12.0
BULK_DEADLINE = 600.0  # the bulk result download: a large file, resumable
MAX_LIMITER_SLICE = 0.25

# GraphQL error codes of a server-side failure: a read is retried after them.
_SERVER_FAILURES = frozenset({"INTERNAL_SERVER_ERROR", "TIMEOUT", "SERVICE_UNAVAILABLE"})
# Failures where the request certainly never reached Shopify.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
# GraphQL error codes Shopify answers before executing anything (a write refused, not done).
_REFUSED_BEFORE_RUN = frozenset({"THROTTLED", "ACCESS_DENIED", "SHOP_INACTIVE", "MAX_COST_EXCEEDED"})
_UNKNOWN_HINT = "the next run looks the order up in Shopify before it is ever sent again"
_CANCEL_UNKNOWN_HINT = "read the order's cancelledAt before cancelling it again"
_REFUND_UNKNOWN_HINT = ("send the same refund again with the same idempotency key: Shopify "
                        "refunds one key once")
CANCEL_REASONS = ("CUSTOMER", "DECLINED", "FRAUD", "INVENTORY", "STAFF", "OTHER")
STAFF_NOTE_MAX = 255  # Shopify refuses a longer orderCancel staffNote (userError, INVALID)
# Shopify's userError to a refundCreate whose key is still being worked on: the
# first request may yet commit, so the outcome is unknown (not a refusal).
_IN_PROGRESS = "currently in progress"


@dataclass(frozen=True)
class OrderCreateResult:
    """The answer to ``orderCreate``: the new order, or Shopify's ``userErrors``.

    ``line_items`` are the created order's lines, ``(line GID, variant GID or
    None, quantity)``; ``line_items_complete`` is False when Shopify had more
    than one page of them (or answered them in a shape we could not read):
    :meth:`ShopifyClient.order_fulfillments` then reads them all.
    """

    order_id: str | None
    order_name: str | None
    user_errors: list[dict] = field(default_factory=list)  # each {field, message, code}
    line_items: list[tuple[str, str | None, int]] = field(default_factory=list)
    line_items_complete: bool = True

    @property
    def ok(self) -> bool:
        return self.order_id is not None and not self.user_errors


class CostLimiter:
    """A local model of Shopify's leaky bucket, shared by the threads of one client."""

    def __init__(
        self,
        *,
        clock: Callable[[], float],
        sleep: Callable[[float], None],
        maximum: float = DEFAULT_BUCKET,
        restore_rate: float = DEFAULT_RESTORE_RATE,
        rng: random.Random | None = None,
    ) -> None:
        self._clock = clock
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._lock = threading.Lock()
        self.maximum = maximum
        self.restore_rate = restore_rate
        self._available = maximum
        self._stamp = clock()
        self._in_flight = 0

    @property
    def available(self) -> float:
        with self._lock:
            self._refill()
            return self._available

    def _refill(self) -> None:
        now = self._clock()
        self._available = min(
            self.maximum, self._available + (now - self._stamp) * self.restore_rate
        )
        self._stamp = now

    def acquire(self, cost: float) -> float:
        """Wait until ``cost`` points are available, reserve them, return the reservation."""
        while True:
            with self._lock:
                cost = min(cost, self.maximum)
                self._refill()
                if self._available >= cost:
                    self._available -= cost
                    self._in_flight += 1
                    return cost
                wait = (cost - self._available) / self.restore_rate
            # Jitter keeps threads that were refused together from waking together.
            # Long waits are taken in slices: an answer meanwhile may teach us a
            # bigger bucket or a faster refill than the cautious defaults.
            self._sleep(min(wait * (1.0 + 0.02 * self._rng.random()) + 0.0005, MAX_LIMITER_SLICE))

    def settle(self, reserved: float, cost: dict | None) -> None:
        """Account for an answer: its ``extensions.cost`` (None when it had none)."""
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
            self._refill()
            status = (cost or {}).get("throttleStatus") or {}
            if not status:
                self._available = min(self.maximum, self._available + reserved)
                return
            self.maximum = float(status.get("maximumAvailable") or self.maximum)
            self.restore_rate = float(status.get("restoreRate") or self.restore_rate)
            actual = cost.get("actualQueryCost") if cost else None
            # A throttled call cost nothing (actualQueryCost is null).
            spent = float(actual) if actual is not None else 0.0
            self._available = min(self.maximum, self._available + reserved - spent)
            server = float(status.get("currentlyAvailable", self._available))
            if self._in_flight == 0:
                # Nothing else in the air: Shopify's figure is the truth.
                self._available = server
            else:
                # Others are in the air and Shopify may not have charged them yet:
                # never believe we have more than Shopify says.
                self._available = min(self._available, server)


class ShopifyClient:
    """Synchronous, thread-safe client for the Admin GraphQL API.

    ``transport`` is for tests (``httpx.MockTransport``); ``sleep`` and
    ``clock`` drive every wait (back-off, limiter, bulk polling) so tests run
    without real waits; ``wall_clock`` gives epoch seconds for token expiry.
    """

    def __init__(
        self,
        config: ShopifyConfig,
        token_cache: TokenCache,
        *,
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        max_retries: int = 5,
        max_throttle_retries: int = 30,
        timeout: float = 30.0,
        deadline: float = DEFAULT_DEADLINE,
        bulk_deadline: float = BULK_DEADLINE,
        backoff_base: float = 0.5,
        backoff_max: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        if not config.shop:
            raise ConfigError("shopify.shop is not set", hint="set it to your-store.myshopify.com")
        if not (config.access_token or (config.client_id and config.client_secret)):
            raise ConfigError(
                "no Shopify credentials configured",
                hint="set shopify.access_token, or shopify.client_id and shopify.client_secret",
            )
        self.config = config
        self._token_cache = token_cache
        self._sleep = sleep
        self._clock = clock
        self._wall_clock = wall_clock
        self._max_retries = max_retries
        self._max_throttle_retries = max_throttle_retries
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._rng = rng or random.Random()
        self.endpoint = f"{config.base_url}/admin/api/{config.api_version}/graphql.json"
        self._token_url = f"{config.base_url}/admin/oauth/access_token"
        self._deadline = deadline
        self._bulk_deadline = bulk_deadline
        options = {"timeout": httpx.Timeout(timeout, connect=min(timeout, 10.0)),
                   "headers": {"User-Agent": "ecomsend", "Accept": "application/json"},
                   "follow_redirects": False}
        if transport is not None:
            self._http = httpx.Client(transport=transport, **options)
        else:
            self._http = http_client(verify=tls_verify(config.base_url), **options)
        self.limiter = CostLimiter(clock=clock, sleep=sleep, rng=self._rng)
        self._token_lock = threading.Lock()
        self._token: str | None = None
        self._token_expires_at = 0.0
        self._token_margin = TOKEN_RENEW_MARGIN
        # Last requestedQueryCost seen per document: the limiter's next estimate.
        self._cost_seen: dict[str, float] = {}
        # nodes(ids:) batch sizes Shopify priced over its ceiling, halved: kept per document.
        self._batch_sizes: dict[str, int] = {}
        # Trial and development stores create 5 orders a minute: once refused, pace them.
        self.order_pacing = 0.0
        self._last_order_at = -ORDER_LIMIT_PACING
        self._pace_lock = threading.Lock()

    # -- lifecycle -----------------------------------------------------------------

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> ShopifyClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- authentication ---------------------------------------------------------------

    def _access_token(self) -> str:
        if self.config.access_token:
            return self.config.access_token.get()
        with self._token_lock:
            now = self._wall_clock()
            if self._token and self._token_expires_at - self._token_margin > now:
                return self._token
            cached = self._token_cache.load_token(TOKEN_NAME)
            if (
                cached
                and cached.get("shop") == self.config.base_url
                and cached.get("client_id") == self.config.client_id
                and float(cached.get("expires_at") or 0) - _margin(cached.get("expires_in")) > now
                and cached.get("access_token")
            ):
                self._token = str(cached["access_token"])
                self._token_expires_at = float(cached["expires_at"])
                self._token_margin = _margin(cached.get("expires_in"))
                return self._token
            return self._fetch_token()

    def _renew_token(self, refused: str) -> None:
        """A call was answered 401 with ``refused``: get a new token, once for all threads."""
        if self.config.access_token:
            raise AuthError(
                f"Shopify refused the access token for {self.config.shop} (HTTP 401)",
                hint="check shopify.access_token: it must be an Admin API token of an app "
                "installed on this shop",
                code=401,
            )
        with self._token_lock:
            if self._token != refused:
                return  # another thread renewed it meanwhile
            self._fetch_token()

    def _fetch_token(self) -> str:
        """The client-credentials grant. Caller holds ``_token_lock``."""
        secret = self.config.client_secret.get() if self.config.client_secret else ""
        form = {
            "client_id": self.config.client_id,
            "client_secret": secret,
            "grant_type": "client_credentials",
        }
        attempt = 0
        started = time.monotonic()
        while True:
            try:
                with deadline(self._deadline):
                    response = self._http.post(self._token_url, data=form)
            except httpx.RequestError as exc:
                attempt += 1
                if attempt > self._max_retries or time.monotonic() - started > self._deadline:
                    raise NetworkError(
                        f"cannot reach {self.config.shop} to get an access token "
                        f"({type(exc).__name__})",
                        hint="check shopify.shop and the network",
                    ) from None
                self._backoff(attempt)
                continue
            if response.status_code >= 500 or response.status_code == 429:
                attempt += 1
                if attempt > self._max_retries:
                    raise NetworkError(
                        "Shopify kept failing to issue an access token "
                        f"(HTTP {response.status_code})"
                    )
                self._backoff(attempt, response)
                continue
            break
        body = _json_or_none(response)
        granted = isinstance(body, dict) and isinstance(body.get("access_token"), str) and body["access_token"].strip()
        if response.status_code != 200 or not granted:
            code = body.get("error") if isinstance(body, dict) else None
            # Only a short error identifier is shown: the body is not ours to trust.
            shown = ""
            if isinstance(code, str) and re.fullmatch(r"[a-z_]{1,40}", code):
                shown = f": {code}"
            raise AuthError(
                f"Shopify refused the app credentials for {self.config.shop} "
                f"(HTTP {response.status_code}{shown})",
                hint="check shopify.client_id and shopify.client_secret (Dev Dashboard → your "
                "app → Settings) and that the app is installed on this shop",
                code=response.status_code,
            )
        token = body["access_token"]
        expires_in = _lifetime(body.get("expires_in"))
        self._token = token
        self._token_expires_at = self._wall_clock() + expires_in
        self._token_margin = _margin(expires_in)
        self._token_cache.save_token(
            TOKEN_NAME,
            {
                "access_token": token,
                "scope": body.get("scope", ""),
                "expires_at": int(self._token_expires_at),
                "expires_in": int(expires_in),
                "shop": self.config.base_url,
                "client_id": self.config.client_id,
            },
        )
        return token

    # -- the one request path ---------------------------------------------------------

    def graphql(
        self,
        document: str,
        variables: dict | None = None,
        *,
        cost: float | None = None,
        idempotent: bool | None = None,
        unknown_hint: str = _UNKNOWN_HINT,
    ) -> dict:
        """Run one GraphQL document; return its ``data``.

        ``cost`` is the estimated requested cost for the limiter (learned from
        answers after the first call). ``idempotent`` defaults to True for
        queries and False for mutations; a non-idempotent call is never resent
        once it may have reached Shopify (:class:`OutcomeUnknownError`, whose
        hint is ``unknown_hint``: what the caller does about it).
        """
        if idempotent is None:
            idempotent = _operation_type(document) != "mutation"
        op = _operation_name(document)
        payload: dict[str, Any] = {"query": document}
        if variables is not None:
            payload["variables"] = variables
        body_bytes = json.dumps(payload).encode()
        attempt = 0
        throttled = 0
        renewed = False
        started = time.monotonic()
        while True:
            estimate = self._cost_seen.get(document, cost if cost is not None else 50.0)
            token = self._access_token()
            reserved = self.limiter.acquire(estimate)
            try:
                with deadline(self._deadline):
                    response = self._http.post(
                        self.endpoint,
                        content=body_bytes,
                        headers={
                            "X-Shopify-Access-Token": token,
                            "Content-Type": "application/json",
                        },
                    )
            except httpx.RequestError as exc:
                self.limiter.settle(reserved, None)
                if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
                    raise ConfigError(
                        f"shopify.shop {self.config.shop!r} is not a usable address",
                        hint="use your-store.myshopify.com or a full http(s) URL",
                    ) from None
                late = deadline_passed(exc)
                why = f"no answer within the {self._deadline:.0f} s deadline" if late else type(exc).__name__
                if not idempotent and not isinstance(exc, _NOT_SENT):
                    raise OutcomeUnknownError(
                        f"{op} was sent to Shopify but no answer came back ({why}); "
                        "it may or may not have taken effect",
                        hint=unknown_hint,
                        code="deadline" if late else None,
                    ) from None
                attempt += 1
                if attempt > self._max_retries or time.monotonic() - started > self._deadline:
                    raise NetworkError(
                        f"cannot reach Shopify at {self.config.base_url} ({why}, {attempt} attempt(s))",
                        hint="check shopify.shop and the network, then run again",
                        code="deadline" if late else None,
                    ) from None
                self._backoff(attempt)
                continue

            status = response.status_code
            if status == 401:
                self.limiter.settle(reserved, None)
                if renewed:
                    raise AuthError(
                        f"Shopify refused a freshly issued access token for {self.config.shop}",
                        hint="check that the app is installed on this shop and has the "
                        "read_products, read_orders and write_orders scopes",
                        code=401,
                    )
                self._renew_token(token)
                renewed = True
                continue
            if status == 429:
                self.limiter.settle(reserved, None)
                throttled += 1
                if throttled > self._max_throttle_retries:
                    raise RateLimitedError(
                        f"Shopify kept answering 429 Too Many Requests to {op}",
                        hint="run again later",
                        code=429,
                    )
                if _order_limit(response.text):
                    self._order_limited(response)
                else:
                    self._backoff(throttled, response)
                continue
            if status >= 500:
                self.limiter.settle(reserved, None)
                if not idempotent:
                    raise OutcomeUnknownError(
                        f"Shopify answered HTTP {status} to {op}; it may or may not have "
                        "taken effect",
                        hint=unknown_hint,
                        code=status,
                    )
                attempt += 1
                if attempt > self._max_retries:
                    raise NetworkError(
                        f"Shopify kept failing (HTTP {status}) after {attempt} attempts at {op}",
                        hint="Shopify may be having trouble; run again later",
                        code=status,
                    )
                self._backoff(attempt)
                continue
            if status != 200:
                self.limiter.settle(reserved, None)
                if not idempotent:
                    raise OutcomeUnknownError(
                        f"Shopify answered HTTP {status} to {op}; it may or may not have taken effect",
                        hint=unknown_hint,
                        code=status,
                    )
                raise _http_error(status, self.config, op)

            body = _json_or_none(response)
            if not isinstance(body, dict):
                self.limiter.settle(reserved, None)
                if not idempotent:
                    raise OutcomeUnknownError(
                        f"Shopify's answer to {op} could not be read; it may or may not "
                        "have taken effect",
                        hint=unknown_hint,
                    )
                attempt += 1
                if attempt > self._max_retries:
                    raise ApiError(f"Shopify's answers to {op} could not be read (not JSON)")
                self._backoff(attempt)
                continue

            cost_ext = _cost_extension(body)
            self.limiter.settle(reserved, cost_ext)
            if cost_ext and cost_ext.get("requestedQueryCost") is not None:
                self._cost_seen[document] = float(cost_ext["requestedQueryCost"])
            errors = body.get("errors")
            if errors:
                codes = _error_codes(errors)
                # A write is retried only if THROTTLED refused the whole request, not
                # when it sits beside a payload or an error from a mutation that ran.
                if "data" not in body and any(_order_limit(str(e.get("message") or ""))
                                              for e in errors if isinstance(e, dict)):
                    # A trial store's order limit, refused before anything ran: wait, send again.
                    throttled += 1
                    if throttled > self._max_throttle_retries:
                        raise RateLimitedError(f"Shopify kept refusing {op}: the store's order limit",
                                               hint="a trial or development store creates 5 orders a minute; "
                                               "run again later", code=429)
                    self._order_limited(None)
                    continue
                if "THROTTLED" in codes and (idempotent or _refused_before_run(body)):
                    throttled += 1
                    if throttled > self._max_throttle_retries:
                        raise RateLimitedError(
                            f"Shopify kept throttling {op} ({throttled} times)",
                            hint="another app or process may be using this shop's API "
                            "budget; run again later",
                            code="THROTTLED",
                        )
                    # The limiter now holds Shopify's figures; acquire() waits for the refill.
                    continue
                if not idempotent and not _refused_before_run(body):
                    # Only errors Shopify gives before running anything prove
                    # the write was not done; any other error (one with a path,
                    # one without a code, a string) may follow a committed write.
                    raise OutcomeUnknownError(
                        f"Shopify reported an error to {op}; it may or may not have taken effect",
                        hint=unknown_hint,
                        code=next(iter(codes), None),
                    )
                if codes & _SERVER_FAILURES:
                    attempt += 1
                    if attempt <= self._max_retries:
                        self._backoff(attempt)
                        continue
                raise _graphql_error(errors, codes, op)
            data = body.get("data")
            if not isinstance(data, dict):
                if not idempotent:
                    raise OutcomeUnknownError(
                        f"Shopify's answer to {op} had no data; it may or may not have taken effect",
                        hint=unknown_hint,
                    )
                raise ApiError(f"Shopify's answer to {op} had no data")
            return data

    def _order_limited(self, response: httpx.Response | None) -> None:
        """A trial or development store refused orderCreate (5 a minute): wait, then pace them."""
        with self._pace_lock:
            self.order_pacing = ORDER_LIMIT_PACING
        delay = _retry_after(response) if response is not None else None
        self._sleep(delay if delay is not None else ORDER_LIMIT_WAIT)
        with self._pace_lock:
            self._last_order_at = self._clock()  # the resend goes now: the next waits its turn

    def _backoff(self, attempt: int, response: httpx.Response | None = None) -> None:
        delay: float | None = None
        if response is not None:
            delay = _retry_after(response)
        if delay is None:
            delay = min(self._backoff_max, self._backoff_base * 2 ** (attempt - 1))
            delay *= 0.5 + self._rng.random() / 2  # "equal jitter"
        self._sleep(delay)

    # -- catalog ------------------------------------------------------------------------

    def iter_variants(
        self,
        updated_since: str | None = None,
        *,
        product_ids: Iterable[str] = (),
        page_size: int = docs.PAGE_SIZE,
        refused: Refusals | None = None,
    ) -> Iterator[Variant]:
        """Every variant (or those updated after ``updated_since``, ISO 8601), page by page.

        ``product_ids`` (GIDs) restricts the listing to those products' variants.
        A record not shaped as documented is left out and counted in ``refused``.
        """
        terms = []
        if updated_since:
            terms.append(f"updated_at:>'{updated_since}'")
        numbers = [_gid_number(p) for p in product_ids]
        if numbers:
            terms.append("product_ids:" + ",".join(numbers))
        variables: dict[str, Any] = {"first": page_size, "after": None}
        if terms:
            variables["query"] = " ".join(terms)
        while True:
            data = self.graphql(docs.PRODUCT_VARIANTS, variables, cost=2 + 3 * page_size)
            nodes, cursor = connection_page(data.get("productVariants"), "the catalog's variants",
                                            after=variables["after"])
            yield from _variants(nodes, refused if refused is not None else Refusals())
            if cursor is None:
                return
            variables = {**variables, "after": cursor}

    def changed_product_ids(self, updated_since: str) -> Iterator[str]:
        """GIDs of the products updated after ``updated_since`` (ISO 8601)."""
        variables: dict[str, Any] = {
            "first": docs.PAGE_SIZE,
            "after": None,
            "query": f"updated_at:>'{updated_since}'",
        }
        while True:
            data = self.graphql(docs.CHANGED_PRODUCTS, variables, cost=docs.CHANGED_PRODUCTS_COST)
            nodes, cursor = connection_page(data.get("products"), "the catalog's changed products",
                                            after=variables["after"])
            for node in nodes:
                pid = node.get("id") if type(node) is dict else None
                if not is_gid(pid, "Product"):
                    raise shape_error("the catalog's changed products")
                yield pid
            if cursor is None:
                return
            variables = {**variables, "after": cursor}

    def variants_by_sku(
        self, sku: str, *, key: Callable[[str | None], object] | None = None
    ) -> list[Variant]:
        """Variants whose SKU equals ``sku``.

        Shopify's ``sku:`` search also returns near matches, so the answer is
        filtered here: by exact equality, or by equality of ``key(sku)`` when
        a key is given (e.g. :func:`ecomsend_cli.matching.sku_key`).
        """
        if not sku or not sku.strip():
            return []
        variables: dict[str, Any] = {
            "first": docs.PAGE_SIZE,
            "after": None,
            "query": f"sku:{_search_quote(sku.strip())}",
        }
        wanted = key(sku) if key else sku
        found: list[Variant] = []
        while True:
            data = self.graphql(docs.PRODUCT_VARIANTS, variables, cost=docs.PRODUCT_VARIANTS_COST)
            nodes, cursor = connection_page(data.get("productVariants"), "the catalog's variants",
                                            after=variables["after"])
            for variant in _variants(nodes, Refusals()):
                if (key(variant.sku) if key else variant.sku) == wanted:
                    found.append(variant)
            if cursor is None:
                return found
            variables = {**variables, "after": cursor}

    def bulk_variants(
        self, *, poll_interval: float = 2.0, max_wait: float | None = None
    ) -> Iterator[Variant]:
        """The whole catalog through a bulk operation (DESIGN §4.3), as ``Variant`` records.

        See :meth:`bulk_variant_rows`, which this reads.
        """
        batches = self.bulk_variant_rows(poll_interval=poll_interval, max_wait=max_wait)
        return (Variant(*row) for batch in batches for row in batch)

    def bulk_variant_rows(
        self, *, poll_interval: float = 2.0, max_wait: float | None = None, refused: Refusals | None = None
    ) -> Iterator[list[tuple]]:
        """The whole catalog through a bulk operation (DESIGN §4.3), in batches of rows.

        Runs ``bulkOperationRunQuery`` and polls until it completes (starting
        fast, backing off to ``poll_interval`` seconds) before returning, so
        a caller can open its store transaction only once the file is ready.
        The returned iterator streams the JSONL result, joining each variant to
        its product by ``__parentId``; lines are parsed as they arrive and
        the file is never held whole. Each row is a tuple in the field order
        of :class:`~ecomsend_cli.models.Variant`: a full refresh writes them to
        the store as they are, without an object per variant. A line that is
        not JSON or not shaped as documented is left out and counted in ``refused``.
        """
        url = self._run_bulk_query(docs.BULK_VARIANTS_QUERY, poll_interval, max_wait)
        if not url:
            return iter(())  # Shopify gives no file when the query matched nothing
        refused = refused if refused is not None else Refusals()
        return _join_bulk_objects(self._stream_objects(url, refused), refused)

    def _run_bulk_query(
        self, query: str, poll_interval: float, max_wait: float | None
    ) -> str | None:
        """Start a bulk query, wait for it, return its result URL (None: no results)."""
        data = self.graphql(
            docs.BULK_RUN_QUERY,
            {"query": query},
            cost=docs.BULK_RUN_QUERY_COST,
            # Running a read twice is harmless: at worst an orphan operation.
            idempotent=True,
        )
        payload = data["bulkOperationRunQuery"]
        if payload.get("userErrors"):
            messages = "; ".join(e.get("message", "") for e in payload["userErrors"])
            raise ApiError(
                f"Shopify refused the catalog bulk operation: {messages}",
                code=payload["userErrors"][0].get("code"),
                hint="if another bulk operation is running, wait for it and run again",
            )
        operation_id = payload["bulkOperation"]["id"]
        started = self._clock()
        delay = min(0.05, poll_interval)
        while True:
            data = self.graphql(
                docs.BULK_OPERATION_STATUS,
                {"id": operation_id},
                cost=docs.BULK_OPERATION_STATUS_COST,
            )
            operation = data.get("bulkOperation") or {}
            status = operation.get("status")
            if status == "COMPLETED":
                return operation.get("url")
            if status in ("FAILED", "CANCELED", "CANCELING", "EXPIRED"):
                raise ApiError(
                    f"the catalog bulk operation ended {status}"
                    + (f" ({operation['errorCode']})" if operation.get("errorCode") else ""),
                    code=operation.get("errorCode"),
                    hint="run the refresh again; a large catalog may need a retry",
                )
            if max_wait is not None and self._clock() - started > max_wait:
                raise ApiError(
                    f"the catalog bulk operation did not finish within {max_wait:.0f} s",
                    hint="run the refresh again later",
                )
            self._sleep(delay)
            delay = min(poll_interval, delay * 2)

    def _stream_objects(self, url: str, refused: Refusals) -> Iterator[list[Any]]:
        """The objects of the JSONL file at ``url``, in batches, resuming with Range after a break.

        Each network chunk's complete lines are parsed by one ``json.loads``
        of a JSON array: one C call per chunk instead of one Python call per
        line, which is most of the cost of reading a large file. The URL is a
        signed storage link: it must not receive our access token.
        """
        offset = 0  # bytes of complete lines already handed out
        attempt = 0
        loads = json.loads
        while True:
            headers = {"Range": f"bytes={offset}-"} if offset else {}
            # Each attempt must finish within the bulk deadline; only its network
            # reads are timed (the caller's work between batches is not).
            end = time.monotonic() + self._bulk_deadline
            try:
                with deadline(until=end):
                    response = self._http.send(self._http.build_request("GET", url, headers=headers),
                                               stream=True)
                try:
                    if response.status_code not in (200, 206):
                        if response.status_code >= 500 and attempt < self._max_retries:
                            attempt += 1
                            self._backoff(attempt)
                            continue
                        raise ApiError(
                            f"could not download the bulk operation result "
                            f"(HTTP {response.status_code})",
                            hint="run the refresh again",
                        )
                    # A server that ignores Range resends from the start: skip what we have.
                    skip = offset if response.status_code == 200 else 0
                    tail = b""
                    chunks = response.iter_bytes()
                    while True:
                        with deadline(until=end):
                            chunk = next(chunks, None)
                        if chunk is None:
                            break
                        if skip:
                            if len(chunk) <= skip:
                                skip -= len(chunk)
                                continue
                            chunk = chunk[skip:]
                            skip = 0
                        buffer = tail + chunk if tail else chunk
                        cut = buffer.rfind(b"\n")
                        if cut < 0:
                            tail = buffer
                            continue
                        tail = buffer[cut + 1:]
                        complete = buffer[:cut]
                        batch = _parse_lines(complete, loads, refused)
                        offset += cut + 1
                        if batch:
                            yield batch
                    if tail.strip():
                        batch = _parse_lines(tail, loads, refused)
                        offset += len(tail)
                        yield batch
                    return
                finally:
                    response.close()
            except httpx.TransportError as exc:
                attempt += 1
                if attempt > self._max_retries:
                    late = " (no progress within the deadline)" if deadline_passed(exc) else ""
                    raise NetworkError(
                        f"the bulk operation result download kept failing ({type(exc).__name__}){late}",
                        hint="run the refresh again",
                    ) from None
                self._backoff(attempt)

    # -- orders ---------------------------------------------------------------------------

    def orders_by_source_identifier(self, tiktok_order_id: str) -> list[dict]:
        """Shopify orders whose ``sourceIdentifier`` equals ``tiktok_order_id``."""
        return self.orders_by_source_identifiers([tiktok_order_id])[str(tiktok_order_id)]

    def orders_by_source_identifiers(self, tiktok_order_ids: Iterable[str]) -> dict[str, list[dict]]:
        """``{id: [order, ...]}``: the Shopify orders whose ``sourceIdentifier`` is each id.

        One search for the lot (``source_identifier:"A" OR source_identifier:"B" …``),
        paged; each order is ``{id, name, sourceIdentifier, createdAt}``, and
        only exact matches count. Shopify's search index lags order creation
        by seconds, and hides orders older than 60 days without the
        ``read_all_orders`` scope.
        """
        wanted = {str(i): [] for i in tiktok_order_ids}
        if not wanted:
            return {}
        query = " OR ".join(f"source_identifier:{_search_quote(i)}" for i in wanted)
        first = min(docs.PAGE_SIZE, max(10, len(wanted)))
        variables: dict[str, Any] = {"query": query, "first": first, "after": None}
        while True:
            data = self.graphql(docs.ORDERS_BY_SOURCE_IDENTIFIER, variables,
                                cost=docs.orders_by_source_identifier_cost(first))
            connection = data.get("orders")
            nodes = connection.get("nodes") if isinstance(connection, dict) else None
            if not isinstance(nodes, list):
                raise ApiError("Shopify's answer to the order search had no list of orders",
                               hint="run again; if it persists, check shopify.api_version")
            for node in nodes:
                if not isinstance(node, dict) or not isinstance(node.get("id"), str):
                    continue
                source = node.get("sourceIdentifier")
                if isinstance(source, str) and source in wanted:
                    wanted[source].append({
                        "id": node["id"],
                        "name": node.get("name") if isinstance(node.get("name"), str) else None,
                        "sourceIdentifier": source,
                        "createdAt": node.get("createdAt"),
                    })
            info = connection.get("pageInfo") or {}
            if not info.get("hasNextPage") or not isinstance(info.get("endCursor"), str):
                return wanted
            variables = {**variables, "after": info["endCursor"]}

    def order_create(self, order: dict, *, inventory_behaviour: str) -> OrderCreateResult:
        """Create one order (``OrderCreateOrderInput``). Never resent once it may have arrived.

        Returns the order, or Shopify's ``userErrors`` (e.g.
        ``INVENTORY_CLAIM_FAILED``); raises :class:`OutcomeUnknownError` when
        the call may have happened without an answer.
        """
        if inventory_behaviour not in INVENTORY_BEHAVIOURS:
            raise InputError(
                f"unknown inventory behaviour {inventory_behaviour!r}",
                hint=f"use one of {', '.join(INVENTORY_BEHAVIOURS)}",
            )
        if self.order_pacing:  # a trial store: no more than its 5 orders a minute
            with self._pace_lock:
                wait_s = self._last_order_at + self.order_pacing - self._clock()
                self._last_order_at = self._clock() + max(0.0, wait_s)
            if wait_s > 0:
                self._sleep(wait_s)
        data = self.graphql(
            docs.ORDER_CREATE,
            {"order": order, "options": {"inventoryBehaviour": inventory_behaviour}},
            cost=docs.ORDER_CREATE_COST,
            idempotent=False,
        )
        payload = data.get("orderCreate")
        created = payload.get("order") if isinstance(payload, dict) else None
        errors = payload.get("userErrors") if isinstance(payload, dict) else None
        if isinstance(created, dict) and is_gid(created.get("id"), "Order"):
            name = created.get("name")
            # The order exists: whatever its lines look like, this answer is final.
            lines, complete = created_lines(created.get("lineItems"))
            return OrderCreateResult(order_id=created["id"], order_name=name if isinstance(name, str) else None,
                                     line_items=lines, line_items_complete=complete)
        if created is None and isinstance(errors, list) and errors and all(
            isinstance(e, dict) and isinstance(e.get("message"), str) and e["message"].strip() for e in errors
        ):
            return OrderCreateResult(order_id=None, order_name=None, user_errors=[
                {"field": e.get("field"), "message": e["message"][:500],
                 "code": e.get("code") if isinstance(e.get("code"), str) else None}
                for e in errors[:20]
            ])
        # Neither an order nor well-formed userErrors: nobody can tell whether it was created.
        raise OutcomeUnknownError(
            "Shopify's answer to orderCreate held neither an order nor an explanation; "
            "it may or may not have been created",
            hint=_UNKNOWN_HINT,
        )

    # -- after creation: fulfillments, cancellations, refunds (DESIGN §6b) -----------------

    def order_fulfillments(self, order_ids: Iterable[str], *, line_items: bool = True,
                           known_fulfillments: Iterable[str] = ()) -> dict[str, OrderFulfillments]:
        """``{order GID: OrderFulfillments}`` for the orders Shopify has, read in batches.

        One ``nodes(ids:)`` read per batch gives each order's ``cancelledAt``,
        ``displayFulfillmentStatus``, fulfillments and their tracking (and, with
        ``line_items``, the order's line items, all pages of them). Then the
        lines of each SUCCESS fulfillment not in ``known_fulfillments`` are read,
        batched too; a known one comes back with ``lines=None``. Batches are
        sized by each read's cost and halved if Shopify prices them over its
        1000-point ceiling. Orders Shopify does not have are absent. Tracking
        edits do not reliably move ``updatedAt`` (DESIGN §6b.1): compare tracking.
        """
        wanted = list(dict.fromkeys(str(i) for i in order_ids))
        known = set(known_fulfillments)
        document = docs.ORDER_FULFILLMENTS_AND_LINES if line_items else docs.ORDER_FULFILLMENTS
        node_cost = (docs.ORDER_FULFILLMENTS_AND_LINES_NODE_COST if line_items
                     else docs.ORDER_FULFILLMENTS_NODE_COST)
        orders: dict[str, dict] = {}
        for nodes in self._nodes_batches(document, wanted, node_cost):
            for node in nodes:
                if node is None or (isinstance(node, dict) and not node):
                    continue  # an id Shopify does not have (or not an order)
                order = fulfillment_order(node, line_items)
                if line_items and order["next_lines"]:
                    order["line_items"] += self._more_order_lines(order["id"], order["next_lines"])
                orders[order["id"]] = order
        unread = [f["id"] for o in orders.values() for f in o["fulfillments"]
                  if f["status"] == "SUCCESS" and f["id"] not in known]
        lines = self._fulfillment_lines(unread)
        return {
            oid: OrderFulfillments(
                order_id=oid, cancelled_at=o["cancelled_at"],
                display_fulfillment_status=o["display_fulfillment_status"],
                line_items=o["line_items"] if line_items else None,
                fulfillments=[Fulfillment(lines=lines.get(f["id"]), **{k: v for k, v in f.items()
                                                                        if k != "lines"})
                              for f in o["fulfillments"]],
            )
            for oid, o in orders.items()
        }

    def _nodes_batches(self, document: str, ids: list[str], node_cost: int) -> Iterator[list]:
        """The ``nodes`` of ``document`` for ``ids``, one list per batch, in order.

        The batch is sized so the read stays under Shopify's single-query
        ceiling; an answer MAX_COST_EXCEEDED (refused before running) halves
        it, and the smaller size is kept for the rest of this client's life.
        """
        start = 0
        while start < len(ids):
            size = self._batch_sizes.get(document) or docs.batch_size(node_cost)
            chunk = ids[start:start + size]
            try:
                data = self.graphql(document, {"ids": chunk}, cost=2 + node_cost * len(chunk))
            except ApiError as exc:
                if exc.code != "MAX_COST_EXCEEDED" or len(chunk) == 1:
                    raise
                self._batch_sizes[document] = max(1, len(chunk) // 2)
                continue
            nodes = data.get("nodes")
            if not isinstance(nodes, list) or len(nodes) != len(chunk):
                raise ApiError("Shopify's answer to a batched read had no list of nodes, one per id",
                               hint="run again; if it persists, check shopify.api_version")
            yield nodes
            start += len(chunk)

    def _more_order_lines(self, order_id: str, after: str) -> list[tuple[str, str | None, int, int]]:
        """The order's line items after cursor ``after``, every page."""
        out: list[tuple[str, str | None, int, int]] = []
        cursor: str | None = after
        while cursor:
            data = self.graphql(docs.ORDER_LINE_ITEMS, {"id": order_id, "after": cursor},
                                cost=docs.ORDER_LINE_ITEMS_COST)
            connection = (data.get("order") or {}).get("lineItems")
            page, cursor = connection_page(connection, "order line items")
            out += [order_line(node) for node in page]
        return out

    def _fulfillment_lines(self, fulfillment_ids: list[str]) -> dict[str, list[tuple[str, str | None, int]]]:
        """``{fulfillment GID: [(line GID, variant GID, quantity)]}``, batched and every page read."""
        found: dict[str, list[tuple[str, str | None, int]]] = {}
        for nodes in self._nodes_batches(docs.FULFILLMENT_LINES, fulfillment_ids,
                                         docs.FULFILLMENT_LINES_NODE_COST):
            for node in nodes:
                if not isinstance(node, dict) or not is_gid(node.get("id"), "Fulfillment"):
                    continue  # a fulfillment gone meanwhile: its lines stay unread (None)
                page, cursor = connection_page(node.get("fulfillmentLineItems"), "fulfillment lines")
                lines = [fulfillment_line(item) for item in page]
                while cursor:
                    data = self.graphql(docs.FULFILLMENT_LINE_ITEMS, {"id": node["id"], "after": cursor},
                                        cost=docs.FULFILLMENT_LINE_ITEMS_COST)
                    more, cursor = connection_page((data.get("node") or {}).get("fulfillmentLineItems"),
                                         "fulfillment lines")
                    lines += [fulfillment_line(item) for item in more]
                found[node["id"]] = lines
        return found

    def order_cancel(self, order_id: str, *, reason: str, staff_note: str, restock: bool = True,
                     refund: bool = True, notify_customer: bool = False) -> CancelResult:
        """Ask Shopify to cancel an order (``orderCancel``, DESIGN §6b.3). Never resent once it may have arrived.

        ``refund`` refunds what was paid to the original payment methods
        (``refundMethod: {originalPaymentMethodsRefund}``); ``restock`` puts
        the committed stock back. Shopify answers with a job and cancels later:
        confirm with ``cancelledAt`` (:meth:`order_fulfillments`). An order
        already cancelled comes back as ``already_cancelled`` (Shopify's
        userError "Cannot cancel an order that has already been canceled");
        other refusals as ``user_errors``. A staff note longer than Shopify's
        255 characters is shortened. :class:`OutcomeUnknownError` when the call
        may have happened without an answer.
        """
        if not is_gid(order_id, "Order"):
            raise InputError(f"{order_id!r} is not a Shopify order id", hint="use gid://shopify/Order/<number>")
        if reason not in CANCEL_REASONS:
            raise InputError(f"unknown cancel reason {reason!r}", hint=f"use one of {', '.join(CANCEL_REASONS)}")
        note = staff_note if len(staff_note) <= STAFF_NOTE_MAX else staff_note[:STAFF_NOTE_MAX - 1] + "…"
        data = self.graphql(
            docs.ORDER_CANCEL,
            {"orderId": order_id, "reason": reason, "restock": bool(restock),
             "refundMethod": {"originalPaymentMethodsRefund": bool(refund)},
             "notifyCustomer": bool(notify_customer), "staffNote": note},
            cost=docs.ORDER_CANCEL_COST, idempotent=False, unknown_hint=_CANCEL_UNKNOWN_HINT,
        )
        payload = data.get("orderCancel")
        job = payload.get("job") if isinstance(payload, dict) else None
        errors = user_errors(payload.get("orderCancelUserErrors") if isinstance(payload, dict) else None,
                              coded=True)
        if isinstance(job, dict) and is_job(job.get("id")) and errors == []:
            return CancelResult(job_id=job["id"], job_done=job.get("done") is True)
        if job is None and errors:
            already = any("already" in e["message"].lower() and "cancel" in e["message"].lower()
                          for e in errors)
            return CancelResult(job_id=None, already_cancelled=already, user_errors=errors)
        raise OutcomeUnknownError(
            "Shopify's answer to orderCancel held neither a job nor an explanation; the order may "
            "or may not be cancelled",
            hint=_CANCEL_UNKNOWN_HINT,
        )

    def job_done(self, job_id: str) -> bool:
        """Whether Shopify has run the job (``job(id:) { done }``).

        Done is not success: a job whose cancellation failed is done too, and
        Shopify answers done for ids it never queued. Confirm a cancellation
        by the order's ``cancelledAt``.
        """
        data = self.graphql(docs.JOB, {"id": job_id}, cost=docs.JOB_COST)
        job = data.get("job")
        if not isinstance(job, dict) or not isinstance(job.get("done"), bool):
            raise ApiError(f"Shopify has no job {job_id}",
                           hint="confirm the cancellation by the order's cancelledAt")
        return job["done"]

    def order_transactions(self, order_id: str) -> list[dict]:
        """The order's transactions, oldest first: ``{id, kind, status, gateway, parent_id,
        amount, currency, presentment_amount, presentment_currency}`` (amounts as Decimal).

        A refund's parent is the SALE (or CAPTURE) it gives back. NotFoundError
        when Shopify has no such order.
        """
        transactions = self._order_list(docs.ORDER_TRANSACTIONS, docs.ORDER_TRANSACTIONS_COST, order_id,
                                        "transactions")
        return [transaction_record(t) for t in transactions]

    def _order_list(self, document: str, cost: int, order_id: str, key: str) -> list:
        """The list ``key`` of one order read by ``document``; NotFoundError when there is no such order."""
        order = self.graphql(document, {"id": order_id}, cost=cost).get("order")
        if order is None:
            raise NotFoundError(f"Shopify has no order {order_id}",
                                hint="it may have been deleted in the Shopify admin")
        found = order.get(key) if isinstance(order, dict) else None
        if not isinstance(found, list):
            raise ApiError(f"Shopify's answer to the {key} read had no list of {key}")
        return found

    def refund_create(self, order_id: str, *, idempotency_key: str, line_items: list[tuple],
                      shipping_amount: Decimal | None, transactions: list[dict], note: str,
                      notify: bool = False, currency: str | None = None) -> RefundResult:
        """Create one refund (``refundCreate @idempotent(key:)``, DESIGN §6b.3–§6b.5).

        ``line_items``: ``(line GID, quantity, restockType)`` with restockType
        RETURN, CANCEL or NO_RESTOCK, optionally a 4th element, the Location
        GID to restock at. ``transactions``: ``{"amount", "gateway",
        "parent_id"}`` (``"kind"`` defaults to REFUND), each giving back part
        of its parent SALE. ``shipping_amount`` refunds that much shipping.
        ``currency`` is the order's presentment currency, which Shopify needs
        when it differs from the shop's.

        Shopify refunds a key once and answers a repeat with the same refund,
        so after :class:`OutcomeUnknownError` send the same refund again with
        the same key. Shopify keeps keys for a limited time (a day, by third
        party accounts): a much later retry should first read
        :meth:`order_refunds`. A key reused with different parameters is a
        userError ("The same idempotency key cannot be used with different
        operation parameters.").
        """
        if not is_gid(order_id, "Order"):
            raise InputError(f"{order_id!r} is not a Shopify order id", hint="use gid://shopify/Order/<number>")
        if not isinstance(idempotency_key, str) or not idempotency_key.strip():
            raise InputError("a refund needs an idempotency key", hint="derive it from the TikTok id (§6b.5)")
        refund: dict[str, Any] = {"orderId": order_id, "note": note, "notify": bool(notify)}
        if currency:
            refund["currency"] = currency
        refund["refundLineItems"] = [refund_line_input(item) for item in line_items]
        if shipping_amount is not None:
            refund["shipping"] = {"amount": money_text(shipping_amount, "shipping_amount")}
        refund["transactions"] = [refund_transaction_input(order_id, t) for t in transactions]
        data = self.graphql(
            docs.REFUND_CREATE, {"input": refund, "idempotencyKey": idempotency_key},
            cost=docs.REFUND_CREATE_COST, idempotent=False, unknown_hint=_REFUND_UNKNOWN_HINT,
        )
        payload = data.get("refundCreate")
        created = payload.get("refund") if isinstance(payload, dict) else None
        errors = user_errors(payload.get("userErrors") if isinstance(payload, dict) else None)
        if isinstance(created, dict) and is_gid(created.get("id"), "Refund") and errors == []:
            amount, currency_code = money_of(created.get("totalRefundedSet"), "shopMoney")
            created_at = created.get("createdAt")
            return RefundResult(refund_id=created["id"],
                                created_at=created_at if isinstance(created_at, str) else None,
                                total_refunded=amount, currency=currency_code)
        if created is None and errors:
            if any(_IN_PROGRESS in e["message"].lower() for e in errors):
                # The first request with this key is still being worked on: it may yet refund.
                raise OutcomeUnknownError(
                    "Shopify is still working on an earlier refundCreate with this key",
                    hint=_REFUND_UNKNOWN_HINT, code="IDEMPOTENCY_CONCURRENT_REQUEST",
                )
            return RefundResult(refund_id=None, user_errors=errors)
        raise OutcomeUnknownError(
            "Shopify's answer to refundCreate held neither a refund nor an explanation; it may or "
            "may not have been made",
            hint=_REFUND_UNKNOWN_HINT,
        )

    def order_refunds(self, order_id: str) -> list[dict]:
        """The order's refunds, oldest first: ``{id, created_at, note, total_refunded, currency,
        line_items: [(line GID, quantity, restockType, location GID)], transactions: [...]}``.

        Transactions are shaped as :meth:`order_transactions` gives them.
        NotFoundError when Shopify has no such order.
        """
        refunds = self._order_list(docs.ORDER_REFUNDS, docs.ORDER_REFUNDS_COST, order_id, "refunds")
        return [refund_record(r) for r in refunds]

    # -- doctor ---------------------------------------------------------------------------

    def orders_for_verify(self, order_ids: list[str]) -> dict[str, dict]:
        """``{order GID: order}`` as verify-orders compares them (DESIGN §5.7), read with ``nodes``.

        Each order carries its money sets, currencies, ``cancelledAt`` and
        every line item's quantities (more than a page of lines are read by
        further calls). Orders Shopify no longer has are absent.
        """
        found: dict[str, dict] = {}
        for start in range(0, len(order_ids), docs.VERIFY_BATCH):
            chunk = order_ids[start:start + docs.VERIFY_BATCH]
            data = self.graphql(docs.ORDERS_FOR_VERIFY, {"ids": chunk},
                                cost=docs.orders_for_verify_cost(len(chunk)))
            nodes = data.get("nodes")
            if not isinstance(nodes, list):
                raise ApiError("Shopify's answer to the order read had no list of nodes",
                               hint="run again; if it persists, check shopify.api_version")
            for node in nodes:
                if not isinstance(node, dict) or not is_gid(node.get("id"), "Order"):
                    continue
                lines = node.get("lineItems") if isinstance(node.get("lineItems"), dict) else {}
                items = [x for x in lines.get("nodes") or [] if isinstance(x, dict)]
                info = lines.get("pageInfo") or {}
                after = info.get("endCursor") if info.get("hasNextPage") else None
                while isinstance(after, str):
                    more = self.graphql(docs.ORDER_LINE_ITEMS, {"id": node["id"], "after": after},
                                        cost=docs.ORDER_LINE_ITEMS_COST)
                    page = ((more.get("order") or {}).get("lineItems") or {})
                    items += [x for x in page.get("nodes") or [] if isinstance(x, dict)]
                    info = page.get("pageInfo") or {}
                    after = info.get("endCursor") if info.get("hasNextPage") else None
                found[node["id"]] = {**node, "lineItems": items}
        return found

    def access_scopes(self) -> set[str]:
        """The access scopes granted to the app on this shop."""
        return set(self.shop_info()["access_scopes"])

    def shop_info(self) -> dict:
        """``{name, myshopify_domain, currency_code, plan, development, plus, access_scopes: [handle, ...]}``."""
        data = self.graphql(docs.SHOP_INFO, cost=docs.SHOP_INFO_COST)
        shop = data.get("shop") or {}
        plan = shop.get("plan") or {}
        scopes = (data.get("currentAppInstallation") or {}).get("accessScopes") or []
        return {
            "name": shop.get("name"),
            "myshopify_domain": shop.get("myshopifyDomain"),
            "currency_code": shop.get("currencyCode"),
            "plan": plan.get("publicDisplayName"),
            "development": bool(plan.get("partnerDevelopment")),
            "plus": bool(plan.get("shopifyPlus")),
            "access_scopes": sorted(s["handle"] for s in scopes),
        }


# -- helpers of this module ------------------------------------------------------------------


def _parse_lines(block: bytes, loads: Callable[[bytes], Any], refused: Refusals) -> list[Any]:
    """The JSON values of a block of complete JSONL lines, parsed in one call; when that fails,
    line by line, each line that is not JSON left out and counted in ``refused``."""
    if b"\n\n" in block or block.startswith(b"\n") or block.endswith(b"\n"):
        block = b"\n".join(line for line in block.split(b"\n") if line.strip())
    if not block.strip():
        return []
    try:
        return loads(b"[" + block.replace(b"\n", b",") + b"]")
    # A broken line (or a line of several values, or one nested deeper than the
    # parser recurses: RecursionError): find which.
    except (ValueError, RecursionError):
        pass
    values = []
    for line in block.split(b"\n"):
        try:
            values.append(loads(line))
        except (ValueError, RecursionError):
            sample = line[:60].decode("utf-8", "replace")
            refused.add(f"a bulk file line that is not one JSON value: {sample!r}")
    return values


def _join_bulk_objects(batches: Iterable[list[Any]], refused: Refusals) -> Iterator[list[tuple]]:
    """Variant rows (in ``Variant``'s field order) from batches of bulk JSONL objects, each
    joined to its product by ``__parentId``; one batch of rows per batch of objects that holds variants.

    Shopify does not promise that a parent line comes before its children, so
    a child whose parent is not yet seen waits until it is; only product
    fields are kept per product, so memory grows with products, not variants.
    Each record is checked (:func:`~ecomsend_cli.shopify_records.catalog_variant`):
    an unusable one is left out and counted in ``refused``, and the rest goes on.
    """
    products: dict[str, tuple] = {}
    waiting: dict[str, list[dict]] = defaultdict(list)
    variant = catalog_variant
    for batch in batches:
        rows = []
        for obj in batch:
            try:
                parent = obj.get("__parentId") if type(obj) is dict else None
                if parent is None:
                    product = catalog_product(obj)
                    products[product[0]] = product
                    for child in waiting.pop(product[0], ()):
                        rows.append(variant(child, product))
                    continue
                if type(parent) is not str:
                    raise RecordRefused(f"a bulk line whose __parentId is not an id: {parent!r}"[:120])
                product = products.get(parent)
                if product is None:
                    waiting[parent].append(obj)
                else:
                    rows.append(variant(obj, product))
            except RecordRefused as exc:
                refused.add(str(exc))
        if rows:
            yield rows
    # A parent that never came: keep the variants, if it is a product's id (a parent that came
    # was checked as a product; this one is only what the variant line says).
    orphans = []
    for parent, children in waiting.items():
        for child in children:
            try:
                if not is_gid(parent, "Product"):
                    raise RecordRefused(f"a variant whose __parentId is not a Product id: {parent[:80]!r}")
                orphans.append(variant(child, (parent, "", "", None)))
            except RecordRefused as exc:
                refused.add(str(exc))
    if orphans:
        yield orphans


def _variants(nodes: list, refused: Refusals) -> Iterator[Variant]:
    """The variants of a page of ``productVariants`` nodes (each with its ``product``), each
    checked: an unusable one is left out and counted in ``refused``."""
    for node in nodes:
        try:
            product = node.get("product") if type(node) is dict else None
            joined = catalog_product(product) if product is not None else ("", "", "", None)
            yield Variant(*catalog_variant(node, joined))
        except RecordRefused as exc:
            refused.add(str(exc))


_OP_RE = re.compile(r"^\s*(query|mutation|subscription)\b\s*(\w*)", re.MULTILINE)


def _operation_type(document: str) -> str:
    match = _OP_RE.search(document)
    return match.group(1) if match else "query"


def _operation_name(document: str) -> str:
    match = _OP_RE.search(document)
    if match and match.group(2):
        return match.group(2)
    return "the GraphQL call"


def _gid_number(gid: str) -> str:
    return str(gid).rsplit("/", 1)[-1]


def _search_quote(value: str) -> str:
    """A value for Shopify's search syntax, quoted so spaces and colons stay literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _lifetime(value: Any) -> float:
    """A client-credentials token's ``expires_in`` in seconds: Shopify's documented 86399 when the
    answer holds no positive number of seconds up to a year (a string, ``Infinity``, a negative)."""
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= 366 * 86400:
        return float(value)
    return 86399.0


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError, RecursionError):  # the last: JSON nested too deep to parse
        return None


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    try:
        return min(MAX_RETRY_AFTER, max(0.0, float(value)))
    except ValueError:
        return None


def _error_codes(errors: Any) -> set[str]:
    if not isinstance(errors, list):
        return set()
    codes = set()
    for error in errors:
        extensions = error.get("extensions") if isinstance(error, dict) else None
        code = extensions.get("code") if isinstance(extensions, dict) else None
        if code:
            codes.add(str(code))
    return codes


# Bounds of a believable extensions.cost: Shopify's buckets hold 1,000 to 20,000
# points and refill 50 to 1,000+ per second; far outside means a broken answer.
_COST_LIMIT = 1e7
_MIN_RESTORE_RATE = 1.0


def _cost_extension(body: dict) -> dict | None:
    """``extensions.cost`` if shaped and sized as Shopify documents it, else None (as if absent).

    The limiter acts on these figures: a string must not crash the client, and
    an absurd one (a negative bucket, a refill rate near zero) must not make
    it wait for years while the run holds the sync lock.
    """
    extensions = body.get("extensions")
    cost = extensions.get("cost") if isinstance(extensions, dict) else None
    if not isinstance(cost, dict):
        return None

    def number(value: Any, low: float, high: float) -> float | None:
        if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
            return None
        return float(value)

    out: dict[str, Any] = {}
    for key in ("requestedQueryCost", "actualQueryCost"):
        if cost.get(key) is not None:
            value = number(cost[key], 0.0, _COST_LIMIT)
            if value is None:
                return None
            out[key] = value
        else:
            out[key] = None
    status = cost.get("throttleStatus")
    if isinstance(status, dict):
        maximum = number(status.get("maximumAvailable"), 1.0, _COST_LIMIT)
        available = number(status.get("currentlyAvailable"), 0.0, maximum or 0.0)
        rate = number(status.get("restoreRate"), _MIN_RESTORE_RATE, _COST_LIMIT)
        if maximum is not None and available is not None and rate is not None:
            out["throttleStatus"] = {"maximumAvailable": maximum, "currentlyAvailable": available,
                                     "restoreRate": rate}
    return out


def _margin(lifetime: Any) -> float:
    """How long before expiry a token of ``lifetime`` seconds is renewed."""
    try:
        return min(TOKEN_RENEW_MARGIN, float(lifetime) / 10.0)
    except (TypeError, ValueError):
        return TOKEN_RENEW_MARGIN


def _refused_before_run(body: dict) -> bool:
    """Whether an answer with errors proves that nothing was executed (a write not done).

    True when every error carries a code Shopify documents as given before
    execution (``THROTTLED``, ``ACCESS_DENIED``, ``SHOP_INACTIVE``,
    ``MAX_COST_EXCEEDED``), or when the answer is what the GraphQL spec
    prescribes for a request refused before execution: no ``data`` key at
    all, and a list of errors each with a message and a code and no ``path``.
    Never when ``data`` holds a payload, an error's path reaches inside the
    mutation's result, or a code is a server failure (Shopify's documented
    ``INTERNAL_SERVER_ERROR`` answer has neither data nor path). Anything
    else (``data: null``, an error without a code, errors as a string) may
    follow a committed write.
    """
    errors = body.get("errors")
    if not isinstance(errors, list) or not errors:
        return False
    data = body.get("data")
    if data is not None and (not isinstance(data, dict) or any(v is not None for v in data.values())):
        return False  # a payload came back: the mutation ran
    codes = []
    for error in errors:
        if not isinstance(error, dict) or not isinstance(error.get("extensions"), dict):
            return False
        code = error["extensions"].get("code")
        if not isinstance(code, str) or not isinstance(error.get("message"), str):
            return False
        path = error.get("path")
        if path is not None and (not isinstance(path, list) or len(path) > 1):
            return False  # an error inside the mutation's result (a field-level ACCESS_DENIED): it ran
        codes.append((code, bool(path)))
    if all(code in _REFUSED_BEFORE_RUN for code, _ in codes):
        return True
    # Shopify answers a server failure (INTERNAL_SERVER_ERROR, TIMEOUT) with no data
    # and no path whether or not the write had committed: that is no refusal.
    return ("data" not in body and not any(has_path for _, has_path in codes)
            and not any(code in _SERVER_FAILURES for code, _ in codes))


def _order_limit(message: str) -> bool:
    """Whether a refusal is a trial store's order limit (REST: 429 "Exceeded order API rate limit")."""
    return "order api rate limit" in message.lower()


def _graphql_error(errors: Any, codes: set[str], op: str) -> ApiError:
    if isinstance(errors, list):
        messages = [str(e.get("message", "")) for e in errors if isinstance(e, dict)]
    else:
        messages = [str(errors)]
    text = "; ".join(m for m in messages if m)[:500] or "unknown error"
    if "ACCESS_DENIED" in codes:
        return AuthError(
            f"Shopify denied {op}: {text}",
            hint="the app lacks an access scope; add it in the app's configuration and run "
            "ecomsend doctor",
            code="ACCESS_DENIED",
        )
    if "MAX_COST_EXCEEDED" in codes:
        return ApiError(f"{op} is too expensive for Shopify: {text}", code="MAX_COST_EXCEEDED")
    return ApiError(f"Shopify rejected {op}: {text}", code=next(iter(codes), None))


def _http_error(status: int, config: ShopifyConfig, op: str) -> ApiError:
    if status == 403:
        return AuthError(
            f"Shopify answered 403 Forbidden to {op} on {config.shop}",
            hint="the app is missing an access scope or is not installed; run ecomsend doctor",
            code=403,
        )
    if status == 404:
        return ApiError(
            f"Shopify answered 404 Not Found for {config.shop} (API {config.api_version})",
            hint="check shopify.shop and shopify.api_version",
            code=404,
        )
    if status == 402:
        return ApiError(
            f"the shop {config.shop} is frozen (HTTP 402 Payment Required)",
            hint="the shop's plan needs attention in the Shopify admin",
            code=402,
        )
    if status == 423:
        return ApiError(f"the shop {config.shop} is locked (HTTP 423)", code=423)
    return ApiError(f"Shopify answered HTTP {status} to {op}", code=status)
