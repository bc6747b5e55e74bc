"""Suite-wide fixtures: every integration test runs on a fresh table on DynamoDB Local."""

from __future__ import annotations

import pytest

from tests import models  # noqa: F401 - register the shared models before tables are created


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "dynorm_table" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)
