"""`dynorm check` and `dynorm iac`: the emitted table, created on DynamoDB Local from the
emitted CloudFormation / Terraform / CDK properties, passes `dynorm check`; a table that
differs from them fails it with exit code 1 and names the difference.

Each format is read back by an independent parser (json, python-hcl2), never by dynorm.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import hcl2
import pytest
from click.testing import CliRunner, Result

import dynorm
from dynorm import _config
from dynorm._cli import cli
from dynorm.exceptions import ConfigurationError
from dynorm.tooling import table_as_code, table_properties
from tests import models as test_models
from tests.processes import clean_env

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def runner() -> Iterator[CliRunner]:
    saved = _config.snapshot()
    try:
        yield CliRunner()
    finally:
        _config.restore(saved)


@pytest.fixture
def table_name(dynamodb_local: str) -> Iterator[str]:
    """A unique table name (no table yet); whatever got created is deleted afterwards."""
    name = f"dynorm-iac-{uuid.uuid4().hex[:10]}"
    saved = _config.snapshot()
    dynorm.configure(table_name=name, endpoint_url=dynamodb_local, client=None)
    try:
        yield name
    finally:
        try:
            dynorm.configure(table_name=name, endpoint_url=dynamodb_local, client=None)
            dynorm.delete_table(wait=False)
        finally:
            _config.restore(saved)


def boto_client(endpoint: str) -> Any:
    """A raw boto3 client on the endpoint (the region and credentials dynorm uses)."""
    return _config.get_connection().client


def invoke(runner: CliRunner, *args: str) -> Result:
    return runner.invoke(cli, list(args), catch_exceptions=False)


# ----------------------------------------------------------- the emitted text, parsed back


def _unquote(value: Any) -> Any:
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return json.loads(value)
    return value


def _hcl_block(block: dict[str, Any]) -> dict[str, Any]:
    return {k: _unquote(v) for k, v in block.items() if k != "__is_block__"}


def from_cloudformation(text: str) -> dict[str, Any]:
    template = json.loads(text)
    [resource] = template["Resources"].values()
    assert resource["Type"] == "AWS::DynamoDB::Table"
    props: dict[str, Any] = resource["Properties"]
    return props


def from_cdk_json(text: str) -> dict[str, Any]:
    def pascal(value: Any) -> Any:
        if isinstance(value, dict):
            return {k[:1].upper() + k[1:]: pascal(v) for k, v in value.items()}
        if isinstance(value, list):
            return [pascal(v) for v in value]
        return value

    props: dict[str, Any] = pascal(json.loads(text))
    return props


def from_terraform(text: str) -> dict[str, Any]:
    """An `aws_dynamodb_table` resource (HCL) as CloudFormation properties."""
    parsed = hcl2.loads(text)
    [resource] = parsed["resource"]
    [(kind, labelled)] = resource.items()
    assert _unquote(kind) == "aws_dynamodb_table"
    [body] = labelled.values()
    tf = _hcl_block(body)
    props: dict[str, Any] = {
        "TableName": tf["name"],
        "BillingMode": tf["billing_mode"],
        "KeySchema": [
            {"AttributeName": tf["hash_key"], "KeyType": "HASH"},
            {"AttributeName": tf["range_key"], "KeyType": "RANGE"},
        ],
        "AttributeDefinitions": [
            {"AttributeName": a["name"], "AttributeType": a["type"]}
            for a in map(_hcl_block, tf.get("attribute", []))
        ],
    }
    indexes = [_hcl_block(g) for g in tf.get("global_secondary_index", [])]
    if indexes:
        props["GlobalSecondaryIndexes"] = [
            {
                "IndexName": g["name"],
                "KeySchema": [{"AttributeName": g["hash_key"], "KeyType": "HASH"}]
                + (
                    [{"AttributeName": g["range_key"], "KeyType": "RANGE"}]
                    if "range_key" in g
                    else []
                ),
                "Projection": {"ProjectionType": g["projection_type"]},
            }
            for g in indexes
        ]
    for ttl in map(_hcl_block, tf.get("ttl", [])):
        props["TimeToLiveSpecification"] = {
            "AttributeName": ttl["attribute_name"],
            "Enabled": ttl["enabled"],
        }
    if tf.get("stream_enabled"):
        props["StreamSpecification"] = {"StreamViewType": tf["stream_view_type"]}
    return props


PARSERS: dict[str, Callable[[str], dict[str, Any]]] = {
    "cloudformation": from_cloudformation,
    "terraform": from_terraform,
    "cdk-json": from_cdk_json,
}


def create_from_properties(client: Any, props: dict[str, Any]) -> None:
    """What CloudFormation / Terraform do with these properties: CreateTable, then TTL."""
    params = {k: v for k, v in props.items() if k not in ("TimeToLiveSpecification",)}
    if "StreamSpecification" in params:
        params["StreamSpecification"] = {"StreamEnabled": True, **params["StreamSpecification"]}
    client.create_table(**params)
    client.get_waiter("table_exists").wait(TableName=props["TableName"])
    ttl = props.get("TimeToLiveSpecification")
    if ttl is not None:
        client.update_time_to_live(TableName=props["TableName"], TimeToLiveSpecification=ttl)


def emitted(runner: CliRunner, fmt: str, name: str, *extra: str) -> dict[str, Any]:
    result = invoke(
        runner, "iac", "--models", "tests.models", "--format", fmt, "--table", name, *extra
    )
    assert result.exit_code == 0, result.output
    return PARSERS[fmt](result.output)


def check(runner: CliRunner, endpoint: str, name: str, *extra: str) -> Result:
    return invoke(
        runner,
        "check",
        "--models",
        "tests.models",
        "--table",
        name,
        "--endpoint-url",
        endpoint,
        *extra,
    )


# --------------------------------------------------------------------------- round trip


@pytest.mark.parametrize("fmt", sorted(PARSERS))
def test_a_table_created_from_the_emitted_code_passes_check(
    runner: CliRunner, dynamodb_local: str, table_name: str, fmt: str
) -> None:
    props = emitted(runner, fmt, table_name, "--streams", "NEW_AND_OLD_IMAGES")
    assert props["TableName"] == table_name
    assert props["TimeToLiveSpecification"] == {"AttributeName": "_ttl", "Enabled": True}
    assert {g["IndexName"] for g in props["GlobalSecondaryIndexes"]} == {"gsi1"}
    client = boto_client(dynamodb_local)
    create_from_properties(client, props)
    desc = client.describe_table(TableName=table_name)["Table"]
    assert desc["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"

    result = check(runner, dynamodb_local, table_name, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == {"table": table_name, "fits": True, "differences": []}
    text = check(runner, dynamodb_local, table_name)
    assert text.exit_code == 0 and f"table {table_name!r} fits the models" in text.output


@pytest.mark.parametrize("fmt", sorted(PARSERS))
def test_a_table_that_differs_from_the_emitted_code_fails_check(
    runner: CliRunner, dynamodb_local: str, table_name: str, fmt: str
) -> None:
    props = emitted(runner, fmt, table_name)
    [index] = props["GlobalSecondaryIndexes"]
    index["Projection"] = {"ProjectionType": "KEYS_ONLY"}  # deliberately different
    del props["TimeToLiveSpecification"]
    create_from_properties(boto_client(dynamodb_local), props)

    result = check(runner, dynamodb_local, table_name, "--json")
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["fits"] is False
    assert [d["part"] for d in report["differences"]] == ["index gsi1", "TTL"]
    assert "projecting KEYS_ONLY" in report["differences"][0]["found"]
    assert report["differences"][1]["fixable"] is True

    text = check(runner, dynamodb_local, table_name)
    assert text.exit_code == 1
    assert "does not fit the models" in text.output
    assert "index gsi1" in text.output and "KEYS_ONLY" in text.output


def test_check_of_a_missing_table_exits_1_naming_the_fix(
    runner: CliRunner, dynamodb_local: str, table_name: str
) -> None:
    result = check(runner, dynamodb_local, table_name, "--json")
    assert result.exit_code == 1
    [difference] = json.loads(result.output)["differences"]
    assert difference["part"] == "table" and "create_table" in difference["fix"]


def test_check_exit_code_is_1_from_a_real_shell(dynamodb_local: str, table_name: str) -> None:
    args = [
        sys.executable,
        "-m",
        "dynorm",
        "check",
        "--models",
        "tests.models",
        "--table",
        table_name,
        "--endpoint-url",
        dynamodb_local,
    ]
    missing = subprocess.run(
        args, cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=120
    )
    assert missing.returncode == 1, missing.stderr
    assert "Traceback" not in missing.stderr and "no such table" in missing.stdout
    create = [
        sys.executable,
        "-m",
        "dynorm",
        "create-table",
        "--models",
        "tests.models",
        "--table",
        table_name,
        "--endpoint-url",
        dynamodb_local,
    ]
    subprocess.run(create, cwd=ROOT, env=clean_env(), check=True, capture_output=True, timeout=120)
    fits = subprocess.run(
        args, cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=120
    )
    assert fits.returncode == 0, fits.stdout + fits.stderr


# --------------------------------------------------------------------------- Python API


def test_table_properties_are_create_table_s_parameters_plus_ttl_and_stream() -> None:
    from dynorm._table import table_definition

    props = table_properties("shop", streams="KEYS_ONLY")
    base = {
        k: v
        for k, v in props.items()
        if k not in ("TimeToLiveSpecification", "StreamSpecification")
    }
    assert base == table_definition("shop")
    assert props["StreamSpecification"] == {"StreamViewType": "KEYS_ONLY"}


def test_only_the_chosen_models_shape_the_emitted_table() -> None:
    # Counter has no index and no TTL: the table has neither.
    props = from_cloudformation(table_as_code("cloudformation", "shop", [test_models.Counter]))
    assert "GlobalSecondaryIndexes" not in props and "TimeToLiveSpecification" not in props


def test_an_unknown_format_or_stream_view_type_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="cloudformation, terraform, cdk-json"):
        table_as_code("pulumi", "shop")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="NEW_AND_OLD_IMAGES"):
        table_properties("shop", streams="EVERYTHING")


def test_iac_writes_a_file_with_output(runner: CliRunner, tmp_path: Path) -> None:
    target = tmp_path / "table.json"
    result = invoke(runner, "iac", "--models", "tests.models", "--table", "shop", "-o", str(target))
    assert result.exit_code == 0
    assert from_cloudformation(target.read_text())["TableName"] == "shop"
