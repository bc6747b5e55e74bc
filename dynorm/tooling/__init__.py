"""Data tooling: the Python API of the `dynorm` command's data commands.

The table as code (`table_as_code()`); usable from a migration script or a Lambda.

`check_table()` (live table vs models) and `create_table()` are in `dynorm` itself.
"""

from __future__ import annotations

from ._iac import IAC_FORMATS, STREAM_VIEW_TYPES, IacFormat, table_as_code, table_properties

__all__ = [
    "IAC_FORMATS",
    "STREAM_VIEW_TYPES",
    "IacFormat",
    "table_as_code",
    "table_properties",
]
