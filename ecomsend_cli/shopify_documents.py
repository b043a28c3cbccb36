"""Every GraphQL document ecomsend sends to the Shopify Admin API (version 2026-07).

Kept in one module so that one test (``tests/test_shopify_documents.py``)
validates each of them against Shopify's published schema, and so that the
field names the client reads back are visible in one place. :data:`ALL`
lists them for that test; add any new document there too.

Cost notes (DESIGN §5.5, §9): a connection costs 2 points plus ``first`` times
the cost of one node; each object in a node costs 1; scalars cost nothing; a
mutation costs 10 plus its payload. The ``*_COST`` hints are what the
limiter reserves before the first answer tells it the real requested cost.
"""

from __future__ import annotations

PAGE_SIZE = 250  # Shopify's maximum page size

# The fields of a variant the catalog cache keeps (DESIGN §4.3). Shared by the
# paged query and the bulk query so both produce the same Variant records.
_VARIANT_FIELDS = """
      id
      title
      sku
      inventoryQuantity
      inventoryItem { id }
"""
_PRODUCT_FIELDS = """
      id
      title
      status
      updatedAt
"""

SHOP_INFO = """
query ShopInfo {
  shop {
    name
    myshopifyDomain
    currencyCode
  }
  currentAppInstallation {
    accessScopes { handle }
  }
}
"""
SHOP_INFO_COST = 2

PRODUCT_VARIANTS = (
    """
query ProductVariants($first: Int!, $after: String, $query: String) {
  productVariants(first: $first, after: $after, query: $query, sortKey: ID) {
    pageInfo { hasNextPage endCursor }
    nodes {"""
    + _VARIANT_FIELDS
    + """      product {"""
    + _PRODUCT_FIELDS
    + """      }
    }
  }
}
"""
)
# 2 + 250 × (variant 1 + inventoryItem 1 + product 1)
PRODUCT_VARIANTS_COST = 2 + PAGE_SIZE * 3

CHANGED_PRODUCTS = """
query ChangedProducts($first: Int!, $after: String, $query: String!) {
  products(first: $first, after: $after, query: $query, sortKey: ID) {
    pageInfo { hasNextPage endCursor }
    nodes { id }
  }
}
"""
CHANGED_PRODUCTS_COST = 2 + PAGE_SIZE

# The query run as a bulk operation (DESIGN §4.3): every product with every
# variant. Connections take no ``first`` in a bulk query; the JSONL result has
# one line per product and one per variant, the variant carrying ``__parentId``.
BULK_VARIANTS_QUERY = (
    """
{
  products {
    edges {
      node {"""
    + _PRODUCT_FIELDS
    + """        variants {
          edges {
            node {"""
    + _VARIANT_FIELDS
    + """            }
          }
        }
      }
    }
  }
}
"""
)

BULK_RUN_QUERY = """
mutation BulkRunQuery($query: String!) {
  bulkOperationRunQuery(query: $query) {
    bulkOperation { id status }
    userErrors { field message code }
  }
}
"""
BULK_RUN_QUERY_COST = 11

BULK_OPERATION_STATUS = """
query BulkOperationStatus($id: ID!) {
  bulkOperation(id: $id) {
    id
    status
    errorCode
    objectCount
    fileSize
    url
    partialDataUrl
  }
}
"""
BULK_OPERATION_STATUS_COST = 1

ORDERS_BY_SOURCE_IDENTIFIER = """
query OrdersBySourceIdentifier($query: String!, $first: Int!, $after: String) {
  orders(first: $first, after: $after, query: $query, sortKey: CREATED_AT) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id
      name
      sourceIdentifier
      createdAt
    }
  }
}
"""


def orders_by_source_identifier_cost(first: int) -> int:
    """Requested cost of one page of :data:`ORDERS_BY_SOURCE_IDENTIFIER` (Shopify refunds the unused part)."""
    return 2 + first


ORDER_CREATE = """
mutation OrderCreate($order: OrderCreateOrderInput!, $options: OrderCreateOptionsInput) {
  orderCreate(order: $order, options: $options) {
    order {
      id
      name
      sourceIdentifier
    }
    userErrors { field message code }
  }
}
"""
ORDER_CREATE_COST = 11

_MONEY = "{ shopMoney { amount currencyCode } presentmentMoney { amount currencyCode } }"
VERIFY_LINE_ITEMS = 25  # line items read with each order; more are paged with ORDER_LINE_ITEMS

ORDERS_FOR_VERIFY = f"""
query OrdersForVerify($ids: [ID!]!) {{
  nodes(ids: $ids) {{
    ... on Order {{
      id
      name
      cancelledAt
      currencyCode
      presentmentCurrencyCode
      totalPriceSet {_MONEY}
      totalTaxSet {_MONEY}
      totalDiscountsSet {_MONEY}
      totalOutstandingSet {_MONEY}
      lineItems(first: {VERIFY_LINE_ITEMS}) {{
        pageInfo {{ hasNextPage endCursor }}
        nodes {{ quantity currentQuantity variant {{ id }} }}
      }}
    }}
  }}
}}
"""
VERIFY_BATCH = 10  # orders per read: 10 x (an order + 25 lines) stays well under 1000 points


def orders_for_verify_cost(count: int) -> int:
    """Requested cost of one ORDERS_FOR_VERIFY read of ``count`` orders (learnt from answers after)."""
    return 2 + count * (6 + 2 * VERIFY_LINE_ITEMS)


ORDER_LINE_ITEMS = """
query OrderLineItems($id: ID!, $after: String) {
  order(id: $id) {
    lineItems(first: 250, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { quantity currentQuantity variant { id } }
    }
  }
}
"""
ORDER_LINE_ITEMS_COST = 2 + 250 * 2

# name -> document, for the schema validation test.
ALL: dict[str, str] = {
    "SHOP_INFO": SHOP_INFO,
    "PRODUCT_VARIANTS": PRODUCT_VARIANTS,
    "CHANGED_PRODUCTS": CHANGED_PRODUCTS,
    "BULK_VARIANTS_QUERY": BULK_VARIANTS_QUERY,
    "BULK_RUN_QUERY": BULK_RUN_QUERY,
    "BULK_OPERATION_STATUS": BULK_OPERATION_STATUS,
    "ORDERS_BY_SOURCE_IDENTIFIER": ORDERS_BY_SOURCE_IDENTIFIER,
    "ORDER_CREATE": ORDER_CREATE,
    "ORDERS_FOR_VERIFY": ORDERS_FOR_VERIFY,
    "ORDER_LINE_ITEMS": ORDER_LINE_ITEMS,
}
