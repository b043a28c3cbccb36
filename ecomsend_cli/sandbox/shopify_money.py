"""Shopify's order arithmetic, as the simulator applies it to ``orderCreate`` (DESIGN §5.7, §8).

:func:`order_money` turns an ``OrderCreateOrderInput`` (a dict, as GraphQL
coerced it or as a test wrote it) into an :class:`OrderMoney`: every amount
Shopify reports for the order, per line and in total, in shop and in
presentment money. It is pure (no I/O, no clock) and deterministic, so tests
call it in-process on thousands of generated inputs. An input Shopify would
refuse raises :class:`OrderInputError`, which carries Shopify-style
``userErrors`` (``field`` path, ``message``, ``code``). :func:`edit_money` and
:func:`cancel_money` give the money after an operator's edit (the simulator's
``/_sandbox/orders/{number}/edit``) or a cancellation; :func:`refund_money` the
money after a refund (``refundCreate``, or the refund ``orderCancel`` records).

What Shopify documents, and the simulator follows:

* A line's ``priceSet`` is the unit price *before* discounts
  (``OrderCreateLineItemInput.priceSet``); a tax line's ``priceSet`` is "the
  amount added to the order for this tax ... after discounts", for the whole
  line, not per unit (Shopify's own example: 3 × 74.99 with a 13.50 tax line,
  SALE 238.47).
* ``subtotalPriceSet`` is the sum of the lines after discounts, tax included
  when ``taxesIncluded``; ``totalPriceSet`` adds shipping and, unless
  ``taxesIncluded``, the taxes; ``totalTaxSet`` is every line and shipping tax
  line; ``totalDiscountsSet`` holds line and shipping discounts. A captured
  real answer agrees (fixtures ``shopify_orderCreate_capture_2025-01.json``:
  2 × 20.00, code SAVE5 5.00, line tax 2.00, shipping 5.00 + 0.50 tax →
  total 42.5, tax 2.5, discounts 5.0).
* ``totalOutstandingSet`` is "the total amount not yet transacted": the
  current total less successful SALE and CAPTURE transactions, plus
  successful REFUNDs; negative when the customer is owed.
* ``financialStatus``, when given, is kept as given; otherwise it is derived
  from the transactions.
* Tax lines go on the order or on the lines, not both; order tax lines are
  split across the taxable lines. One discount code per order
  (``OrderCreateDiscountCodeInput``: one type only). A tax line without a
  ``rate`` is ``TAX_LINE_RATE_MISSING`` at ``...taxLines.N.rate`` (captured
  real answer). Shipping prices "can't be negative".
* ``presentmentCurrency`` "must be specified if any presentment currencies
  are used in the order"; a ``MoneyBagInput`` without ``presentmentMoney`` is
  "assumed" to be in the shop's currency.

Where Shopify's documentation is silent, the plainest reading, chosen here:

* Each currency is computed on its own amounts, in its ISO 4217 minor units
  (:func:`minor_units`: 0 for JPY, KRW …, 3 for KWD …, 2 otherwise — IDR has
  2 in ISO 4217); no exchange rate is ever applied.
* A fixed-amount discount code is spread ACROSS the lines in proportion to
  their totals before discounts, by largest remainder in minor units (ties to
  the earlier line): the parts sum to the code's amount exactly. A percentage
  code takes its percentage of the lines' total, rounded half up, and is
  spread the same way; a free-shipping code takes every shipping line's price.
* A tax line without ``priceSet`` is its ``rate`` of the line's (or shipping
  line's) price after discounts — ``price × rate / (1 + rate)`` when taxes
  are included — rounded half up; order tax lines are split across taxable
  lines by largest remainder on their totals after discounts.
* Refused, as Shopify is not documented to accept them and each would hide a
  client's mistake: ``currency`` other than the shop's; any amount whose
  ``currencyCode`` is not the order's ``currency`` (shop money) or
  presentment currency (presentment money); presentment money without
  ``presentmentCurrency``; presentment money that differs from shop money
  while both currencies are the same; a bag without ``presentmentMoney`` when
  ``presentmentCurrency`` differs from ``currency`` (a real shop accepted one,
  fixtures above, but what it then reports in presentment money is unknown:
  the simulator will not invent it); negative amounts; more decimals than the
  currency has; a discount larger than the lines it applies to; a percentage
  outside 0–100; a quantity below 1.
* Free orders (total 0) without transactions are PAID.

Refunds (``refundCreate``; Shopify's field descriptions, and a real answer
captured by airhorns/shopify-draft-proxy, 2026-04 ``orderCancel`` with
``refundMethod``: after refunding 20.00 of 20.00, ``totalReceivedSet`` 20.0,
``totalRefundedSet`` 20.0, ``netPaymentSet`` 0.0, ``totalOutstandingSet`` 0.0,
``displayFinancialStatus`` REFUNDED):

* ``totalPriceSet`` and ``totalReceivedSet`` never change ("before returns");
  ``totalRefundedSet`` sums the REFUND transactions; ``netPaymentSet`` is
  received less refunded.
* ``current*`` totals and a line's ``currentQuantity`` leave refunded units
  out ("excluding refunded units"): a refunded unit takes its share of the
  line's discount and tax with it, scaled as an edit scales them. Refunded
  shipping comes off the current total (its tax is not recomputed).
* A refund makes the financial status PARTIALLY_REFUNDED, or REFUNDED once
  refunds reach what was received.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

# ISO 4217 exponents that differ from 2 (among Shopify's CurrencyCode values).
_MINOR_UNITS = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX",
                     "VND", "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}
_SETTLING = ("SALE", "CAPTURE")
ZERO_DECIMAL = Decimal(0)
# Far above any real order; keeps every sum inside Decimal's default 28 digits.
MAX_AMOUNT = Decimal(10) ** 15


def minor_units(currency: str) -> int:
    """How many decimals Shopify's amounts in ``currency`` may have (ISO 4217)."""
    return _MINOR_UNITS.get(currency, 2)


class OrderInputError(ValueError):
    """An ``orderCreate`` input Shopify refuses; ``user_errors`` as Shopify spells them."""

    def __init__(self, user_errors: list[dict[str, Any]]) -> None:
        self.user_errors = user_errors
        super().__init__("; ".join(
            f"{'.'.join(e['field'])}: {e['message']}" for e in user_errors
        ))


@dataclass(frozen=True)
class Bag:
    """One amount in shop money and in presentment money (a ``MoneyBag``)."""

    shop: Decimal
    presentment: Decimal

    def __add__(self, other: Bag) -> Bag:
        return Bag(self.shop + other.shop, self.presentment + other.presentment)

    def __sub__(self, other: Bag) -> Bag:
        return Bag(self.shop - other.shop, self.presentment - other.presentment)


ZERO = Bag(ZERO_DECIMAL, ZERO_DECIMAL)


def total(bags: Sequence[Bag]) -> Bag:
    """The sum of ``bags`` (ZERO for none)."""
    result = ZERO
    for bag in bags:
        result = result + bag
    return result


@dataclass(frozen=True)
class TaxLineMoney:
    title: str
    rate: Decimal
    amount: Bag
    channel_liable: bool | None = False


@dataclass(frozen=True)
class LineMoney:
    """One line item: ``quantity`` counts removed units too, ``current_quantity`` does not."""

    index: int
    quantity: int
    current_quantity: int
    unit_price: Bag
    discount: Bag
    tax_lines: tuple[TaxLineMoney, ...]
    requires_shipping: bool = False
    taxable: bool = True

    @property
    def original_total(self) -> Bag:
        """Unit price × current quantity, before discounts."""
        return Bag(self.unit_price.shop * self.current_quantity,
                   self.unit_price.presentment * self.current_quantity)

    @property
    def discounted_total(self) -> Bag:
        return self.original_total - self.discount

    @property
    def tax(self) -> Bag:
        return total([t.amount for t in self.tax_lines])


@dataclass(frozen=True)
class ShippingLineMoney:
    index: int
    title: str
    price: Bag
    discount: Bag
    tax_lines: tuple[TaxLineMoney, ...]
    code: str | None = None
    source: str | None = None

    @property
    def discounted_price(self) -> Bag:
        return self.price - self.discount

    @property
    def tax(self) -> Bag:
        return total([t.amount for t in self.tax_lines])


@dataclass(frozen=True)
class TransactionMoney:
    kind: str
    status: str
    amount: Bag
    gateway: str | None = None
    test: bool = False
    parent: int | None = None  # a REFUND's SALE or CAPTURE: its place in ``transactions``


@dataclass(frozen=True)
class OrderMoney:
    """Every amount Shopify reports for one order; totals are computed from the parts."""

    currency: str
    presentment_currency: str
    taxes_included: bool
    lines: tuple[LineMoney, ...]
    shipping_lines: tuple[ShippingLineMoney, ...]
    transactions: tuple[TransactionMoney, ...]
    discount_code: str | None
    financial_status: str
    original_total: Bag  # ``originalTotalPriceSet``: the total at creation, never edited
    cancelled: bool = False
    refunded_units: tuple[int, ...] = ()  # per line, units refunded (``currentQuantity`` leaves them out)
    refunded_shipping: Bag = ZERO

    @property
    def line_items_total(self) -> Bag:
        """Lines before discounts."""
        return total([line.original_total for line in self.lines])

    @property
    def subtotal(self) -> Bag:
        """``subtotalPriceSet``: lines after discounts (tax inside when taxes are included)."""
        return total([line.discounted_total for line in self.lines])

    @property
    def shipping(self) -> Bag:
        """``totalShippingPriceSet``: shipping lines before discounts."""
        return total([s.price for s in self.shipping_lines])

    @property
    def total_discounts(self) -> Bag:
        """``totalDiscountsSet``: line and shipping discounts."""
        return total([line.discount for line in self.lines] +
                     [s.discount for s in self.shipping_lines])

    @property
    def total_tax(self) -> Bag:
        """``totalTaxSet``: every line and shipping tax line."""
        return total([line.tax for line in self.lines] + [s.tax for s in self.shipping_lines])

    @property
    def total(self) -> Bag:
        """``totalPriceSet``."""
        shipping = total([s.discounted_price for s in self.shipping_lines])
        added = ZERO if self.taxes_included else self.total_tax
        return self.subtotal + shipping + added

    def current(self, amount: Bag) -> Bag:
        """``amount`` as the ``current*`` fields show it: nothing is left of a cancelled order."""
        return ZERO if self.cancelled else amount

    @property
    def received(self) -> Bag:
        """``totalReceivedSet``: successful SALE and CAPTURE transactions."""
        return total([t.amount for t in self.transactions
                      if t.kind in _SETTLING and t.status == "SUCCESS"])

    @property
    def refunded(self) -> Bag:
        return total([t.amount for t in self.transactions
                      if t.kind == "REFUND" and t.status == "SUCCESS"])

    @property
    def outstanding(self) -> Bag:
        """``totalOutstandingSet``: the current total not yet paid (negative: owed to the buyer)."""
        return self.current_total - self.received + self.refunded

    @property
    def net_payment(self) -> Bag:
        """``netPaymentSet``: received less refunded."""
        return self.received - self.refunded

    @property
    def quantity(self) -> int:
        """``subtotalLineItemsQuantity``: units ordered after edits, refunded ones included."""
        return sum(line.current_quantity for line in self.lines)

    # -- after refunds (the ``current*`` fields) --

    def refunded_quantity(self, index: int) -> int:
        """Units of line ``index`` refunded so far."""
        return self.refunded_units[index] if index < len(self.refunded_units) else 0

    @property
    def current_lines(self) -> tuple[LineMoney, ...]:
        """The lines less their refunded units (each with its share of discount and tax)."""
        if not any(self.refunded_units):
            return self.lines
        return tuple(
            _rescale(line, line.current_quantity - self.refunded_quantity(line.index),
                     self.currency, self.presentment_currency)
            if self.refunded_quantity(line.index) else line
            for line in self.lines
        )

    def _current_sum(self, part: str) -> Bag:
        if self.cancelled:
            return ZERO
        lines = self.current_lines
        if part == "subtotal":
            return total([line.discounted_total for line in lines])
        if part == "tax":
            return total([line.tax for line in lines] + [s.tax for s in self.shipping_lines])
        if part == "discounts":
            return total([line.discount for line in lines] + [s.discount for s in self.shipping_lines])
        shipping = total([s.discounted_price for s in self.shipping_lines]) - self.refunded_shipping
        added = ZERO if self.taxes_included else self._current_sum("tax")
        return self._current_sum("subtotal") + shipping + added

    @property
    def current_subtotal(self) -> Bag:
        """``currentSubtotalPriceSet``."""
        return self._current_sum("subtotal")

    @property
    def current_total_tax(self) -> Bag:
        """``currentTotalTaxSet``."""
        return self._current_sum("tax")

    @property
    def current_total_discounts(self) -> Bag:
        """``currentTotalDiscountsSet``."""
        return self._current_sum("discounts")

    @property
    def current_total(self) -> Bag:
        """``currentTotalPriceSet``: 0 once cancelled, refunded units and shipping left out."""
        return self._current_sum("total")

    @property
    def current_quantity(self) -> int:
        """``currentSubtotalLineItemsQuantity``."""
        return 0 if self.cancelled else sum(line.current_quantity for line in self.current_lines)

    @property
    def display_financial_status(self) -> str:
        """``displayFinancialStatus``: as created or derived, until a refund makes it (PARTIALLY_)REFUNDED."""
        refunded = self.refunded.shop
        if refunded > 0:
            return "REFUNDED" if refunded >= self.received.shop else "PARTIALLY_REFUNDED"
        return self.financial_status


def order_money(order: Mapping[str, Any], *, shop_currency: str) -> OrderMoney:
    """The money of an ``OrderCreateOrderInput``; :class:`OrderInputError` if Shopify refuses it.

    ``shop_currency`` is the shop's currency (``shop { currencyCode }``).
    Lines without ``priceSet`` cost 0 here: the simulator fills in the
    variant's price before calling.
    """
    return _Builder(order, shop_currency).build()


def edit_money(money: OrderMoney, index: int, *, quantity: int | None = None,
               unit_price: Bag | None = None) -> OrderMoney:
    """The money after an edit of line ``index``: a new quantity (0 removes it) or unit price.

    A quantity change scales the line's discount and tax lines with it
    (half up, per currency); a price change keeps the tax lines as given and
    caps the discount at the new line total. ValueError for an impossible edit.
    """
    lines = list(money.lines)
    if not 0 <= index < len(lines):
        raise ValueError(f"the order has no line {index} (it has {len(lines)})")
    line = lines[index]
    if quantity is not None:
        if quantity < 0:
            raise ValueError("quantity must be 0 (remove the line) or more")
        if line.current_quantity == 0:
            raise ValueError(f"line {index} was removed; it cannot be edited")
        line = replace(_rescale(line, quantity, money.currency, money.presentment_currency),
                       quantity=max(line.quantity, quantity))
    if unit_price is not None:
        if unit_price.shop < 0 or unit_price.presentment < 0:
            raise ValueError("a price cannot be negative")
        line = replace(line, unit_price=unit_price)
        line = replace(line, discount=Bag(min(line.discount.shop, line.original_total.shop),
                                          min(line.discount.presentment,
                                              line.original_total.presentment)))
    lines[index] = line
    return replace(money, lines=tuple(lines))


def cancel_money(money: OrderMoney) -> OrderMoney:
    """The money of the order once cancelled: its ``current*`` totals are 0."""
    return replace(money, cancelled=True)


def refund_money(money: OrderMoney, *, units: Mapping[int, int], shipping: Bag = ZERO,
                 transactions: Sequence[TransactionMoney] = ()) -> OrderMoney:
    """The money after one refund: ``units`` (line index → units) refunded, ``shipping``
    refunded, ``transactions`` (REFUNDs) added.

    ValueError when a line has fewer refundable units left than asked.
    """
    refunded = [money.refunded_quantity(i) for i in range(len(money.lines))]
    for index, count in units.items():
        if not 0 <= index < len(money.lines):
            raise ValueError(f"the order has no line {index}")
        if count < 0 or refunded[index] + count > money.lines[index].current_quantity:
            raise ValueError(f"line {index} has {money.lines[index].current_quantity - refunded[index]} "
                             f"refundable unit(s), not {count}")
        refunded[index] += count
    return replace(money, refunded_units=tuple(refunded),
                   refunded_shipping=money.refunded_shipping + shipping,
                   transactions=money.transactions + tuple(transactions))


def _rescale(line: LineMoney, quantity: int, currency: str, presentment: str) -> LineMoney:
    """``line`` with ``quantity`` current units, its discount and taxes scaled with them (half up)."""
    old = line.current_quantity
    if old == quantity:
        return line
    if old == 0:
        raise ValueError(f"line {line.index} has no units left")

    def scale(bag: Bag) -> Bag:
        return Bag(_round(bag.shop * quantity / old, currency),
                   _round(bag.presentment * quantity / old, presentment))

    return replace(line, current_quantity=quantity, discount=scale(line.discount),
                   tax_lines=tuple(replace(t, amount=scale(t.amount)) for t in line.tax_lines))


# -- building ----------------------------------------------------------------------------------


def _round(value: Decimal, currency: str) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-minor_units(currency)), rounding=ROUND_HALF_UP)


def _units(amount: Decimal, currency: str) -> int:
    return int(amount.scaleb(minor_units(currency)))


def _from_units(units: int, currency: str) -> Decimal:
    return Decimal(units).scaleb(-minor_units(currency))


def allocate(amount: Decimal, weights: Sequence[Decimal], currency: str) -> list[Decimal]:
    """``amount`` split in proportion to ``weights`` by largest remainder in minor units.

    The parts sum to ``amount`` exactly; ties go to the earlier weight. With
    every weight 0 the parts are 0 (the caller refuses a non-zero amount).
    """
    whole = _units(amount, currency)
    units = [_units(w, currency) for w in weights]
    base = sum(units)
    if base == 0:
        return [ZERO_DECIMAL.scaleb(-minor_units(currency)) for _ in weights]
    quotas = [whole * u for u in units]
    parts = [q // base for q in quotas]
    left = whole - sum(parts)
    for i in sorted(range(len(units)), key=lambda i: (-(quotas[i] % base), i))[:left]:
        parts[i] += 1
    return [_from_units(p, currency) for p in parts]


class _Builder:
    def __init__(self, order: Mapping[str, Any], shop_currency: str) -> None:
        self.order = order
        self.errors: list[dict[str, Any]] = []
        self.currency = str(order.get("currency") or shop_currency)
        given = order.get("presentmentCurrency")
        self.presentment_given = bool(given)
        self.presentment = str(given or self.currency)
        if self.currency != shop_currency:
            self.error(["currency"], f"Currency must be the shop's currency ({shop_currency}), "
                                     f"not {self.currency}")

    def error(self, field: list[str], message: str, code: str = "INVALID") -> None:
        self.errors.append({"field": ["order", *field], "message": message, "code": code})

    # -- amounts --

    def amount(self, value: Any, currency: str, field: list[str]) -> Decimal | None:
        try:
            number = Decimal(str(value).strip())
        except (InvalidOperation, ValueError):
            self.error(field, f"Amount {value!r} is not a number")
            return None
        if not number.is_finite():
            self.error(field, f"Amount {value!r} is not a number")
            return None
        if number < 0:
            self.error(field, "Amount must be greater than or equal to 0")
            return None
        if number > MAX_AMOUNT:
            self.error(field, f"Amount {value} is too large")
            return None
        units = minor_units(currency)
        if number != number.quantize(Decimal(1).scaleb(-units), rounding=ROUND_HALF_UP):
            self.error(field, f"Amount {value} has more decimals than {currency} allows ({units})")
            return None
        return number.quantize(Decimal(1).scaleb(-units))

    def bag(self, value: Any, field: list[str], *, required: bool = True) -> Bag | None:
        """A ``MoneyBagInput`` checked against the order's currencies (None: absent or refused)."""
        if not value:
            if required:
                self.error(field, "Money can't be blank")
            return None
        shop = value.get("shopMoney") or {}
        shop_amount = None
        if shop.get("currencyCode") != self.currency:
            self.error([*field, "shopMoney", "currencyCode"],
                       f"Shop money must be in the order's currency ({self.currency}), "
                       f"not {shop.get('currencyCode')}")
        else:
            shop_amount = self.amount(shop.get("amount"), self.currency, [*field, "shopMoney", "amount"])
        presentment = value.get("presentmentMoney")
        if not presentment:
            if self.presentment != self.currency:
                self.error([*field, "presentmentMoney"],
                           f"Presentment money is required when presentmentCurrency "
                           f"({self.presentment}) differs from currency ({self.currency})")
                return None
            return None if shop_amount is None else Bag(shop_amount, shop_amount)
        code = presentment.get("currencyCode")
        if code != self.presentment:
            unset = "" if self.presentment_given else " (presentmentCurrency is not set)"
            self.error([*field, "presentmentMoney", "currencyCode"],
                       f"Presentment money must be in the order's presentment currency "
                       f"({self.presentment}), not {code}{unset}")
            return None
        presentment_amount = self.amount(presentment.get("amount"), self.presentment,
                                         [*field, "presentmentMoney", "amount"])
        if shop_amount is None or presentment_amount is None:
            return None
        if self.presentment == self.currency and presentment_amount != shop_amount:
            self.error([*field, "presentmentMoney", "amount"],
                       "Presentment money must equal shop money when both are in "
                       f"{self.currency}")
            return None
        return Bag(shop_amount, presentment_amount)

    def computed(self, rate: Decimal, base: Bag, taxes_included: bool) -> Bag:
        divisor = 1 + rate if taxes_included else Decimal(1)
        return Bag(_round(base.shop * rate / divisor, self.currency),
                   _round(base.presentment * rate / divisor, self.presentment))

    def tax_lines(self, items: Any, field: list[str], base: Bag,
                  taxes_included: bool) -> tuple[TaxLineMoney, ...]:
        out = []
        for t, tax in enumerate(items or []):
            where = [*field, "taxLines", str(t)]
            raw_rate = tax.get("rate")
            if raw_rate is None or str(raw_rate).strip() == "":
                self.error([*where, "rate"], "Tax line rate is missing", "TAX_LINE_RATE_MISSING")
                continue
            try:
                rate = Decimal(str(raw_rate).strip())
            except InvalidOperation:
                rate = Decimal(-1)
            if not rate.is_finite() or rate < 0:
                self.error([*where, "rate"], f"Tax line rate {raw_rate!r} is not a rate of 0 or more")
                continue
            if tax.get("priceSet"):
                amount = self.bag(tax["priceSet"], [*where, "priceSet"])
            else:
                amount = self.computed(rate, base, taxes_included)
            if amount is not None:
                out.append(TaxLineMoney(str(tax.get("title") or ""), rate, amount,
                                        tax.get("channelLiable", False)))
        return tuple(out)

    # -- the order --

    def build(self) -> OrderMoney:
        order = self.order
        taxes_included = bool(order.get("taxesIncluded") or False)
        raw_lines = list(order.get("lineItems") or [])
        prices: list[Bag] = []
        quantities: list[int] = []
        for i, line in enumerate(raw_lines):
            where = ["lineItems", str(i)]
            quantity = line.get("quantity")
            if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
                self.error([*where, "quantity"], "Quantity must be greater than or equal to 1")
                quantity = 0
            quantities.append(quantity)
            price = self.bag(line.get("priceSet"), [*where, "priceSet"], required=False)
            prices.append(price or ZERO)
        originals = [Bag(p.shop * q, p.presentment * q) for p, q in zip(prices, quantities, strict=True)]
        line_discounts, shipping_free, code = self.discounts(originals)

        lines: list[LineMoney] = []
        order_taxes = order.get("taxLines") or []
        for i, line in enumerate(raw_lines):
            where = ["lineItems", str(i)]
            discounted = originals[i] - line_discounts[i]
            taxes = self.tax_lines(line.get("taxLines"), where, discounted, taxes_included)
            lines.append(LineMoney(
                index=i, quantity=quantities[i], current_quantity=quantities[i],
                unit_price=prices[i], discount=line_discounts[i], tax_lines=taxes,
                requires_shipping=bool(line.get("requiresShipping") or False),
                taxable=line.get("taxable", True) is not False,
            ))
        if order_taxes:
            lines = self.order_tax_lines(order_taxes, lines, taxes_included)

        shipping_lines = []
        for s, shipping in enumerate(order.get("shippingLines") or []):
            where = ["shippingLines", str(s)]
            price = self.bag(shipping.get("priceSet"), [*where, "priceSet"]) or ZERO
            discount = price if shipping_free else ZERO
            taxes = self.tax_lines(shipping.get("taxLines"), where, price - discount, taxes_included)
            shipping_lines.append(ShippingLineMoney(
                index=s, title=str(shipping.get("title") or ""), price=price, discount=discount,
                tax_lines=taxes, code=shipping.get("code"), source=shipping.get("source"),
            ))

        transactions = []
        for t, transaction in enumerate(order.get("transactions") or []):
            amount = self.bag(transaction.get("amountSet"), ["transactions", str(t), "amountSet"])
            if amount is not None:
                transactions.append(TransactionMoney(
                    kind=str(transaction.get("kind") or "SALE"),
                    status=str(transaction.get("status") or "SUCCESS"), amount=amount,
                    gateway=transaction.get("gateway"), test=bool(transaction.get("test") or False),
                ))
        if self.errors:
            raise OrderInputError(self.errors)
        money = OrderMoney(
            currency=self.currency, presentment_currency=self.presentment,
            taxes_included=taxes_included, lines=tuple(lines), shipping_lines=tuple(shipping_lines),
            transactions=tuple(transactions), discount_code=code, financial_status="PENDING",
            original_total=ZERO,
        )
        status = order.get("financialStatus") or _derived_status(money)
        return replace(money, financial_status=status, original_total=money.total)

    def discounts(self, originals: list[Bag]) -> tuple[list[Bag], bool, str | None]:
        """Each line's share of the discount code, whether shipping is free, and the code."""
        none = [ZERO] * len(originals)
        codes = {k: v for k, v in (self.order.get("discountCode") or {}).items() if v}
        if not codes:
            return none, False, None
        if len(codes) > 1:
            self.error(["discountCode"], "Only one discount code type can be applied to an order")
            return none, False, None
        kind, attributes = next(iter(codes.items()))
        code = str(attributes.get("code") or "")
        if kind == "freeShippingDiscountCode":
            return none, True, code
        lines_total = total(originals)
        where = ["discountCode", kind]
        if kind == "itemPercentageDiscountCode":
            try:
                percentage = Decimal(str(attributes.get("percentage") or 0))
            except InvalidOperation:
                percentage = Decimal(-1)
            if not percentage.is_finite() or not 0 <= percentage <= 100:
                self.error([*where, "percentage"], "Percentage must be between 0 and 100")
                return none, False, code
            amount = Bag(_round(lines_total.shop * percentage / 100, self.currency),
                         _round(lines_total.presentment * percentage / 100, self.presentment))
        else:  # itemFixedDiscountCode: "the amount that's deducted from the order total"
            amount = self.bag(attributes.get("amountSet"), [*where, "amountSet"], required=False) or ZERO
            if amount.shop > lines_total.shop or amount.presentment > lines_total.presentment:
                self.error([*where, "amountSet"],
                           f"The discount ({amount.shop} {self.currency}) is larger than the "
                           f"line items it applies to ({lines_total.shop} {self.currency})")
                return none, False, code
        shop = allocate(amount.shop, [o.shop for o in originals], self.currency)
        presentment = allocate(amount.presentment, [o.presentment for o in originals],
                               self.presentment)
        return [Bag(s, p) for s, p in zip(shop, presentment, strict=True)], False, code

    def order_tax_lines(self, taxes: Any, lines: list[LineMoney],
                        taxes_included: bool) -> list[LineMoney]:
        """Order tax lines, split across the taxable lines by their totals after discounts."""
        if any(line.tax_lines for line in lines):
            self.error(["taxLines"], "Tax lines can be given on the order or on its line items, "
                                     "not both")
            return lines
        taxable = [line for line in lines if line.taxable]
        if not taxable:
            self.error(["taxLines"], "The order has no taxable line item to carry its tax lines")
            return lines
        base = total([line.discounted_total for line in taxable])
        shares: dict[int, list[TaxLineMoney]] = {line.index: [] for line in taxable}
        for tax in self.tax_lines(taxes, [], base, taxes_included):
            shop = allocate(tax.amount.shop, [line.discounted_total.shop for line in taxable],
                            self.currency)
            presentment = allocate(tax.amount.presentment,
                                   [line.discounted_total.presentment for line in taxable],
                                   self.presentment)
            for line, s, p in zip(taxable, shop, presentment, strict=True):
                shares[line.index].append(replace(tax, amount=Bag(s, p)))
        return [replace(line, tax_lines=tuple(shares[line.index])) if line.index in shares else line
                for line in lines]


def _derived_status(money: OrderMoney) -> str:
    """The financial status Shopify derives from the transactions when none is given."""
    paid = money.received.shop
    refunded = money.refunded.shop
    due = money.total.shop
    if refunded > 0:
        return "REFUNDED" if refunded >= paid else "PARTIALLY_REFUNDED"
    if paid >= due:
        return "PAID"
    if paid > 0:
        return "PARTIALLY_PAID"
    if any(t.kind == "AUTHORIZATION" and t.status == "SUCCESS" for t in money.transactions):
        return "AUTHORIZED"
    return "PENDING"
