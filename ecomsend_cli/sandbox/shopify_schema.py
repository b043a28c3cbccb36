"""The GraphQL schema the Shopify simulator serves, and a fast SDL loader.

:data:`SDL` is a subset of Shopify's Admin API 2026-07 schema: only the types,
fields and arguments the simulator implements, each spelled and typed exactly
as in the real schema (``tests/test_shopify_sim.py`` checks this against the
published schema, so the simulator cannot accept what Shopify would refuse).
Descriptions are left out; read them in Shopify's reference.

:func:`build_sdl_schema` builds a schema from SDL text, skipping
descriptions first: Shopify's full schema is 3.8 MB, most of it prose, and
parsing without it is three times faster.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from graphql import GraphQLSchema, build_ast_schema, parse

_BLOCK_STRING = re.compile(r'"""[\s\S]*?"""')
_LINE_STRING_DESCRIPTION = re.compile(r'^\s*"(?:[^"\\]|\\.)*"\s*$', re.MULTILINE)


def build_sdl_schema(sdl: str, *, third_party: bool = False) -> GraphQLSchema:
    """A schema from SDL text, descriptions dropped (they do not change validation).

    ``third_party``: the SDL is someone else's published schema (Shopify's), to
    validate *our* documents against, not ours to judge. Its own validity is
    then assumed: Shopify's 2026-07 schema deprecates implementations of
    interface fields that are not deprecated, which graphql-core 3.3 refuses
    to build and 3.2 accepted. Documents are still validated strictly against
    it. Our own simulator SDL is checked in full.
    """
    text = _BLOCK_STRING.sub("", sdl)
    text = _LINE_STRING_DESCRIPTION.sub("", text)
    return build_ast_schema(parse(text, no_location=True), assume_valid_sdl=third_party,
                            assume_valid=third_party)


@lru_cache(maxsize=4)
def load_schema_file(path: str | Path) -> GraphQLSchema:
    """A published (third-party) schema file, built once per path for the life of the process."""
    return build_sdl_schema(Path(path).read_text(encoding="utf-8"), third_party=True)


@lru_cache(maxsize=1)
def simulator_schema() -> GraphQLSchema:
    """The simulator's schema, built once per process."""
    return build_sdl_schema(SDL)


SDL = """\
schema {
  query: QueryRoot
  mutation: Mutation
}

scalar DateTime

scalar URL

scalar UnsignedInt64

scalar Money

scalar Decimal

scalar JSON

directive @idempotent(key: String!) on FIELD

enum CurrencyCode {
  USD EUR GBP CAD AFN ALL DZD AOA ARS AMD AWG AUD BBD AZN BDT BSD BHD BIF BYN BZD BMD BTN BAM
  BRL BOB BWP BND BGN MMK KHR CVE KYD XAF CLP CNY COP KMF CDF CRC HRK CZK DKK DJF DOP XCD EGP
  ERN ETB FKP XPF FJD GIP GMD GHS GTQ GYD GEL GNF HTG HNL HKD HUF ISK INR IDR ILS IRR IQD JMD
  JPY JEP JOD KZT KES KID KWD KGS LAK LVL LBP LSL LRD LYD LTL MGA MKD MOP MWK MVR MRU MXN MYR
  MUR MDL MAD MNT MZN NAD NPR ANG NZD NIO NGN NOK OMR PAB PKR PGK PYG PEN PHP PLN QAR RON RUB
  RWF WST SHP SAR RSD SCR SLL SGD SDG SOS SYP ZAR KRW SSP SBD LKR SRD SZL SEK CHF TWD THB TJS
  TZS TOP TTD TND TRY TMT UGX UAH AED UYU UZS VUV VES VND XOF YER ZMW USDC BYR STD STN VED VEF
  XXX
}

enum CountryCode {
  AF AX AL DZ AD AO AI AG AR AM AW AC AU AT AZ BS BH BD BB BY BE BZ BJ BM BT BO BA BW BV BR IO
  BN BG BF BI KH CA CV BQ KY CF TD CL CN CX CC CO KM CG CD CK CR HR CU CW CY CZ CI DK DJ DM DO
  EC EG SV GQ ER EE SZ ET FK FO FJ FI FR GF PF TF GA GM GE DE GH GI GR GL GD GP GT GG GN GW GY
  HT HM VA HN HK HU IS IN ID IR IQ IE IM IL IT JM JP JE JO KZ KE KI KP XK KW KG LA LV LB LS LR
  LY LI LT LU MO MG MW MY MV ML MT MQ MR MU YT MX MD MC MN ME MS MA MZ MM NA NR NP NL AN NC NZ
  NI NE NG NU NF MK NO OM PK PS PA PG PY PE PH PN PL PT QA CM RE RO RU RW BL SH KN LC MF PM WS
  SM ST SA SN RS SC SL SG SX SK SI SB SO ZA GS KR SS ES LK VC SD SR SJ SE CH SY TW TJ TZ TH TL
  TG TK TO TT TA TN TR TM TC TV UG UA AE GB US UM UY UZ VU VE VN VG WF EH YE ZM ZW ZZ
}

enum ProductStatus {
  ACTIVE ARCHIVED DRAFT UNLISTED
}

enum ProductVariantInventoryPolicy {
  DENY CONTINUE
}

enum ProductVariantSortKeys {
  FULL_TITLE ID INVENTORY_LEVELS_AVAILABLE INVENTORY_MANAGEMENT INVENTORY_POLICY
  INVENTORY_QUANTITY NAME POPULAR POSITION RELEVANCE SKU TITLE
}

enum ProductSortKeys {
  CREATED_AT ID INVENTORY_TOTAL PRODUCT_TYPE PUBLISHED_AT RELEVANCE TITLE UPDATED_AT VENDOR
}

enum OrderSortKeys {
  CREATED_AT CURRENT_TOTAL_PRICE CUSTOMER_NAME DESTINATION FINANCIAL_STATUS FULFILLMENT_STATUS
  ID ORDER_NUMBER PO_NUMBER PROCESSED_AT RELEVANCE TOTAL_ITEMS_QUANTITY TOTAL_PRICE UPDATED_AT
}

enum OrderDisplayFinancialStatus {
  PENDING AUTHORIZED PARTIALLY_PAID PARTIALLY_REFUNDED VOIDED PAID REFUNDED EXPIRED
}

enum BulkOperationStatus {
  CANCELED CANCELING COMPLETED CREATED EXPIRED FAILED RUNNING
}

enum BulkOperationErrorCode {
  ACCESS_DENIED INTERNAL_SERVER_ERROR TIMEOUT
}

enum BulkOperationType {
  QUERY MUTATION
}

enum BulkOperationUserErrorCode {
  OPERATION_IN_PROGRESS INVALID LIMIT_REACHED
}

enum OrderCreateInputsInventoryBehavior {
  BYPASS DECREMENT_IGNORING_POLICY DECREMENT_OBEYING_POLICY
}

enum OrderCreateUserErrorCode {
  INVALID FULFILLMENT_SERVICE_INVALID INVENTORY_CLAIM_FAILED PROCESSED_AT_INVALID
  TAX_LINE_RATE_MISSING REDUNDANT_CUSTOMER_FIELDS SHOP_DORMANT
}

enum OrderCreateFinancialStatus {
  PENDING AUTHORIZED PARTIALLY_PAID PAID PARTIALLY_REFUNDED REFUNDED VOIDED EXPIRED
}

enum OrderCreateFulfillmentStatus {
  FULFILLED PARTIAL RESTOCKED
}

enum OrderCancelReason {
  CUSTOMER DECLINED FRAUD INVENTORY STAFF OTHER
}

enum OrderDisplayFulfillmentStatus {
  UNFULFILLED PARTIALLY_FULFILLED FULFILLED RESTOCKED
}

enum FulfillmentStatus {
  PENDING OPEN SUCCESS CANCELLED ERROR FAILURE
}

enum OrderCancelUserErrorCode {
  NO_REFUND_PERMISSION NOT_FOUND INVALID INTERNAL_ERROR
}

enum RefundLineItemRestockType {
  RETURN CANCEL LEGACY_RESTOCK NO_RESTOCK
}

enum OrderTransactionKind {
  SALE CAPTURE AUTHORIZATION VOID REFUND CHANGE EMV_AUTHORIZATION SUGGESTED_REFUND
}

enum OrderTransactionStatus {
  SUCCESS FAILURE PENDING ERROR AWAITING_RESPONSE UNKNOWN
}

enum WeightUnit {
  KILOGRAMS GRAMS POUNDS OUNCES
}

type QueryRoot {
  node(id: ID!): Node
  nodes(ids: [ID!]!): [Node]!
  location(id: ID): Location
  locations(
    first: Int
    after: String
    last: Int
    before: String
    reverse: Boolean = false
  ): LocationConnection!
  product(id: ID!): Product
  productVariant(id: ID!): ProductVariant
  productVariants(
    first: Int
    after: String
    last: Int
    before: String
    reverse: Boolean = false
    sortKey: ProductVariantSortKeys = ID
    query: String
  ): ProductVariantConnection!
  products(
    first: Int
    after: String
    last: Int
    before: String
    reverse: Boolean = false
    sortKey: ProductSortKeys = ID
    query: String
  ): ProductConnection!
  order(id: ID!): Order
  orders(
    first: Int
    after: String
    last: Int
    before: String
    reverse: Boolean = false
    sortKey: OrderSortKeys = PROCESSED_AT
    query: String
  ): OrderConnection!
  shop: Shop!
  currentAppInstallation: AppInstallation!
  currentBulkOperation(type: BulkOperationType = QUERY): BulkOperation
  bulkOperation(id: ID!): BulkOperation
  job(id: ID!): Job
}

type Mutation {
  orderCreate(
    order: OrderCreateOrderInput!
    options: OrderCreateOptionsInput
  ): OrderCreatePayload
  bulkOperationRunQuery(
    query: String!
    groupObjects: Boolean! = false
  ): BulkOperationRunQueryPayload
  orderCancel(
    orderId: ID!
    refundMethod: OrderCancelRefundMethodInput
    restock: Boolean!
    reason: OrderCancelReason!
    notifyCustomer: Boolean = false
    staffNote: String = null
  ): OrderCancelPayload
  refundCreate(input: RefundInput!): RefundCreatePayload
}

interface Node {
  id: ID!
}

interface DisplayableError {
  field: [String!]
  message: String!
}

type PageInfo {
  endCursor: String
  hasNextPage: Boolean!
  hasPreviousPage: Boolean!
  startCursor: String
}

type Product implements Node {
  id: ID!
  legacyResourceId: UnsignedInt64!
  title: String!
  handle: String!
  status: ProductStatus!
  vendor: String!
  productType: String!
  tags: [String!]!
  totalInventory: Int!
  createdAt: DateTime!
  updatedAt: DateTime!
  variants(
    first: Int
    after: String
    last: Int
    before: String
    reverse: Boolean = false
    sortKey: ProductVariantSortKeys = POSITION
  ): ProductVariantConnection!
}

type ProductConnection {
  edges: [ProductEdge!]!
  nodes: [Product!]!
  pageInfo: PageInfo!
}

type ProductEdge {
  cursor: String!
  node: Product!
}

type ProductVariant implements Node {
  id: ID!
  legacyResourceId: UnsignedInt64!
  title: String!
  displayName: String!
  sku: String
  barcode: String
  price: Money!
  position: Int!
  taxable: Boolean!
  inventoryQuantity: Int
  inventoryPolicy: ProductVariantInventoryPolicy!
  inventoryItem: InventoryItem!
  product: Product!
  createdAt: DateTime!
  updatedAt: DateTime!
}

type ProductVariantConnection {
  edges: [ProductVariantEdge!]!
  nodes: [ProductVariant!]!
  pageInfo: PageInfo!
}

type ProductVariantEdge {
  cursor: String!
  node: ProductVariant!
}

type InventoryItem implements Node {
  id: ID!
  legacyResourceId: UnsignedInt64!
  sku: String
  tracked: Boolean!
  createdAt: DateTime!
  updatedAt: DateTime!
}

type Order implements Node {
  id: ID!
  legacyResourceId: UnsignedInt64!
  name: String!
  email: String
  phone: String
  note: String
  tags: [String!]!
  test: Boolean!
  sourceIdentifier: String
  sourceName: String
  currencyCode: CurrencyCode!
  presentmentCurrencyCode: CurrencyCode!
  taxesIncluded: Boolean!
  displayFinancialStatus: OrderDisplayFinancialStatus
  displayFulfillmentStatus: OrderDisplayFulfillmentStatus!
  fullyPaid: Boolean!
  requiresShipping: Boolean!
  cancelledAt: DateTime
  cancelReason: OrderCancelReason
  createdAt: DateTime!
  processedAt: DateTime!
  updatedAt: DateTime!
  discountCode: String
  discountCodes: [String!]!
  customAttributes: [Attribute!]!
  shippingAddress: MailingAddress
  billingAddress: MailingAddress
  subtotalLineItemsQuantity: Int!
  currentSubtotalLineItemsQuantity: Int!
  subtotalPriceSet: MoneyBag
  currentSubtotalPriceSet: MoneyBag!
  totalPriceSet: MoneyBag!
  currentTotalPriceSet: MoneyBag!
  originalTotalPriceSet: MoneyBag!
  totalTaxSet: MoneyBag
  currentTotalTaxSet: MoneyBag!
  totalDiscountsSet: MoneyBag
  currentTotalDiscountsSet: MoneyBag!
  totalShippingPriceSet: MoneyBag!
  totalReceivedSet: MoneyBag!
  totalOutstandingSet: MoneyBag!
  taxLines: [TaxLine!]!
  lineItems(
    first: Int
    after: String
    last: Int
    before: String
    reverse: Boolean = false
  ): LineItemConnection!
  shippingLines(
    includeRemovals: Boolean = false
    first: Int
    after: String
    last: Int
    before: String
    reverse: Boolean = false
  ): ShippingLineConnection!
  transactions(first: Int): [OrderTransaction!]!
  fulfillments(first: Int): [Fulfillment!]!
  totalRefundedSet: MoneyBag!
  netPaymentSet: MoneyBag!
  refunds(first: Int): [Refund!]!
}

type Attribute {
  key: String!
  value: String
}

type MailingAddress implements Node {
  id: ID!
  firstName: String
  lastName: String
  name: String
  company: String
  address1: String
  address2: String
  city: String
  provinceCode: String
  zip: String
  countryCodeV2: CountryCode
  phone: String
}

type TaxLine {
  title: String!
  rate: Float
  ratePercentage: Float
  priceSet: MoneyBag!
  channelLiable: Boolean
}

type DiscountAllocation {
  allocatedAmountSet: MoneyBag!
}

type ShippingLine {
  id: ID
  title: String!
  code: String
  source: String
  custom: Boolean!
  isRemoved: Boolean!
  originalPriceSet: MoneyBag!
  discountedPriceSet: MoneyBag!
  taxLines: [TaxLine!]!
  discountAllocations: [DiscountAllocation!]!
}

type ShippingLineConnection {
  edges: [ShippingLineEdge!]!
  nodes: [ShippingLine!]!
  pageInfo: PageInfo!
}

type ShippingLineEdge {
  cursor: String!
  node: ShippingLine!
}

type OrderTransaction implements Node {
  id: ID!
  kind: OrderTransactionKind!
  status: OrderTransactionStatus!
  gateway: String
  test: Boolean!
  createdAt: DateTime!
  processedAt: DateTime
  amountSet: MoneyBag!
  parentTransaction: OrderTransaction
}

type OrderTransactionConnection {
  edges: [OrderTransactionEdge!]!
  nodes: [OrderTransaction!]!
  pageInfo: PageInfo!
}

type OrderTransactionEdge {
  cursor: String!
  node: OrderTransaction!
}

type Fulfillment implements Node {
  id: ID!
  name: String!
  status: FulfillmentStatus!
  createdAt: DateTime!
  updatedAt: DateTime!
  totalQuantity: Int!
  location: Location
  trackingInfo(first: Int): [FulfillmentTrackingInfo!]!
  fulfillmentLineItems(
    first: Int
    after: String
    last: Int
    before: String
    reverse: Boolean = false
  ): FulfillmentLineItemConnection!
}

type FulfillmentTrackingInfo {
  company: String
  number: String
  url: URL
}

type FulfillmentLineItem implements Node {
  id: ID!
  quantity: Int
  lineItem: LineItem!
}

type FulfillmentLineItemConnection {
  edges: [FulfillmentLineItemEdge!]!
  nodes: [FulfillmentLineItem!]!
  pageInfo: PageInfo!
}

type FulfillmentLineItemEdge {
  cursor: String!
  node: FulfillmentLineItem!
}

type Job {
  done: Boolean!
  id: ID!
}

type OrderCancelPayload {
  job: Job
  orderCancelUserErrors: [OrderCancelUserError!]!
}

type OrderCancelUserError implements DisplayableError {
  code: OrderCancelUserErrorCode
  field: [String!]
  message: String!
}

input OrderCancelRefundMethodInput {
  originalPaymentMethodsRefund: Boolean
}

type UserError implements DisplayableError {
  field: [String!]
  message: String!
}

type Refund implements Node {
  createdAt: DateTime
  id: ID!
  note: String
  order: Order!
  processedAt: DateTime!
  updatedAt: DateTime!
  totalRefundedSet: MoneyBag!
  refundLineItems(
    first: Int
    after: String
    last: Int
    before: String
    reverse: Boolean = false
  ): RefundLineItemConnection!
  transactions(
    first: Int
    after: String
    last: Int
    before: String
    reverse: Boolean = false
  ): OrderTransactionConnection!
}

type RefundLineItem {
  id: ID
  lineItem: LineItem!
  location: Location
  quantity: Int!
  restockType: RefundLineItemRestockType!
  restocked: Boolean!
  priceSet: MoneyBag!
}

type RefundLineItemConnection {
  edges: [RefundLineItemEdge!]!
  nodes: [RefundLineItem!]!
  pageInfo: PageInfo!
}

type RefundLineItemEdge {
  cursor: String!
  node: RefundLineItem!
}

type RefundCreatePayload {
  order: Order
  refund: Refund
  userErrors: [UserError!]!
}

input RefundInput {
  currency: CurrencyCode
  orderId: ID!
  note: String
  notify: Boolean
  shipping: ShippingRefundInput
  refundLineItems: [RefundLineItemInput!]
  transactions: [OrderTransactionInput!]
  allowOverRefunding: Boolean = false
}

input ShippingRefundInput {
  amount: Money
  fullRefund: Boolean
}

input RefundLineItemInput {
  lineItemId: ID!
  quantity: Int!
  restockType: RefundLineItemRestockType
  locationId: ID
}

input OrderTransactionInput {
  amount: Money!
  gateway: String!
  kind: OrderTransactionKind!
  orderId: ID!
  parentId: ID
}

type Location implements Node {
  id: ID!
  legacyResourceId: UnsignedInt64!
  name: String!
  isActive: Boolean!
  fulfillsOnlineOrders: Boolean!
  shipsInventory: Boolean!
  isFulfillmentService: Boolean!
}

type LocationConnection {
  edges: [LocationEdge!]!
  nodes: [Location!]!
  pageInfo: PageInfo!
}

type LocationEdge {
  cursor: String!
  node: Location!
}

type OrderConnection {
  edges: [OrderEdge!]!
  nodes: [Order!]!
  pageInfo: PageInfo!
}

type OrderEdge {
  cursor: String!
  node: Order!
}

type LineItem implements Node {
  id: ID!
  name: String!
  title: String!
  quantity: Int!
  currentQuantity: Int!
  sku: String
  variantTitle: String
  vendor: String
  taxable: Boolean!
  variant: ProductVariant
  product: Product
  requiresShipping: Boolean!
  unfulfilledQuantity: Int!
  originalUnitPriceSet: MoneyBag!
  originalTotalSet: MoneyBag!
  discountedTotalSet(withCodeDiscounts: Boolean = false): MoneyBag!
  totalDiscountSet: MoneyBag!
  discountAllocations: [DiscountAllocation!]!
  taxLines(first: Int): [TaxLine!]!
}

type LineItemConnection {
  edges: [LineItemEdge!]!
  nodes: [LineItem!]!
  pageInfo: PageInfo!
}

type LineItemEdge {
  cursor: String!
  node: LineItem!
}

type MoneyBag {
  presentmentMoney: MoneyV2!
  shopMoney: MoneyV2!
}

type MoneyV2 {
  amount: Decimal!
  currencyCode: CurrencyCode!
}

type Shop implements Node {
  id: ID!
  name: String!
  email: String!
  contactEmail: String!
  myshopifyDomain: String!
  currencyCode: CurrencyCode!
  ianaTimezone: String!
  plan: ShopPlan!
  createdAt: DateTime!
  updatedAt: DateTime!
}

type ShopPlan {
  displayName: String! @deprecated(reason: "Use `publicDisplayName` instead.")
  partnerDevelopment: Boolean!
  publicDisplayName: String!
  shopifyPlus: Boolean!
}

type AppInstallation implements Node {
  id: ID!
  accessScopes: [AccessScope!]!
}

type AccessScope {
  description: String!
  handle: String!
}

type BulkOperation implements Node {
  completedAt: DateTime
  createdAt: DateTime!
  errorCode: BulkOperationErrorCode
  fileSize: UnsignedInt64
  id: ID!
  objectCount: UnsignedInt64!
  partialDataUrl: URL
  query: String!
  rootObjectCount: UnsignedInt64!
  status: BulkOperationStatus!
  type: BulkOperationType!
  url: URL
}

type BulkOperationRunQueryPayload {
  bulkOperation: BulkOperation
  userErrors: [BulkOperationUserError!]!
}

type BulkOperationUserError implements DisplayableError {
  code: BulkOperationUserErrorCode
  field: [String!]
  message: String!
}

type OrderCreatePayload {
  order: Order
  userErrors: [OrderCreateUserError!]!
}

type OrderCreateUserError implements DisplayableError {
  code: OrderCreateUserErrorCode
  field: [String!]
  message: String!
}

input OrderCreateOptionsInput {
  inventoryBehaviour: OrderCreateInputsInventoryBehavior = BYPASS
  sendReceipt: Boolean = false
  sendFulfillmentReceipt: Boolean = false
}

input OrderCreateOrderInput {
  billingAddress: MailingAddressInput
  buyerAcceptsMarketing: Boolean = null
  closedAt: DateTime
  currency: CurrencyCode
  customAttributes: [OrderCreateCustomAttributeInput!]
  discountCode: OrderCreateDiscountCodeInput
  email: String
  financialStatus: OrderCreateFinancialStatus
  fulfillment: OrderCreateFulfillmentInput
  fulfillmentStatus: OrderCreateFulfillmentStatus
  lineItems: [OrderCreateLineItemInput!]
  name: String
  note: String
  phone: String
  poNumber: String
  presentmentCurrency: CurrencyCode
  processedAt: DateTime
  referringSite: URL
  shippingAddress: MailingAddressInput
  shippingLines: [OrderCreateShippingLineInput!]
  sourceIdentifier: String
  sourceName: String
  sourceUrl: URL
  tags: [String!]
  taxesIncluded: Boolean = false
  taxLines: [OrderCreateTaxLineInput!]
  test: Boolean = false
  transactions: [OrderCreateOrderTransactionInput!]
}

input OrderCreateLineItemInput {
  fulfillmentService: String
  giftCard: Boolean = false
  priceSet: MoneyBagInput
  productId: ID
  properties: [OrderCreateLineItemPropertyInput!]
  quantity: Int!
  requiresShipping: Boolean = false
  sku: String
  taxLines: [OrderCreateTaxLineInput!]
  taxable: Boolean = true
  title: String
  variantId: ID
  variantTitle: String
  vendor: String
  weight: WeightInput
}

input OrderCreateDiscountCodeInput {
  itemPercentageDiscountCode: OrderCreatePercentageDiscountCodeAttributesInput
  itemFixedDiscountCode: OrderCreateFixedDiscountCodeAttributesInput
  freeShippingDiscountCode: OrderCreateFreeShippingDiscountCodeAttributesInput
}

input OrderCreateFixedDiscountCodeAttributesInput {
  code: String!
  amountSet: MoneyBagInput
}

input OrderCreatePercentageDiscountCodeAttributesInput {
  code: String!
  percentage: Float
}

input OrderCreateFreeShippingDiscountCodeAttributesInput {
  code: String!
}

input OrderCreateFulfillmentInput {
  locationId: ID!
  notifyCustomer: Boolean = false
  trackingNumber: String
  trackingCompany: String
}

input OrderCreateLineItemPropertyInput {
  name: String!
  value: String!
}

input WeightInput {
  value: Float!
  unit: WeightUnit!
}

input MailingAddressInput {
  address1: String
  address2: String
  city: String
  company: String
  countryCode: CountryCode
  firstName: String
  lastName: String
  phone: String
  provinceCode: String
  zip: String
}

input OrderCreateShippingLineInput {
  code: String
  priceSet: MoneyBagInput!
  source: String
  taxLines: [OrderCreateTaxLineInput!]
  title: String!
}

input OrderCreateOrderTransactionInput {
  amountSet: MoneyBagInput!
  authorizationCode: String
  gateway: String
  kind: OrderTransactionKind = SALE
  processedAt: DateTime
  receiptJson: JSON
  status: OrderTransactionStatus = SUCCESS
  test: Boolean = false
}

input MoneyBagInput {
  shopMoney: MoneyInput!
  presentmentMoney: MoneyInput
}

input MoneyInput {
  amount: Decimal!
  currencyCode: CurrencyCode!
}

input OrderCreateCustomAttributeInput {
  key: String!
  value: String!
}

input OrderCreateTaxLineInput {
  channelLiable: Boolean = false
  priceSet: MoneyBagInput
  rate: Decimal!
  title: String!
}
"""
