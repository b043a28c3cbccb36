"""The TikTok Shop calls ecomsend makes, and the shapes of their answers (DESIGN §4.2, §5.1, §6b).

:class:`TikTokClient` adds to :class:`~ecomsend_cli.tiktok_session.TikTokSession`
(signing, tokens, retries, errors — and which calls may be sent twice) the
calls themselves:

* reads: order search and detail (202309), product search and detail, the
  authorised shops, the shipping providers of a delivery option (logistics
  202309), the external order references of an order (202406), cancellations
  and returns search (return_refund 202309) — listings paged and bounded;
* writes, never sent twice when they may have run (an unclear answer raises
  :class:`~ecomsend_cli.errors.OutcomeUnknownError`): Mark Package As Shipped,
  Ship Package, Update Package Shipping Info (fulfillment 202309), Add
  External Order References (202406).

Answers are checked at this boundary: a page or a record list of the wrong
shape is one clear :class:`~ecomsend_cli.errors.ApiError`; the records inside
a well-shaped page (orders, cancellations, returns) are the caller's to check
one by one. ``sign`` and ``TOKEN_CACHE_NAME`` are re-exported from the session
module, where they live.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from .errors import ApiError, PagingError
from .tiktok_session import DEFAULT_DEADLINE, TOKEN_CACHE_NAME, TikTokSession, sign

__all__ = ["DEFAULT_DEADLINE", "TOKEN_CACHE_NAME", "TikTokClient", "TikTokSession", "sign"]

ORDER_SEARCH_PATH = "/order/202309/orders/search"
ORDER_DETAIL_PATH = "/order/202309/orders"
PRODUCT_SEARCH_PATH = "/product/202309/products/search"
PRODUCT_DETAIL_PATH = "/product/202309/products/{product_id}"
SHIPPING_PROVIDERS_PATH = "/logistics/202309/delivery_options/{delivery_option_id}/shipping_providers"
MARK_SHIPPED_PATH = "/fulfillment/202309/orders/{order_id}/packages"  # Mark Package As Shipped
SHIP_PACKAGE_PATH = "/fulfillment/202309/packages/{package_id}/ship"
SHIPPING_INFO_PATH = "/fulfillment/202309/packages/{package_id}/shipping_info/update"
EXTERNAL_ORDERS_ADD_PATH = "/order/202406/orders/external_orders"
EXTERNAL_ORDERS_GET_PATH = "/order/202406/orders/{order_id}/external_orders"
CANCELLATION_SEARCH_PATH = "/return_refund/202309/cancellations/search"
RETURN_SEARCH_PATH = "/return_refund/202309/returns/search"

MAX_ORDER_IDS = 50  # per GET /order/202309/orders call
# Paging bounds (issue 15): pages that bring no new order, and pages beyond
# what the first answer's total_count makes plausible (orders keep arriving
# while we page: a tenth more, and some pages of slack).
MAX_STALE_PAGES = 3
PAGE_SLACK = 10
MAX_PAGES_UNCOUNTED = 5_000
_PAGING_HINT = ("the orders pulled before it are kept and synced; run again later, and report it to "
                "TikTok if it persists")
MAX_PAGE_SIZE = 100
MAX_AFTERSALES_PAGE_SIZE = 50  # cancellations and returns search: "Upper limit 50"
_AFTERSALES_PAGING_HINT = ("the records pulled before it are kept and handled; run again later, and report it "
                           "to TikTok if it persists")
# Ids that go into a URL path: TikTok's are digits; anything with / ? # would change the call.
_PATH_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")


class TikTokClient(TikTokSession):
    """A synchronous TikTok Shop Open API client: the session, and the calls ecomsend makes.

    Built as :class:`~ecomsend_cli.tiktok_session.TikTokSession` is (config, token cache,
    and the injectable ``transport``, ``sleep``, ``clock``, ``rng``, retry and deadline knobs).
    """

    def search_orders(
        self,
        *,
        update_time_ge: int,
        update_time_lt: int | None = None,
        page_size: int = 50,
    ) -> Iterator[list[dict[str, Any]]]:
        """Orders updated in ``[update_time_ge, update_time_lt)``, oldest update first.

        Yields one list per page (empty pages skipped) so the caller can commit
        page by page, and follows ``next_page_token`` — but not forever
        (issue 15): a token seen before (a repeat, a cycle), pages that bring
        no order not already seen, or more pages than the ``total_count`` of
        the first answer makes plausible end the listing with
        :class:`PagingError`, after the pages already yielded.
        """
        body: dict[str, Any] = {"update_time_ge": int(update_time_ge)}
        if update_time_lt is not None:
            body["update_time_lt"] = int(update_time_lt)
        size = max(1, min(MAX_PAGE_SIZE, page_size))
        query: dict[str, Any] = {"page_size": size, "sort_field": "update_time", "sort_order": "ASC"}
        yield from self._pages(ORDER_SEARCH_PATH, "orders", query, body)

    def _pages(self, path: str, key: str, query: dict[str, Any], body: Any, *, id_key: str = "id",
               noun: str = "order", hint: str = _PAGING_HINT) -> Iterator[list[Any]]:
        """Every page of a listing, bounded (see :meth:`search_orders`); items are told apart by ``id_key``."""
        seen_tokens: set[str] = set()
        seen_ids: set[str] = set()
        pages = stale = 0
        cap: int | None = None
        while True:
            data = self.request("POST", path, query=query, body=body)
            pages += 1
            items = _page_list(data, key, path)
            if cap is None:
                cap = _plausible_pages(data.get("total_count"), query["page_size"])
            ids = {str(i.get(id_key)) for i in items if isinstance(i, dict)}
            fresh = ids - seen_ids
            seen_ids |= ids
            stale = 0 if fresh or (items and not ids) else stale + 1
            if items:
                yield items
            token = _page_token(data, path)
            if not token:
                return
            if token in seen_tokens:
                raise PagingError(
                    f"TikTok {path} sent a page token it had sent before, after {pages} page(s): "
                    "its paging loops", hint=hint)
            if stale >= MAX_STALE_PAGES:
                raise PagingError(
                    f"TikTok {path} kept sending pages with no new {noun} ({stale} in a row, "
                    f"after {pages} page(s))", hint=hint)
            if pages >= cap:
                raise PagingError(
                    f"TikTok {path} sent more pages ({pages}) than its count of "
                    f"{data.get('total_count')!r} makes plausible", hint=hint)
            seen_tokens.add(token)
            query = {**query, "page_token": token}

    def get_orders(self, ids: list[str]) -> list[dict[str, Any]]:
        """Order details for ``ids`` (batched by 50), in TikTok's order."""
        out: list[dict[str, Any]] = []
        for start in range(0, len(ids), MAX_ORDER_IDS):
            chunk = ids[start:start + MAX_ORDER_IDS]
            data = self.request("GET", ORDER_DETAIL_PATH, query={"ids": ",".join(chunk)})
            out.extend(_page_list(data, "orders", ORDER_DETAIL_PATH))
        return out

    def search_products(self, page_size: int = 100) -> Iterator[dict[str, Any]]:
        """Every product of the shop (all pages, bounded as order search is), one dict at a time.

        Search results carry no ``external_sku_id``; use :meth:`get_product` for it.
        """
        query: dict[str, Any] = {"page_size": max(1, min(MAX_PAGE_SIZE, page_size))}
        for page in self._pages(PRODUCT_SEARCH_PATH, "products", query, {}):
            yield from page

    def get_product(self, product_id: str) -> dict[str, Any]:
        """Product detail, whose ``skus`` carry ``external_sku_id`` when published from Shopify."""
        return self.request("GET", PRODUCT_DETAIL_PATH.format(product_id=product_id))

    # -- logistics and fulfillment (DESIGN §6b.1) -------------------------------------------------
    def shipping_providers(self, delivery_option_id: str) -> list[dict[str, Any]]:
        """The carriers TikTok accepts for a delivery option: ``[{"id": str, "name": str}, ...]``.

        ``GET /logistics/202309/delivery_options/{delivery_option_id}/shipping_providers``
        answers ``{shipping_providers: [{id, name}]}``; a provider without a string id
        and name is a wrong answer (ApiError). Other keys TikTok adds are kept.
        """
        path = SHIPPING_PROVIDERS_PATH.format(delivery_option_id=_path_id(delivery_option_id, "delivery option id"))
        data = self.request("GET", path)
        providers = []
        for item in _page_list(data, "shipping_providers", path):
            if not isinstance(item, dict) or not _text(item.get("id")) or not isinstance(item.get("name"), str):
                raise _shape_error(path, f"a shipping provider without a string id and name: {_brief(item)}")
            providers.append({**item, "id": _text(item["id"]), "name": item["name"]})
        return providers

    def create_package_and_ship(self, order_id: str, line_item_ids: list[str], tracking_number: str,
                                shipping_provider_id: str) -> str:
        """Mark Package As Shipped: a new package of ``line_item_ids``, shipped; returns its ``package_id``.

        ``POST /fulfillment/202309/orders/{order_id}/packages`` with ``order_line_item_ids``,
        ``tracking_number`` and ``shipping_provider_id``; TikTok answers ``{order_id,
        order_line_item_ids, package_id, warning: {message}}``. For lines not yet in a package
        (US and UK sellers get a package only when shipping; TikTok offers this call in the
        US). Not idempotent (module docstring); a success without a usable ``package_id`` is
        an unknown outcome too: the order's lines then say which package they went into.
        """
        ids = [_required(i, "line item id") for i in line_item_ids]
        if not ids:
            raise ValueError("create_package_and_ship needs at least one line item id")
        path = MARK_SHIPPED_PATH.format(order_id=_path_id(order_id, "order id"))
        body = {"order_line_item_ids": ids, "tracking_number": _required(tracking_number, "tracking number"),
                "shipping_provider_id": _required(shipping_provider_id, "shipping provider id")}
        data = self.request("POST", path, body=body, idempotent=False)
        package_id = _text(data.get("package_id"))
        if not package_id:
            raise self._unknown(f"TikTok POST {path}", f"its answer named no package ({_brief(data)})")
        return package_id

    def ship_package(self, package_id: str, tracking_number: str, shipping_provider_id: str) -> None:
        """Ship Package: a package TikTok already made (lines carry its ``package_id``), self-shipped.

        ``POST /fulfillment/202309/packages/{package_id}/ship`` with ``self_shipment:
        {tracking_number, shipping_provider_id}`` — the seller's own carrier, so no
        ``handover_method``/``pickup_slot`` (those are for TikTok's logistics). Not idempotent.
        """
        path = SHIP_PACKAGE_PATH.format(package_id=_path_id(package_id, "package id"))
        body = {"self_shipment": {"tracking_number": _required(tracking_number, "tracking number"),
                                  "shipping_provider_id": _required(shipping_provider_id, "shipping provider id")}}
        self.request("POST", path, body=body, idempotent=False)

    def update_shipping_info(self, package_id: str, tracking_number: str, shipping_provider_id: str) -> None:
        """Update Package Shipping Info: a shipped package's new tracking number and carrier.

        ``POST /fulfillment/202309/packages/{package_id}/shipping_info/update`` with
        ``tracking_number`` and ``shipping_provider_id``. TikTok allows it within 72 h of
        shipping; later it refuses (an ApiError with its code). Not idempotent.
        """
        path = SHIPPING_INFO_PATH.format(package_id=_path_id(package_id, "package id"))
        body = {"tracking_number": _required(tracking_number, "tracking number"),
                "shipping_provider_id": _required(shipping_provider_id, "shipping provider id")}
        self.request("POST", path, body=body, idempotent=False)

    # -- external order references (DESIGN §6b.2) ------------------------------------------------
    def add_external_order(self, order_id: str, shopify_order_id: str, line_items: list[tuple[str, str]]) -> None:
        """Write the Shopify order onto the TikTok order (Add External Order References, 202406).

        ``line_items`` are ``(shopify line item id, tiktok line item id)`` pairs; Shopify ids
        may be numeric or ``gid://shopify/...`` (sent numeric). The body is TikTok's batch
        shape, with one order: ``{orders: [{id, external_order: {id, platform: "SHOPIFY",
        line_items: [{id, origin_id}]}}]}``. TikTok answers code 0 even when it refuses an
        order, listing it in ``data.errors[{code, message, detail}]``: that is raised as an
        ApiError with TikTok's code. Not idempotent (module docstring).
        """
        body = {"orders": [{
            "id": _required(order_id, "order id"),
            "external_order": {
                "id": _shopify_number(shopify_order_id),
                "platform": "SHOPIFY",
                "line_items": [
                    {"id": _shopify_number(shopify_line), "origin_id": _required(tiktok_line, "line item id")}
                    for shopify_line, tiktok_line in line_items
                ],
            },
        }]}
        what = f"TikTok POST {EXTERNAL_ORDERS_ADD_PATH}"
        data = self.request("POST", EXTERNAL_ORDERS_ADD_PATH, body=body, idempotent=False)
        errors = data.get("errors")
        if errors is None or errors == []:
            return
        if not isinstance(errors, list) or not all(isinstance(e, dict) for e in errors):
            raise self._unknown(what, f"its answer listed errors of an unusable shape ({_brief(errors)})")
        code = errors[0].get("code")
        code = int(code) if isinstance(code, str) and code.isdigit() else code
        message = str(errors[0].get("message") or "no message")
        raise ApiError(f"TikTok refused the external order reference of order {order_id}: {message} (code {code})",
                       hint="the reference is written again on the next run", code=code)

    def external_orders(self, order_id: str, platform: str = "SHOPIFY") -> list[dict[str, Any]]:
        """The external order references on a TikTok order (Get External Order References, 202406).

        ``GET /order/202406/orders/{order_id}/external_orders?platform=...`` answers
        ``{external_orders: [{id, platform, line_items: [{id, origin_id}]}]}`` (``id`` the
        other platform's, ``origin_id`` TikTok's line item). Returned in that shape, ids as
        strings; anything else is an ApiError.
        """
        path = EXTERNAL_ORDERS_GET_PATH.format(order_id=_path_id(order_id, "order id"))
        data = self.request("GET", path, query={"platform": platform})
        references = []
        for item in _page_list(data, "external_orders", path):
            lines = item.get("line_items") if isinstance(item, dict) else None
            if (not isinstance(item, dict) or not _text(item.get("id")) or not isinstance(item.get("platform"), str)
                    or not isinstance(lines if lines is not None else [], list)):
                raise _shape_error(path, f"an external order without a string id and platform: {_brief(item)}")
            pairs = []
            for line in lines or []:
                if not isinstance(line, dict) or not _text(line.get("id")) or not _text(line.get("origin_id")):
                    raise _shape_error(path, f"an external order line without id and origin_id: {_brief(line)}")
                pairs.append({"id": _text(line["id"]), "origin_id": _text(line["origin_id"])})
            references.append({"id": _text(item["id"]), "platform": item["platform"], "line_items": pairs})
        return references

    # -- cancellations and returns (DESIGN §6b.3, §6b.4) -----------------------------------------
    def search_cancellations(self, *, update_time_ge: int, update_time_lt: int | None = None,
                             page_size: int = 50) -> Iterator[list[dict[str, Any]]]:
        """Cancellations updated in ``[update_time_ge, update_time_lt)``, oldest update first.

        ``POST /return_refund/202309/cancellations/search`` (at most 50 a page), paged and
        bounded as :meth:`search_orders`. Each record is TikTok's, unchanged: ``cancel_id``,
        ``order_id``, ``cancel_type`` (CANCEL | BUYER_CANCEL), ``cancel_status``
        (CANCELLATION_REQUEST_PENDING | _SUCCESS | _COMPLETE | _CANCEL, spelt _CANCELLED in
        answers), ``role`` (who cancelled: BUYER | SELLER | SYSTEM), ``cancel_reason``,
        ``cancel_reason_text``, ``refund_amount {currency, refund_total, refund_subtotal,
        refund_shipping_fee, refund_tax, retail_delivery_fee}``, ``cancel_line_items
        [{cancel_line_item_id, order_line_item_id, sku_id, seller_sku, refund_amount, ...}]``,
        ``create_time``, ``update_time``. The caller checks each record.
        """
        yield from self._aftersales(CANCELLATION_SEARCH_PATH, "cancellations", "cancel_id", "cancellation",
                                    update_time_ge, update_time_lt, page_size)

    def search_returns(self, *, update_time_ge: int, update_time_lt: int | None = None,
                       page_size: int = 50) -> Iterator[list[dict[str, Any]]]:
        """Returns and refunds updated in ``[update_time_ge, update_time_lt)``, oldest update first.

        ``POST /return_refund/202309/returns/search`` (at most 50 a page; TikTok's list is
        ``return_orders``), paged and bounded as :meth:`search_orders`. Each record is
        TikTok's, unchanged: ``return_id``, ``order_id``, ``return_type`` (REFUND — refund
        only — | RETURN_AND_REFUND | REPLACEMENT), ``return_status`` (e.g.
        RETURN_OR_REFUND_REQUEST_COMPLETE: buyer refunded; …_CANCEL or …_CANCELLED),
        ``role``, ``return_reason``, ``return_reason_text``, ``refund_amount {currency,
        refund_total, refund_subtotal, refund_shipping_fee, refund_tax, ...}``,
        ``return_line_items [{return_line_item_id, order_line_item_id, sku_id, seller_sku,
        refund_amount, ...}]``, ``create_time``, ``update_time``. The caller checks each record.
        """
        yield from self._aftersales(RETURN_SEARCH_PATH, "return_orders", "return_id", "return",
                                    update_time_ge, update_time_lt, page_size)

    def _aftersales(self, path: str, key: str, id_key: str, noun: str, update_time_ge: int,
                    update_time_lt: int | None, page_size: int) -> Iterator[list[dict[str, Any]]]:
        body: dict[str, Any] = {"update_time_ge": int(update_time_ge)}
        if update_time_lt is not None:
            body["update_time_lt"] = int(update_time_lt)
        query: dict[str, Any] = {"page_size": max(1, min(MAX_AFTERSALES_PAGE_SIZE, page_size)),
                                 "sort_field": "update_time", "sort_order": "ASC"}
        yield from self._pages(path, key, query, body, id_key=id_key, noun=noun, hint=_AFTERSALES_PAGING_HINT)


# -- answer shapes ------------------------------------------------------------------------------
# TikTok's answers are outside data: a page whose shape is wrong is one clear
# ApiError here, at the client's boundary; the orders inside a well-shaped page
# are checked one by one by tiktok_orders (a broken order never stops its page).


def _page_list(data: dict[str, Any], key: str, path: str) -> list[Any]:
    """``data[key]`` as a list (absent or null: empty), or ApiError naming what came instead."""
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ApiError(
            f"TikTok {path} answered with '{key}' as {type(value).__name__}, not a list",
            hint="TikTok's answer was not usable; run again later, and report it to TikTok if it persists",
        )
    return value


def _shape_error(path: str, problem: str) -> ApiError:
    return ApiError(
        f"TikTok {path} answered with {problem}",
        hint="TikTok's answer was not usable; run again later, and report it to TikTok if it persists",
    )


def _brief(value: Any) -> str:
    """A short, printable picture of an unexpected value (for error messages)."""
    text = json.dumps(value, default=str)
    return text if len(text) <= 120 else text[:117] + "..."


def _text(value: Any) -> str:
    """An id as TikTok sends it (a string; digits also accepted as a number), or "" if it is none."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return ""


def _required(value: Any, what: str) -> str:
    text = _text(value).strip()
    if not text:
        raise ValueError(f"a {what} is required, got {value!r}")
    return text


def _path_id(value: Any, what: str) -> str:
    """An id that goes into a URL path, refused if it could change which endpoint is called."""
    text = _required(value, what)
    if not _PATH_ID.fullmatch(text):
        raise ValueError(f"{what} {text!r} is not a TikTok id")
    return text


def _shopify_number(value: Any) -> str:
    """A Shopify id as the number TikTok's external references take: ``gid://shopify/Order/42`` -> ``42``."""
    text = _required(value, "Shopify id").rsplit("/", 1)[-1]
    if not text.isdigit():
        raise ValueError(f"{value!r} is not a Shopify id")
    return text


def _page_token(data: dict[str, Any], path: str) -> str:
    token = data.get("next_page_token")
    if token is None:
        return ""
    if not isinstance(token, str) or len(token) > 4096:
        raise ApiError(
            f"TikTok {path} answered with an unusable next_page_token ({type(token).__name__})",
            hint="TikTok's answer was not usable; run again later, and report it to TikTok if it persists",
        )
    return token


def _plausible_pages(total: Any, page_size: int) -> int:
    """How many pages a listing of ``total`` items may take, with room for new arrivals."""
    if isinstance(total, bool) or not isinstance(total, int) or total < 0:
        return MAX_PAGES_UNCOUNTED
    return -(-(total + total // 10) // page_size) + PAGE_SLACK
