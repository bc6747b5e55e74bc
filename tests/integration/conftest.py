"""Fixtures shared by the integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import dynorm
from dynorm import Table


@pytest.fixture
def second_table(dynorm_table: str) -> Iterator[Table]:
    """A second table beside the default one, created and deleted around the test."""
    table = Table(f"{dynorm_table}-b")
    with dynorm.using(table):
        dynorm.create_table()
    yield table
    with dynorm.using(table):
        dynorm.delete_table()
