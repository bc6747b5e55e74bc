"""Schema versions without DynamoDB: the chain's checks, the stamp on writes, both decoders."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings, strategies as st
from pydantic import ValidationError

import dynorm
from dynorm import Model, SchemaVersionError
from dynorm._decode import wire_decoder
from dynorm._registry import isolated_registry
from dynorm.exceptions import ConfigurationError
from dynorm.query._compile_write import Loaded, Put, SetFields, Update, compile_write
from dynorm.tooling import item_to_json

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def define(version: int | None, name: str = "Shape") -> type[Model]:
    meta: dict[str, Any] = {"pk": "S#{id}", "sk": "S", "type_name": name}
    if version is not None:
        meta["schema_version"] = version
    namespace = {
        "__annotations__": {"id": str, "n": int, "tags": list[str]},
        "__module__": __name__,
        "n": 0,
        "tags": [],
        "Meta": type("Meta", (), meta),
    }
    model: type[Model] = type(name, (Model,), namespace)
    return model


def test_schema_version_must_be_a_whole_number_of_at_least_one() -> None:
    for bad in (0, -1, True, "2", 1.5):
        with isolated_registry(), pytest.raises(ConfigurationError, match="Shape.*schema_version"):
            define(bad)  # type: ignore[arg-type]


def test_migration_chain_is_checked_no_duplicate_none_at_or_above_current_no_gap() -> None:
    with isolated_registry():
        model = define(4)
        model.migration(from_version=2)(lambda d: d)
        with pytest.raises(ConfigurationError, match="Shape from version 2.*merge"):
            model.migration(from_version=2)(lambda d: d)
        for bad in (4, 5, 0):
            with pytest.raises(ConfigurationError, match=f"Shape from version {bad}"):
                model.migration(from_version=bad)(lambda d: d)
        # 2 -> 3 is missing its successor: found at first use, naming the missing version.
        item = {"pk": {"S": "S#a"}, "sk": {"S": "S"}, "id": {"S": "a"}, "_sv": {"N": "2"}}
        with pytest.raises(ConfigurationError, match="skip version.*3.*from_version"):
            model.from_item(item)
        model.migration(from_version=3)(lambda d: d)
        assert model.from_item(item).id == "a"
        old = {**item, "_sv": {"N": "1"}}  # below the first migration registered
        with pytest.raises(ConfigurationError, match="version 1.*from_version=1"):
            model.from_item(old)


def test_a_migration_needs_a_schema_version() -> None:
    with isolated_registry():
        model = define(None)
        with pytest.raises(ConfigurationError, match="Shape.*Meta.schema_version"):
            model.migration(from_version=1)


def test_a_model_without_a_schema_version_writes_exactly_what_it_wrote_before() -> None:
    with isolated_registry():
        plain = define(None)
        stamped = define(3, "Shape2")
        for model in (plain, stamped):
            values = {"id": "a", "n": 1, "tags": ["x"], "version": 2}
            writes = [
                (Put(values), Loaded(1, "t")),
                (SetFields(("S#a", "S"), values, ["n"]), Loaded(1, "t")),
                (Update(("S#a", "S"), {"n": 5}, values, 2), Loaded(1, "t")),
            ]
            texts = [
                json.dumps(compile_write(model._meta, w, e, token="t", now=NOW).params)
                for w, e in writes
            ]
            if model is plain:
                assert not any("_sv" in text for text in texts)
            else:
                assert all("_sv" in text for text in texts)
        # The stamped model's requests are the plain one's plus the stamp, nothing else.
        put_plain = compile_write(plain._meta, Put(values), Loaded(1, "t"), token="t")
        put_stamped = compile_write(stamped._meta, Put(values), Loaded(1, "t"), token="t")
        item = dict(put_stamped.params["Item"])
        assert item.pop("_sv") == {"N": "3"}
        item["_type"] = {"S": "Shape"}
        assert item == put_plain.params["Item"]


def _body(items: list[dict[str, Any]]) -> bytes:
    return json.dumps({"Items": [item_to_json(i) for i in items], "Count": len(items)}).encode()


def _item(n: int, stamp: int | None, tags: list[str]) -> dict[str, Any]:
    item: dict[str, Any] = {
        "pk": {"S": f"S#{n}"},
        "sk": {"S": "S"},
        "_type": {"S": "Shape"},
        "version": {"N": "1"},
        "id": {"S": str(n)},
        "n": {"N": str(n)},
        "tags": {"L": [{"S": t} for t in tags]},
    }
    if stamp is not None:
        item["_sv"] = {"N": str(stamp)}
    return item


def test_the_fast_decoder_reads_current_pages_and_refuses_any_other_version() -> None:
    with isolated_registry():
        model = define(3)
        model.migration(from_version=1)(lambda d: {**d, "n": d["n"] + 100})
        model.migration(from_version=2)(lambda d: {**d, "n": d["n"] + 10})
        decoder = wire_decoder(model)
        current = [_item(1, 3, ["a"]), _item(2, 3, [])]
        got = decoder.decode_page(_body(current))
        assert got is not None and [o.n for o in got[0]] == [1, 2]
        for stamp in (None, 1, 2, 4):  # older, unstamped (version 1) and newer: refused
            assert decoder.decode_page(_body([*current, _item(3, stamp, [])])) is None



def test_a_model_without_a_schema_version_refuses_items_stamped_by_newer_code() -> None:
    with isolated_registry():
        plain = define(None)  # the release before the one that adds schema_version = 2
        decoder = wire_decoder(plain)
        for stamp in (None, 1):
            page = decoder.decode_page(_body([_item(1, stamp, ["a"])]))
            assert page is not None and page[0] == [plain.from_item(_item(1, stamp, ["a"]))]
        assert decoder.decode_page(_body([_item(1, 2, [])])) is None
        with pytest.raises(SchemaVersionError, match="Shape.*version 2.*declares no"):
            plain.from_item(_item(1, 2, []))


@settings(max_examples=40, deadline=None)
@given(
    st.integers(min_value=1, max_value=6).flatmap(
        lambda top: st.tuples(
            st.just(top),
            st.lists(
                st.tuples(
                    st.integers(min_value=1, max_value=top),
                    st.integers(-(10**6), 10**6),
                    st.lists(st.text(min_size=1, max_size=4), max_size=3),
                ),
                min_size=1,
                max_size=6,
            ),
        )
    )
)
def test_both_decoders_agree_and_every_chain_runs_in_order(
    case: tuple[int, list[tuple[int, int, list[str]]]],
) -> None:
    top, rows = case
    with isolated_registry():
        model = define(top)
        for k in range(1, top):
            # Not commutative: running the steps out of order (or twice) gives another result.
            model.migration(from_version=k)(
                lambda d, k=k: {**d, "n": d["n"] * 3 + k, "tags": [*d["tags"], f"v{k}"]}
            )
        items = [_item(i, stamp, tags) for i, (stamp, _, tags) in enumerate(rows)]
        for item, (_, n, _) in zip(items, rows):
            item["n"] = {"N": str(n)}
        for item in items:
            if item["_sv"] == {"N": "1"} and int(item["id"]["S"]) % 2:
                del item["_sv"]  # unstamped is version 1
        general = [model.from_item(i) for i in items]
        for obj, (stamp, n, tags) in zip(general, rows):
            want_n, want_tags = n, list(tags)
            for k in range(stamp, top):
                want_n, want_tags = want_n * 3 + k, [*want_tags, f"v{k}"]
            assert (obj.n, obj.tags) == (want_n, want_tags)
        fast = wire_decoder(model).decode_page(_body(items))
        if fast is not None:  # only a page of current items; then it must agree
            assert all(stamp == top for stamp, _, _ in rows)
            assert fast[0] == general
        else:
            assert any(stamp != top for stamp, _, _ in rows)
            current = [i for i, (s, _, _) in zip(items, rows) if s == top]
            page = wire_decoder(model).decode_page(_body(current))
            assert page is not None and page[0] == [model.from_item(i) for i in current]


def test_an_item_newer_than_the_code_is_a_typed_error_naming_model_and_versions() -> None:
    with isolated_registry():
        model = define(2)
        secret = "s3cr3t-value"
        item = _item(1, 5, [secret])
        with pytest.raises(SchemaVersionError) as info:
            model.from_item(item)
        message = str(info.value)
        assert "Shape" in message and "5" in message and "2" in message
        assert secret not in message
        assert (info.value.stored_version, info.value.current_version) == (5, 2)
        bad = {**item, "_sv": {"N": "2.5"}}
        with pytest.raises(SchemaVersionError, match="unreadable"):
            model.from_item(bad)
        assert dynorm.SchemaVersionError is SchemaVersionError


def test_a_migration_sees_plain_values_and_never_dynorm_attributes() -> None:
    seen: list[dict[str, Any]] = []
    with isolated_registry():
        model = define(2)

        @model.migration(from_version=1)
        def look(data: dict[str, Any]) -> dict[str, Any]:
            seen.append(dict(data))
            data["pk"] = "HACK"  # dynorm's own attributes are not the migration's
            data["version"] = 99
            return data

        item = {**_item(1, None, ["a"]), "_wtok": {"S": "tok"}, "gsi1pk": {"S": "X"}}
        item["n"] = {"N": "1.5"}
        with pytest.raises(ValidationError):  # n is an int: the model refuses 1.5
            model.from_item(item)
        assert seen[0] == {"id": "1", "n": Decimal("1.5"), "tags": ["a"], "gsi1pk": "X"}
        item["n"] = {"N": "4"}
        obj = model.from_item(item)
        assert (obj.version, obj._loaded_key, obj.n) == (1, ("S#1", "S"), 4)


@pytest.mark.parametrize("stamp", [{"S": "2"}, {"S": "1"}, {"N": "1.5"}, {"N": "2.0"}, {"L": []}])
def test_a_malformed_stamp_is_refused_by_both_decoders_alike(stamp: dict[str, Any]) -> None:
    with isolated_registry():
        for model in (define(None), define(2, "Shape2")):
            item = {**_item(1, None, []), "_type": {"S": model._meta.type_name}, "_sv": stamp}
            assert wire_decoder(model).decode_page(_body([item])) is None
            with pytest.raises(SchemaVersionError, match="unreadable"):
                model.from_item(item)


def test_a_failing_migration_is_a_configuration_error_naming_it_never_quoting_the_value() -> None:
    with isolated_registry():
        model = define(2)

        @model.migration(from_version=1)
        def picky(data: dict[str, Any]) -> dict[str, Any]:
            raise ValueError(f"bad tags {data['tags']}")

        with pytest.raises(ConfigurationError, match="Shape.*version 1.*picky.*ValueError") as info:
            model.from_item(_item(1, None, ["s3cr3t"]))
        assert "s3cr3t" not in str(info.value) and isinstance(info.value.__cause__, ValueError)
        with isolated_registry():
            wrong = define(2)
            wrong.migration(from_version=1)(lambda d: [d])  # type: ignore[arg-type, return-value]
            with pytest.raises(ConfigurationError, match="returned list"):
                wrong.from_item(_item(1, None, []))


def test_a_concrete_subclass_inherits_its_parents_migrations_an_abstract_model_has_none() -> None:
    with isolated_registry():
        parent = define(3)
        child = type("Child", (parent,), {"__module__": __name__, "Meta": type("Meta", (), {
            "type_name": "Child"})})  # fmt: skip
        parent.migration(from_version=1)(lambda d: {**d, "n": d["n"] + 1})
        child.migration(from_version=2)(lambda d: {**d, "n": d["n"] * 10})  # its own
        parent.migration(from_version=2)(lambda d: {**d, "n": d["n"] * 2})
        item = {**_item(1, None, []), "_type": {"S": "Child"}}
        assert child.from_item(item).n == 20 and parent.from_item(_item(1, None, [])).n == 4
        meta = type("Meta", (), {"abstract": True})
        base = type("Base", (Model,), {"__module__": __name__, "__annotations__": {"x": int},
                                       "x": 0, "Meta": meta})  # fmt: skip
        with pytest.raises(ConfigurationError, match="abstract model Base.*each concrete"):
            base.migration(from_version=1)


def test_migrate_refuses_a_model_mapped_onto_a_table_with_names_of_its_own() -> None:
    # migrate scans on `_type` and rewrites by pk/sk: on another layout it would find nothing
    # (or the wrong items), so it says so before anything is sent.
    foreign = dynorm.Table("migrate-foreign", managed=False, pk_attribute="PK", sk_attribute="SK")
    with isolated_registry():

        class Mapped(Model):
            id: str

            class Meta:
                table = foreign
                pk = "M#{id}"
                sk = "M"
                schema_version = 2

        @Mapped.migration(from_version=1)
        def up(data: dict[str, Any]) -> dict[str, Any]:
            return data

        with dynorm.capture() as requests, pytest.raises(ConfigurationError) as info:
            dynorm.tooling.migrate([Mapped])
        assert requests == []
        assert str(info.value).startswith("Cannot migrate Mapped: dynorm migrate scans")
        assert "save()" in str(info.value)
