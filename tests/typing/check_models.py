"""Static typing checks of model definitions and constructors (mypy --strict, pyright strict).

Type-checked, never run. Every expected error is marked twice: `# type: ignore[code]` for mypy
(warn_unused_ignores: a missing error fails) and `# pyright: ignore[rule]` for pyright
(reportUnnecessaryTypeIgnoreComment: a missing error fails).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from pydantic import Field
from typing_extensions import assert_type

from dynorm import Index, Model, SingletonModel, VersionedModel, fields
from tests.models import Customer, Everything, Order


class Article(Model):
    """Every kind of default: plain, pydantic Field, dynorm's special fields."""

    slug: str
    title: str
    views: int = 0
    tags: list[str] = Field(default_factory=list)
    rating: Decimal = Field(default=Decimal(0))
    id: str = fields.ULID()
    created_at: datetime = fields.CreatedAt()
    updated_at: datetime = fields.UpdatedAt()
    expires_at: datetime | None = fields.TTL()
    body: str = fields.Compressed(default="")
    summary: str = fields.Compressed()  # no default: required

    class Meta:  # no "Meta overrides symbol" error, in strict mode too
        pk = "ARTICLE#{slug}"
        sk = "ARTICLE"
        indexes = [Index("by_title", pk="TITLE#{title}")]


class Settings(SingletonModel):
    theme: str = "light"

    class Meta:
        type_name = "settings"


class Page(VersionedModel):
    id: str
    title: str = ""

    class Meta:
        pk = "PAGE#{id}"
        max_versions = 5


class Base(Model):
    """A user's abstract base: its Meta hidden from checkers, as dynorm's own bases do."""

    owner: str

    if not TYPE_CHECKING:

        class Meta:
            abstract = True


class Note(Base):
    text: str

    class Meta:
        pk = "OWNER#{owner}"
        sk = "NOTE#{text}"


def check_correct_constructors() -> None:
    assert_type(Order(customer_id="c1", total=Decimal(1)), Order)
    Order(customer_id="c1", total=Decimal(1), status="paid", note=None, tags={"a"})
    Customer(email="a@example.com", name="Ann")
    Everything()
    Article(slug="s", title="t", summary="x")
    Article(slug="s", title="t", summary="x", body="b", id="01H", tags=["a"], views=2)
    Settings()
    Settings(theme="dark")
    Page(id="p1")
    Note(owner="ann", text="hi")


def check_wrong_field_types() -> None:
    Order(customer_id=1, total=Decimal(1))  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    Order(customer_id="c1", total=Decimal(1), status="lost")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    Article(slug="s", title="t", summary="x", views="many")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    Page(id=1)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]
    Settings(theme=1)  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]


def check_unknown_fields() -> None:
    Customer(email="a@example.com", name="Ann", nme="x")  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
    Page(id="p1", titel="x")  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
    Note(owner="ann", text="hi", extra=1)  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]


def check_missing_required_fields() -> None:
    Order(customer_id="c1")  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
    Customer(name="Ann")  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
    Article(slug="s", title="t")  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]
    Page()  # type: ignore[call-arg]  # pyright: ignore[reportCallIssue]


def check_positional_arguments_are_refused() -> None:
    Page("p1")  # type: ignore[call-arg, arg-type]  # pyright: ignore[reportCallIssue]


def check_field_types() -> None:
    a = Article(slug="s", title="t", summary="x")
    assert_type(a.id, str)
    assert_type(a.created_at, datetime)
    assert_type(a.expires_at, datetime | None)
    assert_type(a.version, int)
    assert_type(Page(id="p").version, int)
    assert_type(Settings.load(), Settings)
