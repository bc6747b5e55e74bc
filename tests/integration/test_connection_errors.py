"""Errors before DynamoDB answers say what happened and what to do, against real sockets.

Nothing listening (a closed loopback port), a connection that is dropped after the request
was sent (a loopback server that reads and hangs up), no credentials, no region, a table name
DynamoDB would refuse, and DynamoDB Local's own messages, which quote stored values.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError
from hypothesis import given, settings, strategies as st

import dynorm
from dynorm import _config
from dynorm.exceptions import ConfigurationError, ServiceError
from tests.models import Counter
from tests.reliability.helpers import SENTINEL

NAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-"


@pytest.fixture
def restore_config() -> Iterator[None]:
    saved = _config.snapshot()
    try:
        yield
    finally:
        _config.restore(saved)


@pytest.fixture
def closed_endpoint() -> Iterator[str]:
    """A loopback URL whose port is bound but not listening: every connect is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def hang_up_endpoint() -> Iterator[tuple[str, list[int]]]:
    """A loopback server that reads each request and closes without answering."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    requests: list[int] = []
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                try:
                    if conn.recv(65536):
                        requests.append(1)
                except OSError:
                    pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}", requests
    finally:
        stop.set()
        thread.join(5)
        server.close()


# --------------------------------------------------------------------------- nothing listening


def test_nothing_listening_names_the_url_and_dynorm_local_and_a_read_was_not_applied(
    closed_endpoint: str, restore_config: None
) -> None:
    dynorm.configure(table_name="nobody-home", endpoint_url=closed_endpoint, max_attempts=2)
    with pytest.raises(ServiceError) as info:
        Counter.objects.get(name="x")
    message = str(info.value)
    assert closed_endpoint in message
    assert "Is DynamoDB Local running? Start it with `dynorm local`" in message
    assert "nothing was sent" in message and "2 attempt(s)" in message
    assert "may" not in message
    assert info.value.maybe_applied is False
    assert isinstance(info.value.__cause__, EndpointConnectionError)


def test_nothing_listening_for_a_write_says_it_was_not_applied(
    closed_endpoint: str, restore_config: None
) -> None:
    dynorm.configure(table_name="nobody-home", endpoint_url=closed_endpoint, max_attempts=1)
    with pytest.raises(ServiceError) as info:
        Counter.objects.create(name="x")
    assert "nothing was sent" in str(info.value) and "may" not in str(info.value)
    assert info.value.maybe_applied is False


def test_a_dropped_connection_after_sending_a_write_may_have_applied_it(
    hang_up_endpoint: tuple[str, list[int]], restore_config: None
) -> None:
    url, requests = hang_up_endpoint
    dynorm.configure(table_name="hangs-up", endpoint_url=url, max_attempts=2)
    with pytest.raises(ServiceError) as write:
        Counter.objects.create(name="x")
    assert requests, "the request reached the server"
    assert write.value.maybe_applied is True
    assert "may or may not have been applied" in str(write.value)
    assert "2 attempt(s)" in str(write.value)
    with pytest.raises(ServiceError) as read:
        Counter.objects.get(name="x")
    assert read.value.maybe_applied is False
    assert "may" not in str(read.value) and "Nothing was changed" in str(read.value)


# --------------------------------------------------------------------------- credentials


@pytest.fixture
def no_aws_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials or region anywhere boto3 looks (and no instance metadata lookups)."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_missing_credentials_is_its_own_error_and_nothing_is_sent(
    no_aws_environment: None,
    hang_up_endpoint: tuple[str, list[int]],
    restore_config: None,
) -> None:
    url, requests = hang_up_endpoint
    client = boto3.session.Session().client("dynamodb", endpoint_url=url, region_name="eu-west-1")
    dynorm.configure(table_name="no-credentials", client=client)
    with pytest.raises(ConfigurationError) as info:
        Counter.objects.create(name="x")
    message = str(info.value)
    assert "no AWS credentials were found, so nothing was sent" in message
    assert "AWS_PROFILE" in message and "configure(client=...)" in message
    assert "may" not in message
    assert isinstance(info.value.__cause__, NoCredentialsError)
    assert requests == []


# --------------------------------------------------------------------------- region


def test_aws_region_is_honoured_when_boto3_finds_no_region(
    no_aws_environment: None, monkeypatch: pytest.MonkeyPatch, restore_config: None
) -> None:
    assert boto3.session.Session().region_name is None  # boto3 alone ignores AWS_REGION ...
    monkeypatch.setenv("AWS_REGION", "eu-north-1")
    assert boto3.session.Session().region_name is None
    dynorm.configure(table_name="regional", endpoint_url=None, region_name=None)
    assert _config.get_connection().client.meta.region_name == "eu-north-1"  # ... dynorm not


def test_aws_default_region_and_configure_win_over_aws_region(
    no_aws_environment: None, monkeypatch: pytest.MonkeyPatch, restore_config: None
) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-north-1")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    dynorm.configure(table_name="regional", endpoint_url=None, region_name=None)
    assert _config.get_connection().client.meta.region_name == "ap-south-1"
    dynorm.configure(region_name="sa-east-1")
    assert _config.get_connection().client.meta.region_name == "sa-east-1"


def test_no_region_at_all_names_both_variables(
    no_aws_environment: None, restore_config: None
) -> None:
    dynorm.configure(table_name="regional", endpoint_url=None, region_name=None)
    with pytest.raises(ConfigurationError) as info:
        _config.get_connection()
    assert "$AWS_REGION" in str(info.value) and "$AWS_DEFAULT_REGION" in str(info.value)
    assert "configure(region_name=...)" in str(info.value)


# --------------------------------------------------------------------------- table names


@settings(
    max_examples=int(os.environ.get("DYNORM_HYPOTHESIS_EXAMPLES", "200")),
    deadline=None,
)
@given(st.text(alphabet=NAME_CHARS, min_size=3, max_size=255))
def test_table_names_dynamodb_accepts_are_accepted_at_configure(name: str) -> None:
    saved = _config.snapshot()
    try:
        dynorm.configure(table_name=name)
        assert _config.get_settings().table_name == name
    finally:
        _config.restore(saved)


@settings(
    max_examples=int(os.environ.get("DYNORM_HYPOTHESIS_EXAMPLES", "200")),
    deadline=None,
)
@given(
    st.one_of(
        st.text(alphabet=NAME_CHARS, max_size=2),
        st.text(alphabet=NAME_CHARS, min_size=256, max_size=400),
        st.text(min_size=3, max_size=40).filter(lambda s: any(c not in NAME_CHARS for c in s)),
    )
)
def test_table_names_dynamodb_refuses_are_refused_at_configure(name: str) -> None:
    saved = _config.snapshot()
    try:
        with pytest.raises(ConfigurationError) as info:
            dynorm.configure(table_name=name)
        assert info.value.code == "config"
        assert "3 to 255 characters" in str(info.value)
        assert _config.snapshot() == saved  # nothing changed
    finally:
        _config.restore(saved)


def test_the_short_name_from_the_report_is_refused_before_any_request(
    restore_config: None,
) -> None:
    with pytest.raises(ConfigurationError, match="'rt'"):
        dynorm.configure(table_name="rt")


def test_an_invalid_dynorm_table_variable_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, restore_config: None
) -> None:
    monkeypatch.setenv("DYNORM_TABLE", "my table")
    _config.restore((None, None))
    with pytest.raises(ConfigurationError, match=r"\$DYNORM_TABLE"):
        _config.get_settings()


# --------------------------------------------------------------------------- AWS messages


def test_dynamodb_messages_that_quote_values_stay_out_of_service_errors(dynorm_table: str) -> None:
    """DynamoDB Local: `Input collection [S3NT1NEL, S3NT1NEL] contains duplicates`."""
    conn = _config.get_connection()
    item = {"pk": {"S": "k"}, "sk": {"S": "k"}, "tags": {"SS": [SENTINEL, SENTINEL]}}
    with pytest.raises(ServiceError) as info:
        conn.send("PutItem", {"TableName": dynorm_table, "Item": item})
    err = info.value
    assert err.aws_code == "ValidationException"
    assert SENTINEL not in str(err) and SENTINEL not in repr(err)
    assert "ValidationException" in str(err) and "exc.response['Error']['Message']" in str(err)
    # For debugging, DynamoDB's own text is kept where a developer looks on purpose.
    assert err.response is not None and SENTINEL in err.response["Error"]["Message"]
    assert isinstance(err.__cause__, ClientError) and SENTINEL in str(err.__cause__)


def test_a_table_that_does_not_exist_still_says_create_table(
    dynamodb_local: str, restore_config: None
) -> None:
    dynorm.configure(table_name=f"missing-{uuid.uuid4().hex[:6]}", endpoint_url=dynamodb_local)
    with pytest.raises(ConfigurationError, match="create_table"):
        Counter.objects.get(name="x")
