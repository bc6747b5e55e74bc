"""A Streamlit connection to a dynorm table (`pip install "dynorm[streamlit]"`).

```python
import streamlit as st
from dynorm.contrib.streamlit import DynormConnection

conn = st.connection("dynorm", type=DynormConnection)       # [connections.dynorm] secrets
orders = conn.query(Order.objects.filter(customer_id="c1"), ttl=60)   # cached 60 s
conn.save(order)                                               # writes, then clears the cache
```

The connection builds one `dynorm.Table` from its secrets (or keyword arguments):
`table_name`, `endpoint_url`, `region_name`, `max_attempts`; `blob_bucket` and
`s3_endpoint_url` configure blob fields. Reads go to that table and are cached for `ttl`
seconds (per connection, shared by the sessions that use it); every write through the
connection clears the cache, so a session sees its own writes at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import streamlit as st
from streamlit.connections import BaseConnection

from .._config import Table, configure, get_settings, using
from ..models import Model
from ..query.queryset import QuerySet

__all__ = ["DynormConnection"]

M = TypeVar("M", bound=Model)
T = TypeVar("T")

_TABLE_OPTIONS = ("endpoint_url", "region_name", "max_attempts")
_BLOB_OPTIONS = ("blob_bucket", "s3_endpoint_url")


class DynormConnection(BaseConnection[Table]):
    """`st.connection("dynorm", type=DynormConnection)`: cached reads, invalidated by writes.

    Options (secrets `[connections.<name>]`, or keyword arguments of `st.connection`):
    `table_name` (default: dynorm's configured table), `endpoint_url`, `region_name`,
    `max_attempts`, `blob_bucket`, `s3_endpoint_url`, and `ttl`, the default cache time in
    seconds (default 300; 0 turns the cache off).
    """

    def _connect(self, **kwargs: Any) -> Table:
        options: dict[str, Any] = {**self._section(), **kwargs}
        self._ttl = float(options.pop("ttl", 300))
        self._cache: dict[tuple[Any, ...], tuple[float, Any]] = {}
        self._lock = threading.Lock()
        blob = {k: options[k] for k in _BLOB_OPTIONS if options.get(k) is not None}
        if blob:
            configure(**blob)
        name = options.get("table_name")
        table_options = {k: options[k] for k in _TABLE_OPTIONS if options.get(k) is not None}
        if name is None:
            name = get_settings().table_name
        return Table(str(name), **table_options)

    def _section(self) -> dict[str, Any]:
        """This connection's `[connections.<name>]` secrets (also when set without a file)."""
        found: dict[str, Any] = self._secrets.to_dict()
        if not found:
            section = st.secrets.to_dict().get("connections", {})
            found = dict(section.get(self._connection_name, {}))
        return found

    @property
    def table(self) -> Table:
        """The `dynorm.Table` this connection reads from and writes to."""
        return self._instance

    # ------------------------------------------------------------------ reads

    def _cached(self, key: tuple[Any, ...], ttl: float | None, load: Callable[[], T]) -> T:
        seconds = self._ttl if ttl is None else ttl
        now = time.monotonic()
        if seconds > 0:
            with self._lock:
                hit = self._cache.get(key)
            if hit is not None and hit[0] > now:
                value: T = hit[1]
                return value
        value = load()
        if seconds > 0:
            with self._lock:
                self._cache[key] = (now + seconds, value)
        return value

    def query(self, qs: QuerySet[M], *, ttl: float | None = None) -> list[M]:
        """The results of a QuerySet, read from this connection's table, cached `ttl` seconds.

        The cache key is the query as compiled (`qs.explain()`) and the table, so two equal
        queries share one entry. Returns the same list objects until the entry expires or a
        write clears it: copy an object before changing it.
        """
        scoped = qs.using(self.table)
        key = ("query", self.table.name, repr(scoped.explain()), type(qs).__name__)
        return self._cached(key, ttl, lambda: list(scoped))

    def get(self, model: type[M], *, ttl: float | None = None, **key: Any) -> M:
        """`model.objects.get(**key)` from this connection's table, cached `ttl` seconds."""
        cache_key = ("get", self.table.name, model.__qualname__, tuple(sorted(key.items())))
        return self._cached(cache_key, ttl, lambda: model.objects.using(self.table).get(**key))

    def clear(self) -> None:
        """Forget every cached read (writes through the connection call it)."""
        with self._lock:
            self._cache.clear()

    # ------------------------------------------------------------------ writes

    @contextmanager
    def using(self) -> Iterator[Table]:
        """A `dynorm.using()` block on this connection's table; clears the cache on exit."""
        try:
            with using(self.table) as table:
                yield table
        finally:
            self.clear()

    def save(self, obj: Model, **kwargs: Any) -> None:
        """`obj.save(**kwargs)` in this connection's table, then clear the cache."""
        with self.using():
            obj.save(**kwargs)

    def delete(self, obj: Model) -> None:
        """`obj.delete()` in this connection's table, then clear the cache."""
        with self.using():
            obj.delete()
