"""Bulk query execution for the Shopify simulator: a query compiled to a JSONL projection.

Shopify runs a bulk query over the whole shop and writes one JSON line per
node, children after their parent with ``__parentId`` (DESIGN §4.3). The
simulator does the same without graphql-core's executor, which is far too
slow for 250,000 variants: the query is validated against the schema, then
compiled to a plan of (response key, field, sub-plan), and each record is
projected through it.

Supported shapes (what ecomsend and most catalog exports use): a root
``products`` connection, optionally with a nested ``variants`` connection,
or a root ``productVariants`` connection; either with a ``query:`` filter.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, Protocol, TextIO

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLSchema,
    OperationDefinitionNode,
    OperationType,
    get_named_type,
)

from .shopify_cost import response_key, selected_fields

# A compiled selection: (response key, field name, sub-plan or None for a leaf).
Plan = list[tuple[str, str, "Plan | None"]]


class RecordSource(Protocol):
    """Where the records come from (the simulator)."""

    def variant_records(self, db: Any, query: str | None) -> Iterator[dict[str, Any]]: ...

    def product_records(
        self, db: Any, query: str | None, *, with_variants: bool
    ) -> Iterator[tuple[dict[str, Any], list[dict[str, Any]]]]: ...


class BulkPlan:
    """A compiled bulk query. :meth:`compile` raises ValueError for what it cannot run."""

    def __init__(self, root: str, query: str | None, node: Plan, child: Plan | None) -> None:
        self.root = root
        self.query = query
        self.node = node
        self.child = child

    @classmethod
    def compile(cls, schema: GraphQLSchema, document: DocumentNode) -> BulkPlan:
        operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        if len(operations) != 1 or operations[0].operation != OperationType.QUERY:
            raise ValueError("Invalid bulk query: it must hold exactly one query operation")
        roots = list(selected_fields(operations[0].selection_set, fragments))
        if len(roots) != 1 or roots[0][0].name.value not in ("products", "productVariants"):
            raise ValueError(
                "Invalid bulk query: the sandbox runs bulk queries rooted at products or "
                "productVariants"
            )
        root = roots[0][0]
        query = None
        for argument in root.arguments or ():
            if argument.name.value == "query":
                query = getattr(argument.value, "value", None)
        assert schema.query_type is not None
        connection = get_named_type(schema.query_type.fields[root.name.value].type)
        node_selection, node_type = _connection_node(root, connection, fragments)
        if node_selection is None:
            raise ValueError("Invalid bulk query: select edges { node { ... } } or nodes { ... }")
        node, nested = _compile(node_selection, node_type, fragments)
        child = None
        if nested:
            field, field_type = nested[0]
            if len(nested) > 1 or root.name.value != "products" or field.name.value != "variants":
                raise ValueError(
                    "Invalid bulk query: the sandbox supports one nested connection, "
                    "products → variants"
                )
            child_selection, child_type = _connection_node(field, field_type, fragments)
            if child_selection is None:
                raise ValueError("Invalid bulk query: select edges { node { ... } } in variants")
            child, deeper = _compile(child_selection, child_type, fragments)
            if deeper:
                raise ValueError("Invalid bulk query: connections nest at most two levels")
        return cls(root.name.value, query, node, child)

    def write(self, source: RecordSource, db: Any, out: TextIO) -> tuple[int, int]:
        """Write the JSONL to ``out``; return (object count, root object count)."""
        dumps = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
        objects = roots = 0
        if self.root == "productVariants":
            for variant in source.variant_records(db, self.query):
                out.write(dumps(_project(self.node, variant)) + "\n")
                objects += 1
            return objects, objects
        for product, variants in source.product_records(
            db, self.query, with_variants=self.child is not None
        ):
            out.write(dumps(_project(self.node, product)) + "\n")
            objects += 1
            roots += 1
            if self.child is None:
                continue
            for variant in variants:
                line = _project(self.child, variant)
                line["__parentId"] = product["id"]
                out.write(dumps(line) + "\n")
                objects += 1
        return objects, roots


def _connection_node(
    field: FieldNode, connection: Any, fragments: dict[str, FragmentDefinitionNode]
) -> tuple[Any, Any]:
    """The node selection of a connection field (``nodes`` or ``edges.node``) and its type."""
    for sub, _ in selected_fields(field.selection_set, fragments):
        if sub.name.value == "nodes":
            return sub.selection_set, get_named_type(connection.fields["nodes"].type)
        if sub.name.value == "edges":
            edge_type = get_named_type(connection.fields["edges"].type)
            for inner, _ in selected_fields(sub.selection_set, fragments):
                if inner.name.value == "node":
                    return inner.selection_set, get_named_type(edge_type.fields["node"].type)
    return None, None


def _compile(
    selection: Any, parent: Any, fragments: dict[str, FragmentDefinitionNode]
) -> tuple[Plan, list[tuple[FieldNode, Any]]]:
    """The plan of a node's selection, and the connections nested in it."""
    plan: Plan = []
    nested: list[tuple[FieldNode, Any]] = []
    for field, _ in selected_fields(selection, fragments):
        name = field.name.value
        key = response_key(field)
        if name == "__typename":
            plan.append((key, name, None))
            continue
        named = get_named_type(parent.fields[name].type)
        if named.name.endswith("Connection"):
            nested.append((field, named))
        elif field.selection_set is not None:
            sub, deeper = _compile(field.selection_set, named, fragments)
            if deeper:
                raise ValueError("Invalid bulk query: connections inside objects are not supported")
            plan.append((key, name, sub))
        else:
            plan.append((key, name, None))
    return plan, nested


def _project(plan: Plan, record: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    get = record.get
    for key, name, sub in plan:
        value = get(name)
        if callable(value):  # a lazily computed field, e.g. Product.totalInventory
            value = value(None)
        if sub is not None and value is not None:
            value = [_project(sub, v) for v in value] if isinstance(value, list) else _project(sub, value)
        out[key] = value
    return out
