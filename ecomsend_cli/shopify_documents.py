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
    plan { publicDisplayName partnerDevelopment shopifyPlus }
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


# The created order's line items come back with it: the TikTok external order
# reference (DESIGN §6b.2) names each Shopify line. 250 is a page; an order with
# more lines says so (hasNextPage) and the rest are read with ORDER_LINE_ITEMS.
ORDER_CREATE = """
mutation OrderCreate($order: OrderCreateOrderInput!, $options: OrderCreateOptionsInput) {
  orderCreate(order: $order, options: $options) {
    order {
      id
      name
      sourceIdentifier
      lineItems(first: 250) {
        pageInfo { hasNextPage }
        nodes { id quantity variant { id } }
      }
    }
    userErrors { field message code }
  }
}
"""
# A mutation costs 10 (DESIGN §9). The payload's line connection could be priced too
# (2 + 250 × 2); the first answer's requestedQueryCost replaces this guess either way,
# and a guess of 513 would hold the first concurrent creates back on a small bucket.
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
      totalRefundedSet {_MONEY}
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
    return 2 + count * (7 + 2 * VERIFY_LINE_ITEMS)


ORDER_LINE_ITEMS = """
query OrderLineItems($id: ID!, $after: String) {
  order(id: $id) {
    lineItems(first: 250, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { id quantity currentQuantity variant { id } }
    }
  }
}
"""
ORDER_LINE_ITEMS_COST = 2 + 250 * 2

# -- after creation: fulfillments, cancellations, refunds (DESIGN §6b) ------------------------
#
# Fulfillments are read in two steps, so that the hundreds of orders a run
# watches cost a few points each: ORDER_FULFILLMENTS (optionally with the
# order's line items) gives every order's fulfillments and their tracking;
# FULFILLMENT_LINES then reads the lines of only the fulfillments the caller
# does not know yet. Order.fulfillments is a plain list (no pages): 20 is far
# more shipments than one TikTok order makes.
FULFILLMENTS_PER_ORDER = 20
TRACKING_PER_FULFILLMENT = 10
FULFILLMENT_ORDER_LINES = 25  # order line items read with each order (ORDER_FULFILLMENTS_AND_LINES)
FULFILLMENT_LINES_PAGE = 5  # lines read with each fulfillment (most have 1-3): 55 fulfillments a read; more are paged

_FULFILLMENT_FIELDS = f"""
      fulfillments(first: {FULFILLMENTS_PER_ORDER}) {{
        id
        status
        createdAt
        updatedAt
        trackingInfo(first: {TRACKING_PER_FULFILLMENT}) {{ company number url }}
        location {{ id }}
      }}"""

ORDER_FULFILLMENTS = f"""
query OrderFulfillments($ids: [ID!]!) {{
  nodes(ids: $ids) {{
    ... on Order {{
      id
      cancelledAt
      displayFulfillmentStatus{_FULFILLMENT_FIELDS}
    }}
  }}
}}
"""

ORDER_FULFILLMENTS_AND_LINES = f"""
query OrderFulfillmentsAndLines($ids: [ID!]!) {{
  nodes(ids: $ids) {{
    ... on Order {{
      id
      cancelledAt
      displayFulfillmentStatus
      lineItems(first: {FULFILLMENT_ORDER_LINES}) {{
        pageInfo {{ hasNextPage endCursor }}
        nodes {{ id quantity currentQuantity variant {{ id }} }}
      }}{_FULFILLMENT_FIELDS}
    }}
  }}
}}
"""

# Requested cost of one order in each read, by Shopify's published rules (an object
# 1, a connection 2 + first × node, a list of objects as one object). Batches are
# sized to stay under the 1000-point ceiling; if Shopify prices a read higher, the
# client halves the batch (MAX_COST_EXCEEDED is refused before anything runs).
ORDER_FULFILLMENTS_NODE_COST = 1 + (1 + 1 + 1)
ORDER_FULFILLMENTS_AND_LINES_NODE_COST = ORDER_FULFILLMENTS_NODE_COST + 2 + FULFILLMENT_ORDER_LINES * 2
FULFILLMENT_LINES_NODE_COST = 1 + 2 + FULFILLMENT_LINES_PAGE * 3
MAX_QUERY_COST = 1000
MAX_NODES = 250  # ids one nodes(ids:) call may name


def batch_size(node_cost: int) -> int:
    """How many ids one nodes(ids:) read of ``node_cost`` points per id may name."""
    return max(1, min(MAX_NODES, MAX_QUERY_COST // node_cost))


FULFILLMENT_LINES = f"""
query FulfillmentLines($ids: [ID!]!) {{
  nodes(ids: $ids) {{
    ... on Fulfillment {{
      id
      fulfillmentLineItems(first: {FULFILLMENT_LINES_PAGE}) {{
        pageInfo {{ hasNextPage endCursor }}
        nodes {{ id quantity lineItem {{ id variant {{ id }} }} }}
      }}
    }}
  }}
}}
"""

FULFILLMENT_LINE_ITEMS = """
query FulfillmentLineItems($id: ID!, $after: String) {
  node(id: $id) {
    ... on Fulfillment {
      fulfillmentLineItems(first: 250, after: $after) {
        pageInfo { hasNextPage endCursor }
        nodes { id quantity lineItem { id variant { id } } }
      }
    }
  }
}
"""
FULFILLMENT_LINE_ITEMS_COST = 1 + 2 + 250 * 3

# orderCancel runs as a job (DESIGN §6b.3); the order says when it is done (cancelledAt).
ORDER_CANCEL = """
mutation OrderCancel($orderId: ID!, $reason: OrderCancelReason!, $restock: Boolean!,
                     $refundMethod: OrderCancelRefundMethodInput, $notifyCustomer: Boolean,
                     $staffNote: String) {
  orderCancel(orderId: $orderId, reason: $reason, restock: $restock, refundMethod: $refundMethod,
              notifyCustomer: $notifyCustomer, staffNote: $staffNote) {
    job { id done }
    orderCancelUserErrors { field message code }
  }
}
"""
ORDER_CANCEL_COST = 10 + 1

JOB = """
query Job($id: ID!) {
  job(id: $id) { id done }
}
"""
JOB_COST = 1

TRANSACTIONS_PER_ORDER = 100
ORDER_TRANSACTIONS = f"""
query OrderTransactions($id: ID!) {{
  order(id: $id) {{
    id
    transactions(first: {TRANSACTIONS_PER_ORDER}) {{
      id
      kind
      status
      gateway
      parentTransaction {{ id }}
      amountSet {_MONEY}
    }}
  }}
}}
"""
ORDER_TRANSACTIONS_COST = 1 + 1 + 1 + 3

# refundCreate takes an idempotency key, and requires one since 2026-04 (DESIGN §6b.5).
REFUND_CREATE = f"""
mutation RefundCreate($input: RefundInput!, $idempotencyKey: String!) {{
  refundCreate(input: $input) @idempotent(key: $idempotencyKey) {{
    refund {{
      id
      createdAt
      totalRefundedSet {_MONEY}
    }}
    userErrors {{ field message }}
  }}
}}
"""
REFUND_CREATE_COST = 10 + 1 + 3

REFUNDS_PER_ORDER = 50
REFUND_LINES_PAGE = 100
REFUND_TRANSACTIONS_PAGE = 20
ORDER_REFUNDS = f"""
query OrderRefunds($id: ID!) {{
  order(id: $id) {{
    id
    totalRefundedSet {_MONEY}
    refunds(first: {REFUNDS_PER_ORDER}) {{
      id
      createdAt
      note
      totalRefundedSet {_MONEY}
      refundLineItems(first: {REFUND_LINES_PAGE}) {{
        nodes {{ quantity restockType lineItem {{ id }} location {{ id }} }}
      }}
      transactions(first: {REFUND_TRANSACTIONS_PAGE}) {{
        nodes {{ id kind status gateway parentTransaction {{ id }} amountSet {_MONEY} }}
      }}
    }}
  }}
}}
"""
ORDER_REFUNDS_COST = 1 + 3 + (1 + 3 + 2 + REFUND_LINES_PAGE * 3 + 2 + REFUND_TRANSACTIONS_PAGE * 5)

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
    "ORDER_FULFILLMENTS": ORDER_FULFILLMENTS,
    "ORDER_FULFILLMENTS_AND_LINES": ORDER_FULFILLMENTS_AND_LINES,
    "FULFILLMENT_LINES": FULFILLMENT_LINES,
    "FULFILLMENT_LINE_ITEMS": FULFILLMENT_LINE_ITEMS,
    "ORDER_CANCEL": ORDER_CANCEL,
    "JOB": JOB,
    "ORDER_TRANSACTIONS": ORDER_TRANSACTIONS,
    "REFUND_CREATE": REFUND_CREATE,
    "ORDER_REFUNDS": ORDER_REFUNDS,
}
