"""Atomic UpdateItem expressions from plain values and `F` expressions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .._codec import ValueProblem, invalid_value, number_to_wire, to_wire
from ..exceptions import QueryError
from .expressions import F, UpdateOp
from .lookups import _coerce, encode_value
from .placeholders import Placeholders

if TYPE_CHECKING:
    from .._options import Options

__all__ = [
    "UpdatePlan",
    "index_refs",
    "plan_update",
    "resolve_index_refs",
    "rewrite_index_keys",
]


@dataclass
class UpdatePlan:
    """The clauses of one UpdateExpression and the plain values it assigns."""

    sets: list[str] = field(default_factory=list)
    removes: list[str] = field(default_factory=list)
    adds: list[str] = field(default_factory=list)
    deletes: list[str] = field(default_factory=list)
    plain: dict[str, Any] = field(default_factory=dict)

    def expression(self) -> str:
        """Render `SET ... REMOVE ... ADD ... DELETE ...`."""
        out = []
        for word, parts in (
            ("SET", self.sets),
            ("REMOVE", self.removes),
            ("ADD", self.adds),
            ("DELETE", self.deletes),
        ):
            if parts:
                out.append(f"{word} {', '.join(parts)}")
        return " ".join(out)


def _wire(meta: Options, name: str, value: Any) -> dict[str, Any]:
    try:
        av = to_wire(value)
    except ValueProblem as exc:
        raise invalid_value("update", meta.model_name, name, exc) from None
    if av is None:
        raise QueryError(
            f"Cannot apply an empty value in an F() update of {meta.model_name}.{name}.",
            code="bad-query",
        )
    return dict(av)


def index_refs(meta: Options, values: Mapping[str, Any]) -> set[str]:
    """The fields `values` set with an `F()` expression although an index key is built from them."""
    index_fields = {f for i in meta.indexes.values() for f in (*i.pk.fields, *i.sk.fields)}
    return {n for n, v in values.items() if isinstance(v, (F, UpdateOp)) and n in index_fields}


def _evaluate(op: UpdateOp, name: str, stored: Mapping[str, Any]) -> Any:
    """What DynamoDB would store for `op` applied to the stored values (`TypeError`: cannot)."""
    source: Any = stored.get(op.source)
    if op.kind == "ref":
        return source
    if op.kind == "add_num":
        return source + op.value
    if op.kind == "sub_num":
        return source - op.value
    if op.kind == "append":
        return [*source, *op.value]
    if op.kind == "prepend":
        return [*op.value, *source]
    if op.kind == "if_not_exists":
        return op.value if source is None else source
    current = set(stored.get(name) or ())
    return current | set(op.value) if op.kind == "add" else current - set(op.value)


def resolve_index_refs(
    meta: Options, values: Mapping[str, Any], stored: Mapping[str, Any]
) -> dict[str, Any]:
    """`values` with each `F()` on an index-key field replaced by its result on `stored`.

    DynamoDB cannot build key text (the key codec's escaping and formats) in an
    UpdateExpression, so such an update is a read-modify-write: the caller read `stored`
    and sends the result conditional on the version it read (a changed item refuses it).
    """
    out = dict(values)
    for name in index_refs(meta, values):
        value = values[name]
        op = UpdateOp("ref", value.name) if isinstance(value, F) else value
        meta.check_field(op.source, "reference")
        try:
            out[name] = _evaluate(op, name, stored)
        except TypeError:
            raise QueryError(
                f"Cannot update {meta.model_name}.{name} with this F() expression: an index "
                f"key is built from it, and the stored {op.source} cannot take it (missing, "
                "or of another type).",
                code="bad-query",
            ) from None
    return out


def plan_update(
    meta: Options,
    values: Mapping[str, Any],
    current: Mapping[str, Any],
    ph: Placeholders,
    *,
    new_version: str | None,
    now: datetime,
) -> UpdatePlan:
    """Build the UpdateExpression clauses for `values` applied to an item.

    `current` holds the item's field values (to recompute index keys); the version and
    UpdatedAt fields are bumped too (UpdatedAt to `now`: the caller reads the clock).

    `new_version` sets the version to that number; None increments it atomically.
    """
    plan = UpdatePlan()
    index_fields = {f for i in meta.indexes.values() for f in (*i.pk.fields, *i.sk.fields)}
    for name, value in values.items():
        meta.check_field(name, "update")
        if name in meta.key_fields or name == "version":
            raise QueryError(
                f"Cannot update {meta.model_name}.{name} with update(): it is part of the "
                "primary key or the version. Assign it and call save() (a key change moves "
                "the item atomically).",
                code="bad-query",
            )
        target = ph.name(meta.attr_names[name])
        if isinstance(value, F):
            value = UpdateOp("ref", value.name)
        if isinstance(value, UpdateOp):
            if meta.layout.version is None and meta.layout.token is None:
                raise QueryError(
                    f"Cannot update {meta.model_name}.{name} with an F() expression: its "
                    "layout stores neither a version nor a write token, so a retry after a "
                    "lost response would apply it twice unseen. Assign the new value, or map "
                    "a version_attribute or a write_token_attribute.",
                    code="bad-query",
                )
            if name in index_fields:
                raise QueryError(
                    f"Cannot update {meta.model_name}.{name} with an F() expression: an index "
                    "key is built from it, and dynorm must know the new value. Assign a value.",
                    code="bad-query",
                )
            meta.check_field(value.source, "reference")
            formats = meta.datetime_formats
            if formats.get(name) != formats.get(value.source):
                raise QueryError(
                    f"Cannot update {meta.model_name}.{name} from F({value.source!r}): the "
                    "two fields store datetimes in different formats, and DynamoDB would "
                    "copy the text as it is. Assign the value instead.",
                    code="bad-query",
                )
            _apply_op(meta, name, target, value, ph, plan)
            continue
        if value is not None:
            value = _coerce(meta, name, value, action=f"update {meta.model_name}.{name}")
        plan.plain[name] = value
        assert meta.codec is not None
        av = meta.codec.encode_field(name, value)
        if av is None:
            plan.removes.append(target)
        else:
            plan.sets.append(f"{target} = {ph.value(dict(av))}")
    for name, kind in meta.field_kinds.items():
        if kind == "updated_at" and name not in values:
            plan.plain[name] = now
            plan.sets.append(
                f"{ph.name(meta.attr_names[name])} = {ph.value(encode_value(meta, name, now))}"
            )
    merged = {**current, **plan.plain}
    rewrite_index_keys(meta, merged, set(plan.plain), ph, plan, require=False)
    if meta.layout.version is None:
        return plan  # no version attribute: locking is off for this model
    version = ph.name(meta.layout.version)
    if new_version is None:
        plan.sets.append(f"{version} = {version} + {ph.value({'N': '1'})}")
    else:
        plan.sets.append(f"{version} = {ph.value({'N': new_version})}")
    return plan


def rewrite_index_keys(
    meta: Options,
    values: Mapping[str, Any],
    touched: set[str] | None,
    ph: Placeholders,
    plan: UpdatePlan,
    *,
    require: bool,
) -> None:
    """Add the clauses that rewrite the index keys of an updated item to `plan`.

    Every index (`touched` None), or those built from a field in `touched`, gets its key
    attributes set from `values`, or removed where the index is sparse (a key field None).
    With `require`, an index whose fields are not all in `values` (a partial object) is a
    QueryError naming them; without it, a field missing there counts as None.
    """
    keys: dict[str, str | None] | None = None
    for index in meta.indexes.values():
        fields = {*index.pk.fields, *index.sk.fields}
        if touched is not None and not fields & touched:
            continue
        missing = sorted(f for f in fields if f not in values) if require else []
        if missing:
            raise QueryError(
                f"Cannot save a partial {meta.model_name}: index {index.name!r} is built from "
                f"{', '.join(sorted(fields))}; load {', '.join(missing)} with only() too.",
                code="bad-query",
            )
        if not index.writes:
            continue
        if keys is None:
            keys = meta.index_keys({f: values.get(f) for f in meta.field_names})
        for attr in index.writes:
            key = keys[attr]
            if key is None:
                plan.removes.append(ph.name(attr))
            else:
                plan.sets.append(f"{ph.name(attr)} = {ph.value(meta.layout.av(attr, key))}")


def _apply_op(
    meta: Options, name: str, target: str, op: UpdateOp, ph: Placeholders, plan: UpdatePlan
) -> None:
    source = ph.name(meta.attr_names[op.source])
    if op.kind == "ref":
        plan.sets.append(f"{target} = {source}")
    elif op.kind in ("add_num", "sub_num"):
        if (
            isinstance(op.value, bool)
            or not isinstance(op.value, (int, float))
            and not hasattr(op.value, "as_tuple")
        ):
            raise QueryError(
                f"Cannot add a non-number to {meta.model_name}.{name} with F().",
                code="bad-query",
            )
        try:
            number = number_to_wire(op.value)
        except ValueProblem as exc:
            raise invalid_value("update", meta.model_name, name, exc) from None
        sign = "+" if op.kind == "add_num" else "-"
        plan.sets.append(f"{target} = {source} {sign} {ph.value({'N': number})}")
    elif op.kind in ("append", "prepend"):
        token = ph.value(_wire(meta, name, op.value))
        args = f"{source}, {token}" if op.kind == "append" else f"{token}, {source}"
        plan.sets.append(f"{target} = list_append({args})")
    elif op.kind == "if_not_exists":
        token = ph.value(encode_value(
                meta, name, _coerce(meta, name, op.value, action=f"update {meta.model_name}.{name}")
            ))
        plan.sets.append(f"{target} = if_not_exists({source}, {token})")
    else:
        if op.source != name:
            raise QueryError(
                f"Cannot {op.kind} members of F({op.source!r}) into {meta.model_name}.{name}: "
                "set additions and removals apply to the same field.",
                code="bad-query",
            )
        if not op.value:
            raise QueryError(
                f"Cannot {op.kind} an empty set on {meta.model_name}.{name}.", code="bad-query"
            )
        clause = f"{target} {ph.value(_wire(meta, name, op.value))}"
        (plan.adds if op.kind == "add" else plan.deletes).append(clause)


def key_params(meta: Options, pk: str, sk: str) -> dict[str, Any]:
    """The Key parameter for a primary key."""
    return meta.layout.key_item((pk, sk))
