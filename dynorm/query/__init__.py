"""The query layer: Q/F expressions, lookups, the compilers, cursors and the QuerySet.

This package's `__init__` imports only the bottom of the layer (expressions and the Request
type): the QuerySet (`dynorm.QuerySet`, `dynorm.query.queryset`) sits above the executor and
the write paths, which import the compilers from here.
"""

from .._request import Request
from .expressions import F, Q

__all__ = ["F", "Q", "Request"]
