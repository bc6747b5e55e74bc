"""A cold start's public names and the lean transport's start: every name of `dynorm.__all__`
resolves (some load on first use), and the lean transport starts without a boto3 client
exactly where botocore's client would resolve the same endpoint and HTTP session.

What `import dynorm` must not load: tests/integration/test_cold_start.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError

import dynorm
from dynorm._config import Settings
from dynorm._endpoint import LeanSession, lean_endpoint, lean_http_session, session_for
from dynorm._http import IDEMPOTENT_MEMBERS, LEAN_OPERATIONS


def _fresh(code: str) -> Any:
    """Run `code` in a new interpreter; it prints one JSON value, returned here."""
    done = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_every_public_name_resolves_in_a_fresh_process() -> None:
    """`from dynorm import *` in a new interpreter: the names loaded on first use included."""
    missing = _fresh(
        "import json, dynorm; from dynorm import *; "
        "print(json.dumps([n for n in dynorm.__all__ if n not in globals()]))"
    )
    assert missing == []


def test_a_lazy_name_is_the_object_its_module_defines() -> None:
    from dynorm import _table, _transactions, versioning

    assert dynorm.create_table is _table.create_table
    assert dynorm.transaction is _transactions.transaction
    assert dynorm.VersionedModel is versioning.VersionedModel
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        dynorm.nope  # noqa: B018


def test_idempotent_members_match_the_service_model() -> None:
    """The tokens the lean transport fills without the model are the model's own."""
    model = botocore.session.Session().get_service_model("dynamodb")
    for operation in LEAN_OPERATIONS:
        expected = tuple(model.operation_model(operation).idempotent_members)
        assert IDEMPOTENT_MEMBERS.get(operation, ()) == expected, operation


def _aws_regions() -> list[str]:
    data = botocore.session.Session().get_component("data_loader").load_data("endpoints")
    aws = next(p for p in data["partitions"] if p["partition"] == "aws")
    return sorted(aws["regions"])


def _client(session: Any, region: str, endpoint_url: str | None = None) -> Any:
    return session.create_client(
        "dynamodb",
        region_name=region,
        endpoint_url=endpoint_url,
        aws_access_key_id="k",
        aws_secret_access_key="s",
        config=Config(max_pool_connections=7, connect_timeout=3, read_timeout=9),
    )


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No AWS configuration from the machine; returns the config file path to write."""
    for name in (
        "AWS_PROFILE",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_USE_FIPS_ENDPOINT",
        "AWS_USE_DUALSTACK_ENDPOINT",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_DYNAMODB",
        "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
        "AWS_CA_BUNDLE",
        "REQUESTS_CA_BUNDLE",
        "BOTOCORE_TCP_KEEPALIVE",
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "NO_PROXY",
        "no_proxy",
    ):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "config"
    config.write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    return config


def test_the_lean_endpoint_of_every_aws_region_is_the_clients(clean_env: Path) -> None:
    session = botocore.session.Session()
    regions = _aws_regions()
    assert "us-east-1" in regions and len(regions) > 20
    for region in regions:
        got = lean_endpoint(session, region, None, "orders")
        assert got is not None, region  # ordinary regions start without the client
        assert got.rstrip("/") == _client(session, region).meta.endpoint_url.rstrip("/")


@pytest.mark.parametrize(
    ("region", "env", "config", "table"),
    [
        ("cn-north-1", {}, "", "orders"),
        ("us-gov-west-1", {}, "", "orders"),
        ("us-iso-east-1", {}, "", "orders"),
        ("eusc-de-east-1", {}, "", "orders"),
        ("local", {}, "", "orders"),
        ("us-east-1", {"AWS_USE_FIPS_ENDPOINT": "true"}, "", "orders"),
        ("eu-west-1", {"AWS_USE_DUALSTACK_ENDPOINT": "true"}, "", "orders"),
        ("eu-west-1", {"AWS_ENDPOINT_URL": "http://gateway.test:81"}, "", "orders"),
        ("eu-west-1", {"AWS_ENDPOINT_URL_DYNAMODB": "http://ddb.test:82"}, "", "orders"),
        ("eu-west-1", {}, "[default]\nuse_fips_endpoint = true\n", "orders"),
        ("eu-west-1", {}, "[default]\nendpoint_url = http://profile.test:83\n", "orders"),
        ("us-east-1", {}, "", "arn:aws:dynamodb:us-east-1:123456789012:table/orders"),
    ],
)
def test_anything_unusual_falls_back_to_the_clients_own_resolution(
    clean_env: Path,
    monkeypatch: pytest.MonkeyPatch,
    region: str,
    env: dict[str, str],
    config: str,
    table: str,
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    clean_env.write_text(config)
    session = botocore.session.Session()
    assert lean_endpoint(session, region, None, table) is None


def test_an_ignored_configured_endpoint_does_not_stop_the_lean_start(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_DYNAMODB", "http://ddb.test:82")
    monkeypatch.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
    session = botocore.session.Session()
    got = lean_endpoint(session, "eu-west-1", None, "orders")
    assert got == _client(session, "eu-west-1").meta.endpoint_url.rstrip("/")


def test_an_explicit_endpoint_is_taken_as_it_is(clean_env: Path) -> None:
    session = botocore.session.Session()
    url = "http://127.0.0.1:8000"
    assert lean_endpoint(session, "local", url, "orders") == url
    assert _client(session, "local", url).meta.endpoint_url == url


_SESSION_FACTS = ("_verify", "_socket_options", "_max_pool_connections", "_cert_file")


@pytest.mark.parametrize(
    "env",
    [
        {},
        {"HTTPS_PROXY": "http://proxy.test:3128"},
        {"HTTPS_PROXY": "http://proxy.test:3128", "NO_PROXY": "dynamodb.eu-west-1.amazonaws.com"},
        {"REQUESTS_CA_BUNDLE": "/tmp/requests-ca.pem"},
        {"AWS_CA_BUNDLE": "/tmp/aws-ca.pem", "REQUESTS_CA_BUNDLE": "/tmp/requests-ca.pem"},
        {"BOTOCORE_TCP_KEEPALIVE": "true"},
    ],
)
def test_the_lean_http_session_is_the_one_the_client_builds(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    session = botocore.session.Session()
    endpoint = lean_endpoint(session, "eu-west-1", None, "orders")
    assert endpoint is not None
    settings = Settings(max_pool_connections=7, connect_timeout=3, read_timeout=9)
    lean = lean_http_session(session, endpoint, settings)
    real = _client(session, "eu-west-1")._endpoint.http_session
    for name in _SESSION_FACTS:
        assert getattr(lean, name) == getattr(real, name), name
    assert str(lean._timeout) == str(real._timeout)  # urllib3's Timeout has no __eq__
    url = endpoint + "/"
    assert lean._proxy_config.proxy_url_for(url) == real._proxy_config.proxy_url_for(url)


def _handler_tree(events: Any) -> list[tuple[str, str, str]]:
    """Every handler of an event emitter: (event path, first/middle/last, handler name)."""
    out: list[tuple[str, str, str]] = []

    def walk(node: dict[str, Any], path: str) -> None:
        values = node.get("values")
        if values is not None:
            for kind in ("first", "middle", "last"):
                for handler in getattr(values, kind, []):
                    name = getattr(handler, "__qualname__", type(handler).__qualname__)
                    out.append((path, kind, name))
        for chunk, child in node["children"].items():
            walk(child, f"{path}.{chunk}")

    walk(events._emitter._handlers._root, "")
    return out


def test_a_lean_session_has_botocores_handlers_once_it_makes_a_client(clean_env: Path) -> None:
    """The built-in handlers the lean session skips at first are all there for any client."""
    full, lean = botocore.session.Session(), session_for("http")
    assert isinstance(lean, LeanSession) and _handler_tree(lean._events) == []
    assert lean.get_credentials() is None and full.get_credentials() is None  # no client needed
    assert _handler_tree(lean._events) == []
    kwargs = {"region_name": "us-east-1", "aws_access_key_id": "a", "aws_secret_access_key": "b"}
    ours, theirs = (
        lean.create_client("dynamodb", **kwargs),
        full.create_client("dynamodb", **kwargs),
    )
    assert len(_handler_tree(full._events)) > 100
    assert _handler_tree(lean._events) == _handler_tree(full._events)
    assert _handler_tree(ours.meta.events) == _handler_tree(theirs.meta.events)
    lean.create_client("sts", **kwargs)  # registered once, not again
    assert _handler_tree(lean._events) == _handler_tree(full._events)


def test_a_credential_providers_own_client_gets_the_built_in_handlers(
    clean_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An assumed-role profile makes an STS client from the session: a complete one."""
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:9")  # refused at once
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    (tmp_path / "credentials").write_text(
        "[base]\naws_access_key_id = a\naws_secret_access_key = b\n"
    )
    clean_env.write_text(
        "[profile role]\nrole_arn = arn:aws:iam::123456789012:role/r\nsource_profile = base\n"
        "region = us-east-1\n"
    )
    lean = LeanSession(profile="role")
    made: list[str] = []
    real = botocore.session.Session.create_client

    def spy(self: Any, service_name: str, *args: Any, **kwargs: Any) -> Any:
        made.append(service_name)
        assert len(_handler_tree(self._events)) > 100  # registered before the client
        return real(self, service_name, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(botocore.session.Session, "create_client", spy)
        credentials = lean.get_credentials()  # deferred: the STS call happens on first use
        assert credentials is not None
        with pytest.raises(EndpointConnectionError):  # no STS here; its client was made
            credentials.get_frozen_credentials()
    assert made == ["sts"]
