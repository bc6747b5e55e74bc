"""Static typing checks of managers: default, custom QuerySets, versioned models.

Type-checked, never run (see check_models.py for how expected errors are marked).
"""

from __future__ import annotations

from typing import TypeVar

from typing_extensions import Self, assert_type

from dynorm import Manager, Model, QuerySet, VersionedModel
from dynorm.versioning import HistoryQuerySet, VersionedQuerySet
from tests.models import Order

M = TypeVar("M", bound=Model)


class TicketQuerySet(QuerySet["Ticket"]):
    def open_for(self, owner: str) -> Self:
        return self.filter(owner=owner, state="open")

    def numbers(self) -> list[int]:
        return [t.number for t in self]


class Ticket(Model):
    owner: str
    number: int
    state: str = "open"

    objects = TicketQuerySet.as_manager()

    class Meta:
        pk = "OWNER#{owner}"
        sk = "TICKET#{number:08d}"


class Bug(Ticket):
    """Inherits Ticket's manager (at runtime too)."""

    severity: int = 1

    # pyright reports a nested class that overrides another as an incompatible override
    # (it treats them as invariant attributes): a subclass of a model that declares `Meta`
    # needs this ignore, or the parent's Meta hidden (see Base in check_models.py).
    class Meta:  # pyright: ignore[reportIncompatibleVariableOverride]
        type_name = "bug"


class LiveQuerySet(QuerySet[M]):
    """A QuerySet reusable by several models: generic in the model."""

    def live(self) -> Self:
        return self.filter(deleted=False)


class Post(Model):
    id: str
    deleted: bool = False

    # A generic QuerySet is given its model where it is attached (no plugin needed).
    objects = LiveQuerySet["Post"].as_manager()

    class Meta:
        pk = "POST#{id}"


class Doc(VersionedModel):
    id: str
    title: str = ""

    class Meta:
        pk = "DOC#{id}"


class DocQuerySet(VersionedQuerySet["Wiki"]):
    def titled(self, title: str) -> Self:
        return self.filter(title=title)


class Wiki(VersionedModel):
    id: str
    title: str = ""

    objects = DocQuerySet.as_manager()

    class Meta:
        pk = "WIKI#{id}"


def check_default_manager() -> None:
    assert_type(Order.objects, QuerySet[Order])
    assert_type(Order.objects.all(), QuerySet[Order])


def check_custom_queryset() -> None:
    assert_type(TicketQuerySet.as_manager(), Manager[TicketQuerySet])
    assert_type(Ticket.objects, TicketQuerySet)
    assert_type(Ticket.objects.open_for("ann"), TicketQuerySet)
    assert_type(Ticket.objects.filter(number=1).open_for("ann").order_by("-number"), TicketQuerySet)
    assert_type(Ticket.objects.open_for("ann").numbers(), list[int])
    assert_type(Ticket.objects.open_for("ann").get(number=1), Ticket)
    assert_type(Ticket.objects.open_for("ann").first(), Ticket | None)
    assert_type(Ticket.objects.create(owner="ann", number=1), Ticket)
    assert_type(Bug.objects, TicketQuerySet)
    Ticket.objects.closed_for("ann")  # type: ignore[attr-defined]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType]


def check_generic_custom_queryset() -> None:
    assert_type(Post.objects, LiveQuerySet[Post])
    assert_type(Post.objects.live().filter(id="p"), LiveQuerySet[Post])
    assert_type(Post.objects.live().get(id="p"), Post)


def check_versioned_manager() -> None:
    assert_type(Doc.objects, VersionedQuerySet[Doc])
    assert_type(Doc.objects.get(id="d1"), Doc)
    assert_type(Doc.objects.get(id="d1", version=3), Doc)
    assert_type(Doc.objects.filter(id="d1").first(), Doc | None)
    doc = Doc.objects.get(id="d1")
    assert_type(doc.history(), HistoryQuerySet[Doc])
    assert_type(doc.history()[:3], HistoryQuerySet[Doc])
    assert_type(doc.history()[0], Doc)
    Doc.objects.get(id="d1", version="3")  # type: ignore[arg-type]  # pyright: ignore[reportArgumentType]


def check_custom_versioned_queryset() -> None:
    assert_type(Wiki.objects, DocQuerySet)
    assert_type(Wiki.objects.titled("Home").get(id="w", version=2), Wiki)


def use(value: object) -> None:
    """Take any value (so that an expression is not an unused statement)."""


def check_objects_is_not_an_instance_attribute(order: Order, ticket: Ticket) -> None:
    # At runtime, `order.objects` raises AttributeError: the checkers say so too.
    use(order.objects)  # type: ignore[call-overload]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType, reportUnknownArgumentType]
    use(ticket.objects)  # type: ignore[arg-type]  # pyright: ignore[reportAttributeAccessIssue, reportUnknownMemberType, reportUnknownArgumentType]
