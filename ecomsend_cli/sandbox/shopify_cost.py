"""Shopify's query cost and leaky bucket, as the simulator enforces them (DESIGN §8, §9).

Cost of a query, computed before it runs (``requestedQueryCost``) from the
document and again after (``actualQueryCost``) from what it returned:

* scalars and enums cost 0; each object costs 1 plus its fields;
* a connection costs 2 plus, per node, 1 plus the node's fields — sized by
  ``first``/``last`` before execution and by the nodes returned after;
* the root ``nodes(ids:)`` costs, per id, 1 plus the node's fields — sized by
  the ids asked before execution and by the non-null nodes returned after (a
  batch read costs what the same reads one by one would);
* any other list of objects costs as one object (1 plus its fields);
* each mutation field costs 10 (its payload is not charged).

Shopify refuses a query whose requested cost exceeds 1000 (``MAX_COST_EXCEEDED``).

:class:`LeakyBucket` holds ``size`` points and regains ``restore_rate`` per
second; a call takes its requested cost up front (``THROTTLED`` when the
bucket holds less) and gets back the difference to its actual cost.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    get_named_type,
    is_leaf_type,
    value_from_ast_untyped,
)

MUTATION_COST = 10
_STATIC = object()  # "no result yet": size connections by their arguments


def operation_cost(
    schema: GraphQLSchema,
    operation: OperationDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    variables: dict[str, Any] | None,
    data: Any = _STATIC,
) -> int:
    """The requested cost of ``operation`` (no ``data``), or its actual cost given ``data``."""
    if operation.operation == OperationType.MUTATION:
        return MUTATION_COST * sum(1 for _ in selected_fields(operation.selection_set, fragments))
    root = schema.query_type
    assert root is not None
    walker = _Walker(schema, fragments, variables or {})
    return walker.cost(operation.selection_set, root, data)


def selected_fields(
    selection_set: SelectionSetNode | None,
    fragments: dict[str, FragmentDefinitionNode],
    condition: str | None = None,
) -> Iterator[tuple[FieldNode, str | None]]:
    """The fields of a selection set, fragments flattened, with their type condition."""
    if selection_set is None:
        return
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            yield selection, condition
        elif isinstance(selection, InlineFragmentNode):
            cond = selection.type_condition.name.value if selection.type_condition else condition
            yield from selected_fields(selection.selection_set, fragments, cond)
        elif isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is not None:
                yield from selected_fields(
                    fragment.selection_set, fragments, fragment.type_condition.name.value
                )


def response_key(field: FieldNode) -> str:
    return field.alias.value if field.alias else field.name.value


class _Walker:
    def __init__(
        self,
        schema: GraphQLSchema,
        fragments: dict[str, FragmentDefinitionNode],
        variables: dict[str, Any],
    ) -> None:
        self.schema = schema
        self.fragments = fragments
        self.variables = variables

    def _argument(self, field: FieldNode, name: str) -> Any:
        for argument in field.arguments or ():
            if argument.name.value == name:
                return value_from_ast_untyped(argument.value, self.variables)
        return None

    def cost(self, selection_set: SelectionSetNode | None, parent: Any, data: Any) -> int:
        total = 0
        for field, condition in selected_fields(selection_set, self.fragments):
            name = field.name.value
            if name.startswith("__"):
                continue
            owner = self.schema.get_type(condition) if condition else parent
            if not isinstance(owner, GraphQLObjectType) and not hasattr(owner, "fields"):
                continue
            if condition and isinstance(data, dict) and data.get("__typename") not in (
                None,
                condition,
            ):
                continue
            definition = owner.fields.get(name)
            if definition is None:
                continue
            named = get_named_type(definition.type)
            if is_leaf_type(named):
                continue
            value = data.get(response_key(field)) if isinstance(data, dict) else None
            if data is not _STATIC and value is None:
                continue  # a null object costs nothing once executed
            if name == "nodes" and parent is self.schema.query_type:
                total += self._nodes(field, named, data, value)
            elif named.name.endswith("Connection"):
                total += self._connection(field, named, data, value)
            else:
                item = _STATIC if data is _STATIC else value
                if isinstance(item, list):
                    item = item[0] if item else None
                total += 1 + self.cost(field.selection_set, named, item)
        return total

    def _nodes(self, field: FieldNode, node_type: Any, data: Any, value: Any) -> int:
        if data is _STATIC:
            ids = self._argument(field, "ids") or []
            count = len(ids) if isinstance(ids, list) else 1
            return count * (1 + self.cost(field.selection_set, node_type, _STATIC))
        return sum(1 + self.cost(field.selection_set, node_type, item)
                   for item in value or [] if item is not None)

    def _connection(self, field: FieldNode, connection: Any, data: Any, value: Any) -> int:
        nodes: list[tuple[SelectionSetNode | None, Any, Callable[[Any], list]]] = []
        for sub, _ in selected_fields(field.selection_set, self.fragments):
            key = response_key(sub)
            if sub.name.value == "nodes":
                node_type = get_named_type(connection.fields["nodes"].type)
                nodes.append((sub.selection_set, node_type, _items(key, None)))
            elif sub.name.value == "edges":
                edge_type = get_named_type(connection.fields["edges"].type)
                for inner, _ in selected_fields(sub.selection_set, self.fragments):
                    if inner.name.value == "node":
                        node_type = get_named_type(edge_type.fields["node"].type)
                        nodes.append(
                            (inner.selection_set, node_type, _items(key, response_key(inner)))
                        )
        if data is _STATIC:
            size = self._argument(field, "first") or self._argument(field, "last") or 0
            per_node = max((1 + self.cost(s, t, _STATIC) for s, t, _ in nodes), default=0)
            return 2 + int(size) * per_node
        best = 0
        for selection, node_type, items in nodes:
            best = max(best, sum(1 + self.cost(selection, node_type, n) for n in items(value)))
        return 2 + best


def _items(key: str, inner: str | None) -> Callable[[Any], list]:
    def get(connection: Any) -> list:
        if not isinstance(connection, dict):
            return []
        found = connection.get(key) or []
        if inner is None:
            return found
        return [edge.get(inner) for edge in found if isinstance(edge, dict)]

    return get


class LeakyBucket:
    """Shopify's per app+shop budget. ``size`` and ``restore_rate`` may change live."""

    def __init__(
        self, size: float, restore_rate: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self.size = float(size)
        self.restore_rate = float(restore_rate)
        self._level = float(size)
        self._stamp = clock()

    def configure(self, size: float, restore_rate: float) -> None:
        with self._lock:
            self._refill()
            if float(size) != self.size:
                # A resized bucket starts full, as a plan change does.
                self._level = float(size)
            self.size = float(size)
            self.restore_rate = float(restore_rate)

    def _refill(self) -> None:
        now = self._clock()
        self._level = min(self.size, self._level + (now - self._stamp) * self.restore_rate)
        self._stamp = now

    def take(self, cost: float) -> bool:
        """Take ``cost`` points if the bucket holds them; False means THROTTLED."""
        with self._lock:
            self._refill()
            if self._level < cost:
                return False
            self._level -= cost
            return True

    def give_back(self, points: float) -> None:
        with self._lock:
            self._refill()
            self._level = min(self.size, self._level + points)

    def status(self) -> dict[str, float | int]:
        """``throttleStatus`` as Shopify spells it."""
        with self._lock:
            self._refill()
            return {
                "maximumAvailable": _number(self.size),
                "currentlyAvailable": int(self._level),
                "restoreRate": _number(self.restore_rate),
            }


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value
