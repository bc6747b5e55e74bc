"""Suite-wide fixtures: every integration test runs on a fresh table on DynamoDB Local."""

from __future__ import annotations

import pytest

from tests import models  # noqa: F401 - register the shared models before tables are created


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "dynorm_table" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)


#: The environment variables botocore reads a proxy (or its exclusions) from.
PROXY_VARIABLES = ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy")


@pytest.fixture
def no_proxy_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No proxy in the environment (the machine's own, if any, is set aside); yields the
    monkeypatch that set it aside, for a test to set its own."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch
