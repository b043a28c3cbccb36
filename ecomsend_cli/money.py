"""Money as TikTok sends it: amounts checked, currencies and their minor units (DESIGN §5.7).

TikTok sends amounts as decimal strings in the order's currency. Before an
amount is used it must be a plain, finite, non-negative number with no more
decimals than the currency has (0 for JPY or IDR, 3 for KWD, 2 for most):
anything else makes the order ``invalid`` with the reason, never a silently
truncated price. :func:`parse_amount` is that check and the only place that
turns a TikTok amount into a :class:`~decimal.Decimal`.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

# ISO 4217 exponents that differ from 2, plus IDR, which TikTok and Shopify
# sellers use without minor units (DESIGN §5.7).
_MINOR_UNITS = {
    **dict.fromkeys(("BIF", "CLP", "DJF", "GNF", "IDR", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF",
                     "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"), 0),
    **dict.fromkeys(("BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"), 3),
}
# No real order line or order total comes near this; a value above it is a broken payload.
MAX_AMOUNT = Decimal(10) ** 12
_PLAIN_NUMBER = re.compile(r"[0-9]+(\.[0-9]+)?")
_CURRENCY = re.compile(r"[A-Z]{3}")


class AmountError(ValueError):
    """An amount or currency that cannot be used; the message says why."""


def minor_units(currency: str) -> int:
    """How many decimals ``currency`` has (2 unless listed otherwise)."""
    return _MINOR_UNITS.get(currency, 2)


def check_currency(value: Any) -> str:
    """A three-letter ISO 4217 code, upper case; AmountError otherwise."""
    if not isinstance(value, str) or not _CURRENCY.fullmatch(value.strip().upper()):
        raise AmountError(f"currency {_show(value)} is not a three-letter code")
    return value.strip().upper()


def parse_amount(value: Any, currency: str, *, field: str) -> Decimal:
    """``value`` as a Decimal, or AmountError naming ``field`` and what is wrong with it.

    Accepted: a string (or JSON number) of plain digits with at most the
    currency's decimals, between 0 and :data:`MAX_AMOUNT`. Refused: empty,
    ``NaN``, ``Infinity``, exponents (``1e30``), signs, more decimals than the
    currency allows.
    """
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise AmountError(f"{field} is {_show(value)}, not an amount")
    text = str(value).strip() if not isinstance(value, float) else repr(value)
    if not _PLAIN_NUMBER.fullmatch(text):
        raise AmountError(f"{field} is {_show(value)}, not a plain non-negative amount")
    try:
        amount = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid decimals
        raise AmountError(f"{field} is {_show(value)}, not an amount") from None
    if amount > MAX_AMOUNT:
        raise AmountError(f"{field} is {_show(value)}, larger than any real amount")
    units = minor_units(currency)
    if amount != amount.quantize(Decimal(1).scaleb(-units)):
        raise AmountError(f"{field} is {_show(value)}, with more decimals than {currency} has ({units})")
    return amount


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def minor(currency: str) -> Decimal:
    """The currency's smallest unit as a Decimal: 0.01, 1 (JPY), 0.001 (KWD)."""
    return Decimal(1).scaleb(-minor_units(currency))


def split(total: Decimal, weights: list[Decimal], currency: str) -> list[Decimal]:
    """``total`` split in proportion to ``weights``, in the currency's minor units, by largest remainder.

    The parts always add up to ``total`` exactly (DESIGN §5.7: never averaged
    and truncated). Equal weights (all zero too) split evenly; ties in the
    remainders go to the earlier parts, so the result is deterministic.
    """
    if not weights:
        return []
    unit = minor(currency)
    units = int((total / unit).to_integral_value())
    if units * unit != total:
        raise AmountError(f"{total} has more decimals than {currency} has ({minor_units(currency)})")
    basis = sum(weights)
    if basis <= 0:
        weights, basis = [Decimal(1)] * len(weights), Decimal(len(weights))
    shares = [Decimal(units) * w / basis for w in weights]
    floors = [int(s) for s in shares]  # shares are >= 0
    left = units - sum(floors)
    order = sorted(range(len(shares)), key=lambda i: (-(shares[i] - floors[i]), i))
    for i in order[:left]:
        floors[i] += 1
    return [Decimal(f) * unit for f in floors]


def convert(amount: Decimal, rate: Decimal, currency: str) -> Decimal:
    """``amount`` × ``rate`` in ``currency``'s minor units (half-even, as banks round)."""
    return (amount * rate).quantize(minor(currency), rounding=ROUND_HALF_EVEN)


def text(amount: Decimal, currency: str) -> str:
    """An amount as Shopify's Decimal input: exactly the currency's decimals."""
    return str(amount.quantize(minor(currency)))
