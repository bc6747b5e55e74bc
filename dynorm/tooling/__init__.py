"""Data tooling: the Python API of the `dynorm` command's data commands.

The table as code (`table_as_code()`), JSON Lines export and import of typed items
(`export_items()`, `import_items()`), index backfills (`backfill_index()`), schema
migrations (`migrate()`); usable
from a migration script or a Lambda.
`check_table()` (live table vs models) and `create_table()` are in `dynorm` itself.
"""

from __future__ import annotations

from ._backfill import BackfillResult, backfill_index
from ._export import ExportResult, Progress, export_items, item_from_json, item_to_json
from ._iac import IAC_FORMATS, STREAM_VIEW_TYPES, IacFormat, table_as_code, table_properties
from ._import import ImportProblem, ImportResult, import_items
from ._migrate import MigrateResult, migrate

__all__ = [
    "IAC_FORMATS",
    "STREAM_VIEW_TYPES",
    "BackfillResult",
    "ExportResult",
    "IacFormat",
    "ImportProblem",
    "ImportResult",
    "MigrateResult",
    "Progress",
    "backfill_index",
    "export_items",
    "import_items",
    "item_from_json",
    "item_to_json",
    "migrate",
    "table_as_code",
    "table_properties",
]
