"""The table the models need, as code: CloudFormation, Terraform or CDK (`dynorm iac`).

Every format is rendered from `table_definition()`, the CreateTable parameters that
`create_table()` sends, so the emitted table is the one `check_table()` accepts.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any, Literal

from .._table import _chosen, table_definition
from ..exceptions import ConfigurationError
from ..models import Model

__all__ = ["IAC_FORMATS", "STREAM_VIEW_TYPES", "IacFormat", "table_as_code", "table_properties"]

IacFormat = Literal["cloudformation", "terraform", "cdk-json"]

#: The formats `table_as_code()` writes.
IAC_FORMATS: tuple[IacFormat, ...] = ("cloudformation", "terraform", "cdk-json")

#: What a stream may carry (`StreamSpecification.StreamViewType`).
STREAM_VIEW_TYPES = ("KEYS_ONLY", "NEW_IMAGE", "OLD_IMAGE", "NEW_AND_OLD_IMAGES")


def table_properties(
    table_name: str,
    models: Iterable[type[Model]] | None = None,
    *,
    streams: str | None = None,
) -> dict[str, Any]:
    """The `AWS::DynamoDB::Table` properties the models need (CloudFormation's names).

    Args:
        table_name: The table's name.
        models: The models the table serves; default every registered model.
        streams: A stream view type (`"NEW_AND_OLD_IMAGES"`, ...) to enable a stream;
            None: no stream.
    """
    chosen = _chosen(models)
    if streams is not None and streams not in STREAM_VIEW_TYPES:
        raise ConfigurationError(
            f"Cannot emit a stream of view type {streams!r}: use one of "
            f"{', '.join(STREAM_VIEW_TYPES)}.",
            code="config",
        )
    unmanaged = sorted(m._meta.model_name for m in chosen if not m._meta.layout.managed)
    if unmanaged:
        raise ConfigurationError(
            f"Cannot emit table {table_name!r} as code for {', '.join(unmanaged)}: their "
            "table is not managed by dynorm (managed=False); describe it in your own "
            "infrastructure code, or leave those models out.",
            code="config",
        )
    props = table_definition(table_name, chosen)
    ttl = [m._meta.layout.ttl for m in chosen if m._meta.ttl_field]
    if ttl:
        props["TimeToLiveSpecification"] = {"AttributeName": ttl[0], "Enabled": True}
    if streams is not None:
        props["StreamSpecification"] = {"StreamViewType": streams}
    return props


def table_as_code(
    format: IacFormat,
    table_name: str,
    models: Iterable[type[Model]] | None = None,
    *,
    streams: str | None = None,
    resource_name: str = "DynormTable",
) -> str:
    """Render the table the models need as infrastructure code.

    Args:
        format: `"cloudformation"` (a JSON template with one `AWS::DynamoDB::Table`),
            `"terraform"` (an `aws_dynamodb_table` resource in HCL) or `"cdk-json"` (the
            props of CDK's `CfnTable`, camelCase JSON).
        table_name: The table's name.
        models: The models the table serves; default every registered model.
        streams: A stream view type to enable a stream; None: no stream.
        resource_name: The logical name of the resource (CloudFormation) or its label
            (Terraform, in snake_case: `dynorm_table`).

    Returns:
        The text, ending with a newline.
    """
    props = table_properties(table_name, models, streams=streams)
    if format == "cloudformation":
        template = {
            "AWSTemplateFormatVersion": "2010-09-09",
            "Description": "The DynamoDB table of the dynorm models (dynorm iac).",
            "Resources": {resource_name: {"Type": "AWS::DynamoDB::Table", "Properties": props}},
        }
        return json.dumps(template, indent=2) + "\n"
    if format == "cdk-json":
        return json.dumps(_camel(props), indent=2) + "\n"
    if format == "terraform":
        return _terraform(props, re.sub(r"(?<!^)(?=[A-Z])", "_", resource_name).lower())
    raise ConfigurationError(
        f"Cannot emit the table as {format!r}: use one of {', '.join(IAC_FORMATS)}.",
        code="config",
    )


def _camel(value: Any) -> Any:
    """CloudFormation's PascalCase property names as CDK's camelCase ones."""
    if isinstance(value, dict):
        return {k[:1].lower() + k[1:]: _camel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_camel(v) for v in value]
    return value


def _hcl(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)  # HCL strings share JSON's escapes
    if isinstance(value, list):
        return "[" + ", ".join(_hcl(v) for v in value) + "]"
    return str(value)


def _block(name: str, args: dict[str, Any], indent: str) -> list[str]:
    lines = [f"{indent}{name} {{"]
    width = max(len(k) for k in args)
    lines += [f"{indent}  {k.ljust(width)} = {_hcl(v)}" for k, v in args.items()]
    return [*lines, f"{indent}}}"]


def _terraform(props: dict[str, Any], label: str) -> str:
    keys = {k["KeyType"]: k["AttributeName"] for k in props["KeySchema"]}
    top: dict[str, Any] = {
        "name": props["TableName"],
        "billing_mode": props["BillingMode"],
        "hash_key": keys["HASH"],
    }
    if "RANGE" in keys:  # a table with a partition key only has none
        top["range_key"] = keys["RANGE"]
    stream = props.get("StreamSpecification")
    if stream is not None:
        top["stream_enabled"] = True
        top["stream_view_type"] = stream["StreamViewType"]
    width = max(len(k) for k in top)
    lines = [f'resource "aws_dynamodb_table" {json.dumps(label)} {{']
    lines += [f"  {k.ljust(width)} = {_hcl(v)}" for k, v in top.items()]
    for attr in props["AttributeDefinitions"]:
        lines += [
            "",
            *_block(
                "attribute", {"name": attr["AttributeName"], "type": attr["AttributeType"]}, "  "
            ),
        ]
    indexes = [("global", i) for i in props.get("GlobalSecondaryIndexes", [])]
    indexes += [("local", i) for i in props.get("LocalSecondaryIndexes", [])]
    for kind, index in indexes:
        ikeys = {k["KeyType"]: k["AttributeName"] for k in index["KeySchema"]}
        args: dict[str, Any] = {"name": index["IndexName"]}
        if kind == "global":  # a local index shares the table's hash key
            args["hash_key"] = ikeys["HASH"]
        if "RANGE" in ikeys:
            args["range_key"] = ikeys["RANGE"]
        args["projection_type"] = index["Projection"]["ProjectionType"]
        if index["Projection"].get("NonKeyAttributes"):
            args["non_key_attributes"] = list(index["Projection"]["NonKeyAttributes"])
        lines += ["", *_block(f"{kind}_secondary_index", args, "  ")]
    ttl = props.get("TimeToLiveSpecification")
    if ttl is not None:
        lines += [
            "",
            *_block(
                "ttl", {"attribute_name": ttl["AttributeName"], "enabled": ttl["Enabled"]}, "  "
            ),
        ]
    return "\n".join([*lines, "}"]) + "\n"
