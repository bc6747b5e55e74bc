"""Schema versions and upgrade functions: `Meta.schema_version` and `@Model.migration`.

A model with `Meta.schema_version = N` stamps every item it writes whole (PutItem) with
`_sv = N`; an item without the stamp was written before the model had one and counts as
version 1. `@Order.migration(from_version=k)` registers `f(data) -> data`, turning the data
of a version-k item into version k+1's shape; `Migrations.upgrade` runs the chain from the
stored version to the current one on the raw item, before the model's codec decodes it (so
every reader that decodes an item, in both decoders, sees the current shape and the model
validates the result).

`data` is the stored item as plain values keyed by field name (or by attribute name for an
attribute no field of today's model has): `str`, `int`/`Decimal`, `bool`, `None`, `list`,
`dict`, `set`, `bytes`, as `dynorm._codec.from_wire` decodes them. The key, the entity type,
the version, the write token, the index keys and the stamp are dynorm's and never in it.

An item stamped newer than the code raises `SchemaVersionError`: decoding it with older code
would drop what the newer code stored. A model without a schema version reads version 1 (an
unstamped item, or one stamped 1) and refuses any other (`unversioned`): the release before
the one that introduces `schema_version = 2` refuses the items that release writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from ._codec import ValueProblem, from_wire, number_from_wire, to_wire
from ._constants import PK, SCHEMA_VERSION_ATTR, SK, TYPE_ATTR, VERSION_ATTR, WRITE_TOKEN_ATTR
from .exceptions import ConfigurationError, SchemaVersionError

__all__ = [
    "UNSTAMPED",
    "Migration",
    "Migrations",
    "check_schema_version",
    "no_schema_version",
    "stored_schema_version",
    "unversioned",
]

#: An upgrade function: the data of one version in, the next version's data out.
Migration = Callable[[dict[str, Any]], dict[str, Any]]

#: The version of an item without a stamp (written before its model had a schema version).
UNSTAMPED = 1


def check_schema_version(model: str, raw: Any) -> int | None:
    """`Meta.schema_version` as an int >= 1 (None when the model declares none)."""
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, int) or raw < 1:
        raise ConfigurationError(
            f"Cannot use Meta.schema_version on {model}: it must be an int of at least 1 "
            f"(items written before it count as version {UNSTAMPED}), e.g. schema_version = 2.",
            code="model-definition",
        )
    return raw


def stored_schema_version(item: Mapping[str, Any]) -> int | None:
    """The stamp of a stored item (`UNSTAMPED` when absent); None if it is not a whole number."""
    av = item.get(SCHEMA_VERSION_ATTR)
    if av is None:
        return UNSTAMPED
    text = av.get("N") if isinstance(av, Mapping) else None
    if not isinstance(text, str):
        return None
    try:
        number = number_from_wire(text)
    except (ValueError, ArithmeticError):
        return None
    return number if isinstance(number, int) else None


def no_schema_version(model: str, abstract: bool) -> ConfigurationError:
    """The error for `@Model.migration` on a model without a schema version."""
    if abstract:
        return ConfigurationError(
            f"Cannot register a migration on the abstract model {model}: its items are its "
            "concrete models'; register it on each concrete model.",
            code="model-definition",
        )
    return ConfigurationError(
        f"Cannot register a migration of {model}: it declares no Meta.schema_version; add "
        "`schema_version = 2` (items without a stamp are version 1) to its Meta.",
        code="model-definition",
    )


def unversioned(model: str) -> Callable[[Mapping[str, Any]], Mapping[str, Any]]:
    """The read guard of a model without `Meta.schema_version` (it reads version 1 only).

    An item stamped above 1 was written by a newer release that declares a schema version:
    decoding it here would drop what that release stored (and a whole save would write the
    old shape over it), so it raises `SchemaVersionError` instead.
    """

    def guard(item: Mapping[str, Any]) -> Mapping[str, Any]:
        if SCHEMA_VERSION_ATTR not in item:
            return item
        version = stored_schema_version(item)
        if version == UNSTAMPED:
            return item
        stored = "an unreadable schema version" if version is None else f"schema version {version}"
        raise SchemaVersionError(
            f"Cannot read a {model} item stored at {stored}: this code declares no "
            f"Meta.schema_version for {model} (it reads version {UNSTAMPED} only), and reading "
            "it would drop what newer code stored. Deploy the code with the newer model here.",
            model=model,
            stored_version=version,
            current_version=UNSTAMPED,
        )

    return guard


class Migrations:
    """One model's schema version and its registered upgrade functions."""

    def __init__(self, model: str, current: int, owned: Iterable[str], fields: Mapping[str, str]):
        self.model = model
        self.current = current
        self.steps: dict[int, Migration] = {}
        #: The parent model's migrations (a concrete model subclassed): inherited steps.
        self.parent: Migrations | None = None
        #: Attributes dynorm owns (kept as they are, never shown to an upgrade function).
        self.owned = frozenset((PK, SK, TYPE_ATTR, VERSION_ATTR, WRITE_TOKEN_ATTR, *owned))
        self.owned |= {SCHEMA_VERSION_ATTR}
        self.field_of = {attr: name for name, attr in fields.items()}  # attribute -> field
        self.attr_of = dict(fields)  # field -> attribute

    def add(self, from_version: Any, function: Migration) -> None:
        """Register `function` as the upgrade from `from_version` (checked here)."""
        model, current = self.model, self.current
        if isinstance(from_version, bool) or not isinstance(from_version, int):
            raise ConfigurationError(
                f"Cannot register a migration of {model} from version {from_version!r}: "
                "from_version must be an int.",
                code="model-definition",
            )
        if not UNSTAMPED <= from_version < current:
            raise ConfigurationError(
                f"Cannot register a migration of {model} from version {from_version}: "
                f"Meta.schema_version is {current}, so migrations go from {UNSTAMPED} to "
                f"{current - 1}; raise Meta.schema_version first.",
                code="model-definition",
            )
        if from_version in self.steps:
            raise ConfigurationError(
                f"Cannot register a second migration of {model} from version {from_version}: "
                "each version has one upgrade function; merge them.",
                code="model-definition",
            )
        self.steps[from_version] = function

    def chain(self) -> dict[int, Migration]:
        """Every upgrade function by version: the model's own over those it inherits."""
        inherited = {} if self.parent is None else self.parent.chain()
        return {**{v: f for v, f in inherited.items() if v < self.current}, **self.steps}

    def check(self) -> dict[int, Migration]:
        """The chain, refused when it has a gap (checked at use: functions register later)."""
        steps = self.chain()
        if steps:
            missing = [v for v in range(min(steps), self.current) if v not in steps]
            if missing:
                raise ConfigurationError(
                    f"Cannot upgrade {self.model} items: the migrations skip version(s) "
                    f"{', '.join(map(str, missing))} on the way to schema_version "
                    f"{self.current}; register @{self.model}.migration(from_version=N) for each.",
                    code="model-definition",
                )
        return steps

    def upgrade(self, item: Mapping[str, Any]) -> Mapping[str, Any]:
        """The item in today's shape: the chain run from its stored version (checked)."""
        version = stored_schema_version(item)
        if version == self.current:
            return item
        if version is None or version > self.current:
            raise self.newer(version)
        steps = self.check()
        if version not in steps:
            first = min(steps, default=self.current)
            raise ConfigurationError(
                f"Cannot upgrade a {self.model} item stored at schema version {version}: "
                f"no migration from version {version} is registered (they start at {first}); "
                f"register @{self.model}.migration(from_version={version}).",
                code="model-definition",
            )
        data: dict[str, Any] = {}
        kept: dict[str, Any] = {}
        for attr, av in item.items():
            if attr in self.owned:
                kept[attr] = av
            else:
                data[self.field_of.get(attr, attr)] = from_wire(av)
        for step in range(version, self.current):
            function = steps[step]
            try:
                data = function(data)
            except Exception as exc:
                # The exception is chained, not quoted: its text may hold a stored value.
                raise ConfigurationError(
                    f"Cannot upgrade a {self.model} item from schema version {step}: its "
                    f"migration {getattr(function, '__name__', 'function')} raised "
                    f"{type(exc).__name__}; fix the migration (the item is left as stored).",
                    code="model-definition",
                ) from exc
            if not isinstance(data, dict):
                raise ConfigurationError(
                    f"Cannot upgrade a {self.model} item from schema version {step}: its "
                    f"migration returned {type(data).__name__}, not the dict of the data.",
                    code="model-definition",
                )
        out = kept
        for name, value in data.items():
            attr = self.attr_of.get(name, name)
            if attr in self.owned:
                continue  # dynorm's own attributes are not the migration's to change
            try:
                av = to_wire(value)
            except ValueProblem as exc:
                raise ConfigurationError(
                    f"Cannot upgrade a {self.model} item to schema version {self.current}: "
                    f"the migrations' value of {name!r} {exc.reason}; fix the migration.",
                    code="model-definition",
                ) from None
            if av is not None:
                out[attr] = av
        out[SCHEMA_VERSION_ATTR] = {"N": str(self.current)}
        return out

    def check_current(self, item: Mapping[str, Any], action: str) -> None:
        """Refuse a partial write (`action`) of an item that is not at today's version."""
        version = stored_schema_version(item)
        if version == self.current:
            return
        if version is None or version > self.current:
            raise self.newer(version)
        raise self.older(version, action)

    def older(self, version: int, action: str) -> SchemaVersionError:
        """The error for a partial write of an item stored at an older schema version."""
        return SchemaVersionError(
            f"Cannot {action} some fields of a {self.model} item stored at schema version "
            f"{version}: the rest of it is still in version {version}'s shape (today's is "
            f"{self.current}). save() the whole object (it writes the upgraded item), or run "
            "`dynorm migrate` first.",
            model=self.model,
            stored_version=version,
            current_version=self.current,
        )

    def newer(self, version: int | None) -> SchemaVersionError:
        """The error for an item this code cannot read (newer, or a malformed stamp)."""
        stored = "an unreadable schema version" if version is None else f"schema version {version}"
        return SchemaVersionError(
            f"Cannot read a {self.model} item stored at {stored}: this code knows "
            f"{self.model} up to schema version {self.current}, and reading it would drop what "
            "newer code stored. Deploy the code with the newer model (or its migrations) here.",
            model=self.model,
            stored_version=version,
            current_version=self.current,
        )
