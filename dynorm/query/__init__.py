"""The query layer: QuerySet, lookups, Q/F expressions, the compiler and cursors."""

from .compiler import Request
from .expressions import F, Q
from .queryset import Collection, Manager, Page, QuerySet

__all__ = ["Collection", "F", "Manager", "Page", "Q", "QuerySet", "Request"]
