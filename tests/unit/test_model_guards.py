"""Model definitions dynorm refuses at class creation, and abstract models that refuse all use.

The reserved names are derived from the classes (`reserved_names`), so a method or attribute
added to Model, VersionedModel or SingletonModel is covered here without editing this file.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

import pytest
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, create_model

import dynorm
from dynorm import (
    AbstractModelError,
    ConfigurationError,
    Index,
    Manager,
    Model,
    QueryError,
    QuerySet,
    SingletonModel,
    VersionedModel,
    fields,
)
from dynorm._constants import ATTRIBUTE_NAME_LIMIT, KEY_ATTRIBUTE_NAME_LIMIT
from dynorm._registry import get_model, isolated_registry
from dynorm.models import reserved_names


@pytest.fixture(autouse=True)
def registry():
    with isolated_registry():
        yield


def define(base: type[Model], name: str, annotations: dict[str, Any], **body: Any) -> type[Any]:
    """Define a model as a class statement would, with `ident` as its key."""
    namespace = {
        "__annotations__": {"ident": str, **annotations},
        "__module__": __name__,
        "__qualname__": name,
        "Meta": type("Meta", (), {"pk": "R#{ident}"}),
        **body,
    }
    return type(Model)(name, (base,), namespace)


def refused(info: pytest.ExceptionInfo[ConfigurationError], model: str, name: str) -> str:
    message = str(info.value)
    assert info.value.code == "model-definition"
    assert model in message and repr(name) in message
    assert "rename" in message or "remove" in message  # the fix
    assert get_model(model) is None
    return message


BASES = [Model, VersionedModel, SingletonModel]


def _reserved_cases() -> list[Any]:
    return [
        pytest.param(base, name, id=f"{base.__name__}.{name}")
        for base in BASES
        for name in sorted(reserved_names((base,)))
    ]


def test_the_reserved_set_is_derived_from_the_classes() -> None:
    # A sample of what it must hold; the parametrized test below covers all of it.
    plain = reserved_names((Model,))
    for name in (
        "objects",
        "save",
        "delete",
        "update",
        "refresh_from_db",
        "version",
        "from_item",
        "dynamo_key",
        "DoesNotExist",
        "Meta",
        "_meta",
        "_loaded_key",
        "model_dump",
        "model_fields",
    ):
        assert name in plain, name
    versioned = reserved_names((VersionedModel,))
    assert {"history", "revert", "diff"} <= set(versioned) - set(plain)
    assert "load" in set(reserved_names((SingletonModel,))) - set(plain)
    # Every public method and property of the bases is in it.
    for base in BASES:
        public = {n for n in dir(base) if not n.startswith("__")}
        assert public <= set(reserved_names((base,))), base


@pytest.mark.parametrize(("base", "name"), _reserved_cases())
def test_a_field_or_private_attribute_with_a_reserved_name_is_refused(
    base: type[Model], name: str
) -> None:
    with pytest.raises(ConfigurationError) as info:
        define(base, "Clash", {name: int}, **{name: 0} if name.startswith("_") else {})
    refused(info, "Clash", name)


@pytest.mark.parametrize("name", ["save", "objects", "version", "history"])
def test_a_reserved_name_is_refused_however_it_is_declared(name: str) -> None:
    # Field(...) default, a dynorm field marker, pydantic's create_model.
    with pytest.raises(ConfigurationError) as info:
        define(VersionedModel, "WithDefault", {name: Any}, **{name: Field(default=None)})
    refused(info, "WithDefault", name)
    with pytest.raises(ConfigurationError) as info:
        define(VersionedModel, "WithMarker", {name: datetime}, **{name: fields.CreatedAt()})
    refused(info, "WithMarker", name)
    with pytest.raises(ConfigurationError) as info:
        create_model(  # type: ignore[call-overload]
            "Created",
            __base__=VersionedModel,
            __module__=__name__,
            ident=(str, ...),
            **{name: (int, 0)},
        )
    refused(info, "Created", name)


def test_version_redeclared_even_identically_is_refused_but_inherited_is_fine() -> None:
    with pytest.raises(ConfigurationError) as info:

        class Again(Model):
            id: str
            version: int = 0

            class Meta:
                pk = "A#{id}"

    message = refused(info, "Again", "version")
    assert "revision" in message  # names a way out

    class Fine(Model):
        id: str

        class Meta:
            pk = "F#{id}"

    assert Fine.model_fields["version"].annotation is int


@pytest.mark.parametrize("first", [True, False], ids=["mixin-first", "mixin-last"])
def test_reserved_names_from_mixins_are_refused(first: bool) -> None:
    class PydanticMixin(BaseModel):
        save: str = "x"

    class PlainMixin:
        delete: str

    class VersionMixin(BaseModel):
        version: str = "v1"

    for mixin, name in ((PydanticMixin, "save"), (PlainMixin, "delete"), (VersionMixin, "version")):
        bases = (mixin, Model) if first else (Model, mixin)
        with pytest.raises(ConfigurationError) as info:
            type(Model)(
                "Mixed",
                bases,
                {
                    "__annotations__": {"id": str},
                    "__module__": __name__,
                    "__qualname__": "Mixed",
                    "Meta": type("Meta", (), {"pk": "M#{id}"}),
                },
            )
        refused(info, "Mixed", name)


def test_reserved_names_in_a_user_base_are_refused_at_the_base() -> None:
    with pytest.raises(ConfigurationError) as info:

        class Base(Model):
            update: str = ""

            class Meta:
                abstract = True

    refused(info, "Base", "update")


def test_a_redeclared_private_attribute_of_dynorm_is_refused() -> None:
    with pytest.raises(ConfigurationError) as info:
        define(Model, "Private", {}, _partial=PrivateAttr(default=None))
    refused(info, "Private", "_partial")


def _slot_names() -> list[str]:
    # dynorm's own fields and private attributes, read from Model (not a hand list).
    from pydantic._internal._typing_extra import is_classvar_annotation

    return sorted(
        n for n, a in vars(Model)["__annotations__"].items() if not is_classvar_annotation(a)
    )


@pytest.mark.parametrize("name", _slot_names())
@pytest.mark.parametrize(
    "how", ["classvar", "plain-value", "method", "mixin-value"], ids=lambda h: str(h)
)
def test_dynorms_own_fields_cannot_be_redefined_in_any_way(name: str, how: str) -> None:
    # A ClassVar named `version` used to remove the version field (and optimistic locking).
    assert "version" in _slot_names() and "_loaded_key" in _slot_names()
    bases: tuple[type, ...] = (Model,)
    body: dict[str, Any] = {}
    annotations: dict[str, Any] = {"ident": str}
    if how == "classvar":
        annotations[name] = ClassVar[int]
        body[name] = 3
    elif how == "plain-value":
        body[name] = None
    elif how == "method":
        body[name] = lambda self: 3
    else:
        bases = (type("Mixin", (), {name: 3}), Model)
    with pytest.raises(ConfigurationError) as info:
        type(Model)(
            "Redefined",
            bases,
            {
                "__annotations__": annotations,
                "__module__": __name__,
                "__qualname__": "Redefined",
                "Meta": type("Meta", (), {"pk": "R#{ident}"}),
                **body,
            },
        )
    refused(info, "Redefined", name)


def test_extra_allow_is_refused_because_extras_would_not_be_stored() -> None:
    with pytest.raises(ConfigurationError, match="extra='allow'") as info:

        class Loose(Model):
            model_config = ConfigDict(extra="allow")
            id: str

            class Meta:
                pk = "L#{id}"

    assert info.value.code == "model-definition" and "Loose" in str(info.value)

    class Lenient(Model):
        model_config = ConfigDict(extra="ignore")
        id: str

        class Meta:
            pk = "L#{id}"

    assert Lenient(id="1", unknown=2).model_dump() == {"version": 0, "id": "1"}  # type: ignore[call-arg]


def test_what_is_not_a_field_may_use_reserved_names() -> None:
    class Custom(QuerySet[Any]):
        pass

    class Owned(Model):
        id: str
        objects: ClassVar[Manager] = Custom.as_manager()  # a custom manager
        history_size: int = 0  # resembles a reserved name
        _cache: dict[str, int] = PrivateAttr(default_factory=dict)

        class Meta:
            pk = "O#{id}"

        def save(self, **kwargs: Any) -> None:  # overriding a method is fine
            super().save(**kwargs)

    assert isinstance(Owned.objects, Custom)
    assert set(Owned.model_fields) == {"version", "id", "history_size"}


def test_objects_must_be_a_manager() -> None:
    with pytest.raises(ConfigurationError, match="must be a dynorm Manager") as info:
        define(Model, "Odd", {}, objects="not a manager")
    assert "Odd.objects" in str(info.value)


@pytest.mark.parametrize("name", ["pk", "sk", "gsi1pk", "gsi3sk"])
def test_a_field_stored_under_a_key_attribute_is_refused(name: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        define(Model, "Keyed", {name: str})
    assert info.value.code == "model-definition" and repr(name) in str(info.value)


@pytest.mark.parametrize("name", ["a__b", "status__exact", "x__"])
def test_a_field_name_with_double_underscore_is_refused(name: str) -> None:
    with pytest.raises(ConfigurationError, match="field__lookup") as info:
        define(Model, "Dunder", {name: str})
    assert repr(name) in str(info.value)


def test_a_ttl_field_is_stored_under_ttl_and_may_have_any_name() -> None:
    model = define(Model, "Expiring", {"ends": datetime | None}, ends=fields.TTL())
    assert model._meta.attr_names["ends"] == "_ttl"


# --------------------------------------------------------------------------- name limits


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("a" * ATTRIBUTE_NAME_LIMIT, True),
        ("a" * (ATTRIBUTE_NAME_LIMIT + 1), False),
        ("é" * (ATTRIBUTE_NAME_LIMIT // 2) + "a", True),  # 65,535 bytes of UTF-8
        ("é" * ((ATTRIBUTE_NAME_LIMIT + 1) // 2), False),  # 32,768 characters, 65,536 bytes
    ],
    ids=["ascii-at-limit", "ascii-over", "utf8-at-limit", "utf8-over"],
)
def test_attribute_names_are_limited_to_dynamodbs_64_kb(name: str, ok: bool) -> None:
    if ok:
        model = define(Model, "Long", {name: int}, **{name: 0})
        assert model._meta.attr_names[name] == name
        return
    with pytest.raises(ConfigurationError) as info:
        define(Model, "Long", {name: int}, **{name: 0})
    message = str(info.value)
    assert "Long" in message and str(len(name.encode())) in message
    assert len(message) < 500  # names the field by its start, not 64 KB of it
    assert get_model("Long") is None


def test_a_ttl_field_with_a_long_name_is_stored_under_a_short_one() -> None:
    name = "e" * (ATTRIBUTE_NAME_LIMIT + 1)
    model = define(Model, "LongTTL", {name: datetime | None}, **{name: fields.TTL()})
    assert model._meta.attr_names[name] == "_ttl"


def test_a_field_name_that_is_not_utf8_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="UTF-8"):
        define(Model, "Surrogate", {"a\ud800": int}, **{"a\ud800": 0})


@pytest.mark.parametrize(
    ("digits", "ok"), [(KEY_ATTRIBUTE_NAME_LIMIT - 5, True), (KEY_ATTRIBUTE_NAME_LIMIT - 4, False)]
)
def test_index_key_attribute_names_are_limited_to_255_characters(digits: int, ok: bool) -> None:
    slot = 10**digits - 1  # `digits` nines: gsi<digits>pk is digits + 5 characters
    body = {
        "Meta": type(
            "Meta", (), {"pk": "S#{ident}", "indexes": [Index("x", pk="{ident}", slot=slot)]}
        )
    }
    if ok:
        model = define(Model, "Slotted", {}, **body)
        assert len(model._meta.indexes["x"].pk_attr) == KEY_ATTRIBUTE_NAME_LIMIT
        return
    with pytest.raises(ConfigurationError, match="255") as info:
        define(Model, "Slotted", {}, **body)
    assert info.value.code == "index"


# --------------------------------------------------------------------------- abstract models


@pytest.fixture
def abstract() -> type[Model]:
    class Tenanted(Model):
        tenant: str
        id: str = fields.ULID()

        class Meta:
            abstract = True
            pk = "TENANT#{tenant}"
            sk = "ITEM#{id}"

    return Tenanted


def abstract_refusal(info: pytest.ExceptionInfo[Any], model: str) -> None:
    error = info.value
    assert isinstance(error, AbstractModelError) and isinstance(error, ConfigurationError)
    assert error.code == "abstract-model" and error.model == model
    assert model in str(error) and "abstract" in str(error) and "concrete subclass" in str(error)


@pytest.mark.parametrize("base", [Model, VersionedModel, SingletonModel])
def test_dynorms_own_bases_have_no_objects(base: type[Model]) -> None:
    with pytest.raises(AbstractModelError) as info:
        base.objects  # noqa: B018
    abstract_refusal(info, base.__name__)
    assert not hasattr(base, "objects")


def test_an_abstract_model_has_no_objects_but_its_subclasses_do(abstract: type[Model]) -> None:
    with pytest.raises(ConfigurationError) as info:
        abstract.objects.filter(tenant="t").explain()
    abstract_refusal(info, "Tenanted")
    assert not hasattr(abstract, "objects") and getattr(abstract, "objects", None) is None

    class Invoice(abstract):  # type: ignore[valid-type, misc]
        amount: int = 0

    assert isinstance(Invoice.objects, QuerySet)
    assert Invoice.objects.filter(tenant="t").explain()


def test_an_abstract_model_below_a_concrete_one_has_no_objects() -> None:
    class Concrete(Model):
        id: str

        class Meta:
            pk = "C#{id}"

    class Sub(Concrete):
        class Meta:
            abstract = True

    with pytest.raises(AbstractModelError) as info:
        Sub.objects  # noqa: B018
    abstract_refusal(info, "Sub")
    assert isinstance(Concrete.objects, QuerySet)


def test_a_parametrized_abstract_generic_base_stays_abstract() -> None:
    T = TypeVar("T")

    class Holder(Model, Generic[T]):
        id: str
        value: T

        class Meta:
            abstract = True

    assert Holder[int]._meta.abstract and not hasattr(Holder[int], "objects")

    class IntHolder(Holder[int]):
        class Meta:
            pk = "H#{id}"

    assert IntHolder(id="1", value=3).dynamo_key == {"pk": "H#1", "sk": "IntHolder"}
    assert get_model("IntHolder") is IntHolder and isinstance(IntHolder.objects, QuerySet)


def test_a_custom_queryset_of_an_abstract_base_is_inherited() -> None:
    class Custom(QuerySet[Any]):
        pass

    class Base(Model):
        objects: ClassVar[Manager] = Custom.as_manager()

        class Meta:
            abstract = True

    class Leaf(Base):
        id: str

        class Meta:
            pk = "L#{id}"

    assert not hasattr(Base, "objects")
    assert type(Leaf.objects) is Custom


@pytest.fixture
def unreachable() -> Any:
    """Configure an endpoint nothing listens on: a request sent would fail differently."""
    from dynorm import _config

    saved = _config.snapshot()
    dynorm.configure(endpoint_url="http://127.0.0.1:9", region_name="us-east-1", max_attempts=1)
    yield
    _config.restore(saved)


def test_nothing_that_needs_a_key_works_on_an_abstract_instance(
    abstract: type[Model], unreachable: None
) -> None:
    # An instance can be built (a pydantic schema), but it has no key: every use that needs
    # one is refused before anything is sent.
    obj = abstract(tenant="t")
    uses = {
        "save": obj.save,
        "refresh_from_db": obj.refresh_from_db,
        "dynamo_key": lambda: obj.dynamo_key,
        "parse_key": lambda: abstract.parse_key("TENANT#t", "ITEM#x"),
        "from_item": lambda: abstract.from_item({"pk": {"S": "TENANT#t"}, "sk": {"S": "ITEM#x"}}),
        "transaction_get": lambda: dynorm.transaction_get([(abstract, {})]),
    }
    for use in uses.values():
        with pytest.raises(AbstractModelError) as info:
            use()
        abstract_refusal(info, "Tenanted")
    with pytest.raises(AbstractModelError):
        with dynorm.transaction() as tx:
            tx.check(obj)


def test_an_abstract_versioned_instance_has_no_history() -> None:
    class Doc(VersionedModel):
        id: str = ""

        class Meta:
            abstract = True

    with pytest.raises(AbstractModelError) as info:
        Doc(id="d").history()
    abstract_refusal(info, "Doc")


def test_an_abstract_model_cannot_join_a_collection(abstract: type[Model]) -> None:
    class Leaf(abstract):  # type: ignore[valid-type, misc]
        pass

    with pytest.raises(QueryError, match="Tenanted"):
        Leaf.objects.filter(tenant="t").include(abstract)


# --------------------------------------------------------------------------- get/update_or_create


@pytest.mark.parametrize("method", ["get_or_create", "update_or_create"])
@pytest.mark.parametrize(
    "arguments",
    [
        {"id": "x", "defaults": {"version": 3}},
        {"id": "x", "version": 3},
        {"id": "x", "version__gte": 1},
    ],
    ids=["in-defaults", "in-lookups", "as-lookup"],
)
def test_version_in_or_create_arguments_is_refused_before_sending(
    method: str, arguments: dict[str, Any], unreachable: None
) -> None:
    class Thing(Model):
        id: str
        n: int = 0

        class Meta:
            pk = "THING#{id}"

    # The endpoint is unreachable: a request would fail with another error.
    with pytest.raises(QueryError) as info:
        getattr(Thing.objects, method)(**arguments)
    message = str(info.value)
    assert info.value.code == "bad-query"
    assert "version" in message and "Thing" in message and method in message
    assert "3" not in message  # never the value


@pytest.mark.parametrize("method", ["get_or_create", "update_or_create"])
def test_an_unknown_default_is_refused_with_a_suggestion(method: str, unreachable: None) -> None:
    class Thing(Model):
        id: str
        total: int = 0

        class Meta:
            pk = "THING#{id}"

    with pytest.raises(QueryError, match="Perhaps you meant 'total'") as info:
        getattr(Thing.objects, method)(id="x", defaults={"totl": 1})
    assert info.value.code == "unknown-field"
