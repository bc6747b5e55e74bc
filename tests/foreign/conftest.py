"""Fixtures of the foreign-library proof tests: a table the foreign library creates."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from dynorm import _config
from dynorm._registry import isolated_registry


@pytest.fixture
def foreign_table(dynorm_table: str) -> Iterator[str]:
    """The name of a table for the foreign library to create (dropped afterwards).

    dynorm's own test table is configured as usual; the foreign table sits beside it on the
    same DynamoDB Local, and the models a test maps onto it live in an isolated registry.
    """
    name = f"{dynorm_table}-foreign"
    with isolated_registry():
        yield name
    client = _config.get_connection().client
    with contextlib.suppress(client.exceptions.ResourceNotFoundException):
        client.delete_table(TableName=name)
