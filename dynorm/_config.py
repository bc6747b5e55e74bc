"""Process-wide configuration: which table, endpoint and client dynorm talks to."""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from .exceptions import ConfigurationError

if TYPE_CHECKING:
    from ._connection import Connection


class _NotGiven:
    """Sentinel type for "argument not passed" (distinct from an explicit None)."""

    def __repr__(self) -> str:
        return "NOT_GIVEN"


NOT_GIVEN: Final = _NotGiven()


@dataclass
class Settings:
    """The resolved configuration; build a Connection from it on first use."""

    table_name: str = "dynorm"
    endpoint_url: str | None = None
    region_name: str | None = None
    client: Any = None
    cursor_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    cursor_secret_is_random: bool = True
    max_attempts: int = 3


_lock = threading.Lock()
_settings: Settings | None = None
_connection: Connection | None = None


_TABLE_NAME = re.compile(r"[A-Za-z0-9_.\-]{3,255}")


def check_table_name(name: object, source: str = "table_name") -> str:
    """Return `name` if DynamoDB accepts it as a table name, else raise ConfigurationError.

    DynamoDB's rule: 3 to 255 characters, each a letter, a digit, `_`, `-` or `.`.
    """
    if isinstance(name, str) and _TABLE_NAME.fullmatch(name):
        return name
    shown = (
        repr(name) if len(repr(name)) <= 80 else f"{repr(name)[:60]}... ({len(str(name))} chars)"
    )
    raise ConfigurationError(
        f"Cannot use {shown} as the table name ({source}): DynamoDB table names are 3 to 255 "
        "characters, each a letter, a digit, '_', '-' or '.'.",
        code="config",
    )


def _env_table() -> str:
    name = os.environ.get("DYNORM_TABLE") or "dynorm"
    return check_table_name(name, "$DYNORM_TABLE")


def _from_env() -> Settings:
    return Settings(
        table_name=_env_table(),
        endpoint_url=os.environ.get("DYNORM_ENDPOINT_URL") or None,
    )


def configure(
    table_name: str | None | _NotGiven = NOT_GIVEN,
    endpoint_url: str | None | _NotGiven = NOT_GIVEN,
    region_name: str | None | _NotGiven = NOT_GIVEN,
    client: Any = NOT_GIVEN,
    cursor_secret: str | bytes | None | _NotGiven = NOT_GIVEN,
    max_attempts: int | _NotGiven = NOT_GIVEN,
) -> None:
    """Configure the table and client dynorm uses; call again to change them.

    Arguments not passed keep their current value; defaults come from the environment
    (`$DYNORM_TABLE`, else "dynorm"; `$DYNORM_ENDPOINT_URL`). No boto3 client is created
    here: the first request creates one (or uses `client` when given).

    Args:
        table_name: The one DynamoDB table every model lives in.
        endpoint_url: A DynamoDB-compatible endpoint (DynamoDB Local, ...); None for AWS.
        region_name: The AWS region; None lets boto3 resolve it ($AWS_DEFAULT_REGION, the
            profile's region), then $AWS_REGION (which boto3 itself does not read).
        client: Your own boto3 DynamoDB client; endpoint and region are then ignored.
        cursor_secret: The HMAC key that signs pagination cursors. Without it, a random
            per-process secret is used, so cursors do not survive a restart or cross processes.
        max_attempts: Attempts per request for clients dynorm creates (botocore "standard"
            retry mode, which backs off with jitter).

    Raises:
        ConfigurationError: An invalid argument: a table name DynamoDB would refuse (3 to
            255 characters of letters, digits, `_`, `-`, `.`), a short cursor secret,
            `max_attempts` below 1.
    """
    global _settings, _connection
    with _lock:
        current = dataclasses.replace(_settings) if _settings is not None else _from_env()
        if not isinstance(table_name, _NotGiven):
            current.table_name = (
                check_table_name(table_name) if table_name is not None else _env_table()
            )
        if not isinstance(endpoint_url, _NotGiven):
            current.endpoint_url = endpoint_url
        if not isinstance(region_name, _NotGiven):
            current.region_name = region_name
        if not isinstance(client, _NotGiven):
            current.client = client
        if not isinstance(cursor_secret, _NotGiven):
            if cursor_secret is None:
                current.cursor_secret = secrets.token_bytes(32)
                current.cursor_secret_is_random = True
            else:
                raw = cursor_secret.encode() if isinstance(cursor_secret, str) else cursor_secret
                if len(raw) < 16:
                    raise ConfigurationError(
                        "Cannot use a cursor_secret shorter than 16 bytes; "
                        "pass at least 16 random bytes (e.g. secrets.token_urlsafe(32)).",
                        code="config",
                    )
                current.cursor_secret = raw
                current.cursor_secret_is_random = False
        if not isinstance(max_attempts, _NotGiven):
            if max_attempts < 1:
                raise ConfigurationError("max_attempts must be at least 1.", code="config")
            current.max_attempts = max_attempts
        _settings = current
        _connection = None


def get_settings() -> Settings:
    """Return the current settings, reading the environment on first use."""
    global _settings
    with _lock:
        if _settings is None:
            _settings = _from_env()
        return _settings


def get_connection() -> Connection:
    """Return the process-wide Connection, creating its client on first use."""
    global _connection
    conn = _connection
    if conn is not None:
        return conn
    settings = get_settings()
    with _lock:
        if _connection is None:
            from ._connection import Connection

            _connection = Connection.from_settings(settings)
        return _connection


def snapshot() -> tuple[Settings | None, Connection | None]:
    """Return the current configuration state (the pytest plugin restores it after a test)."""
    return _settings, _connection


def restore(state: tuple[Settings | None, Connection | None]) -> None:
    """Restore a state returned by `snapshot()`."""
    global _settings, _connection
    with _lock:
        _settings, _connection = state
