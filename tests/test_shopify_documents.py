"""Every GraphQL document the Shopify client sends is valid against Shopify's real schema.

The schema (Admin API 2026-07, 3.8 MB) lives in ``../shared/fixtures``; it is
parsed once per test session. Where the folder is absent the tests skip.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from graphql import NoDeprecatedCustomRule, execute, parse, specified_rules, validate

from ecomsend_cli import shopify_documents as docs
from ecomsend_cli.sandbox.shopify_schema import load_schema_file, simulator_schema

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"
ADMIN_SCHEMA = FIXTURES / "shopify-admin-2026-07.graphql"


@pytest.fixture(scope="session")
def admin_schema():
    if not ADMIN_SCHEMA.is_file():
        pytest.skip(f"Shopify's Admin API schema is not at {ADMIN_SCHEMA} (fixtures are not shipped)")
    return load_schema_file(ADMIN_SCHEMA)


# A typical order as the sync engine builds it (DESIGN §5.3).
ECOMSEND_ORDER = {
    "lineItems": [
        {
            "variantId": "gid://shopify/ProductVariant/11",
            "quantity": 2,
            "priceSet": {"shopMoney": {"amount": "12.50", "currencyCode": "USD"}},
        }
    ],
    "currency": "USD",
    "email": "buyer@example.com",
    "shippingAddress": {
        "firstName": "Ada",
        "lastName": "Lovelace",
        "address1": "1 Main St",
        "city": "Austin",
        "provinceCode": "TX",
        "countryCode": "US",
        "zip": "73301",
        "phone": "+15125550100",
    },
    "shippingLines": [
        {"title": "TikTok Shop shipping", "priceSet": {"shopMoney": {"amount": "4.99", "currencyCode": "USD"}}}
    ],
    "transactions": [
        {
            "kind": "SALE",
            "status": "SUCCESS",
            "gateway": "TikTok Shop",
            "amountSet": {"shopMoney": {"amount": "29.99", "currencyCode": "USD"}},
        }
    ],
    "financialStatus": "PAID",
    "sourceName": "tiktok",
    "sourceIdentifier": "576461413038785752",
    "tags": ["TikTok"],
    "processedAt": "2026-05-01T10:00:00Z",
}


def _variables_errors(schema, document, variables):
    """Errors graphql-core raises while coercing ``variables`` (none means Shopify accepts them)."""
    result = execute(schema, parse(document), variable_values=variables)
    return [e.message for e in result.errors or [] if "Variable" in e.message]


@pytest.mark.parametrize("name", sorted(docs.ALL))
def test_document_is_valid_against_shopify_schema(admin_schema, name):
    errors = validate(admin_schema, parse(docs.ALL[name]))
    assert [e.message for e in errors] == []


@pytest.mark.parametrize("name", sorted(docs.ALL))
def test_document_uses_no_deprecated_field(admin_schema, name):
    errors = validate(admin_schema, parse(docs.ALL[name]), [*specified_rules, NoDeprecatedCustomRule])
    assert [e.message for e in errors] == []


@pytest.mark.parametrize("name", sorted(docs.ALL))
def test_document_is_served_by_the_simulator(name):
    errors = validate(simulator_schema(), parse(docs.ALL[name]))
    assert [e.message for e in errors] == []


def test_every_document_of_the_module_is_checked():
    documents = {
        name
        for name, value in vars(docs).items()
        if isinstance(value, str) and name.isupper() and not name.startswith("_") and "{" in value
    }
    assert documents == set(docs.ALL)


def test_order_create_variables_are_accepted_by_shopify(admin_schema):
    variables = {"order": ECOMSEND_ORDER, "options": {"inventoryBehaviour": "DECREMENT_OBEYING_POLICY"}}
    assert _variables_errors(admin_schema, docs.ORDER_CREATE, variables) == []


def test_misspelt_inventory_behavior_is_refused_by_shopify(admin_schema):
    # The field is spelled the British way (DESIGN §9); the American one is an error.
    variables = {"order": ECOMSEND_ORDER, "options": {"inventoryBehavior": "BYPASS"}}
    assert _variables_errors(admin_schema, docs.ORDER_CREATE, variables)


def test_order_create_variables_are_accepted_by_the_simulator():
    variables = {"order": ECOMSEND_ORDER, "options": {"inventoryBehaviour": "DECREMENT_OBEYING_POLICY"}}
    assert _variables_errors(simulator_schema(), docs.ORDER_CREATE, variables) == []


def test_page_cost_stays_under_shopify_single_query_limit():
    assert docs.PRODUCT_VARIANTS_COST <= 1000
    assert docs.CHANGED_PRODUCTS_COST <= 1000


def test_shopify_schema_still_refuses_a_wrong_document(admin_schema):
    # The published schema is built without judging its own SDL, but documents
    # are still validated strictly against it.
    errors = validate(admin_schema, parse("query { shop { noSuchField } orders(first: 1) { nodes { id } } }"))
    assert [e.message for e in errors] == ["Cannot query field 'noSuchField' on type 'Shop'."]
