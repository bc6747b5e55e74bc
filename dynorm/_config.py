"""Process-wide configuration: which table, endpoint and client dynorm talks to."""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Final

from ._connection import Connection
from .exceptions import ConfigurationError


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
    transport: str = "boto3"
    max_pool_connections: int = 50
    connect_timeout: float = 60.0
    read_timeout: float = 60.0
    blob_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_client: Any = None


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


_TRANSPORTS = ("boto3", "http")


def check_option(name: str, value: Any) -> Any:
    """Return a client option's value if it is valid, else raise ConfigurationError."""
    if name == "transport":
        if value not in _TRANSPORTS:
            raise ConfigurationError(
                f"Cannot use transport={value!r}; choose 'boto3' or 'http'.", code="config"
            )
        return value
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if name in ("max_attempts", "max_pool_connections"):
        if not (number and value == int(value) and value >= 1):
            raise ConfigurationError(f"{name} must be a whole number of at least 1.", code="config")
        return int(value)
    if not (number and value > 0):
        raise ConfigurationError(f"{name} must be a number of seconds above 0.", code="config")
    return float(value)


def _env_transport() -> str:
    value = os.environ.get("DYNORM_TRANSPORT") or "boto3"
    if value not in _TRANSPORTS:
        raise ConfigurationError(
            f"Cannot use $DYNORM_TRANSPORT={value!r}; set it to 'boto3' or 'http'.",
            code="config",
        )
    return value


def _env_table() -> str:
    name = os.environ.get("DYNORM_TABLE") or "dynorm"
    return check_table_name(name, "$DYNORM_TABLE")


def _from_env() -> Settings:
    return Settings(
        table_name=_env_table(),
        endpoint_url=os.environ.get("DYNORM_ENDPOINT_URL") or None,
        transport=_env_transport(),
        blob_bucket=os.environ.get("DYNORM_BLOB_BUCKET") or None,
        s3_endpoint_url=os.environ.get("DYNORM_S3_ENDPOINT_URL") or None,
    )


def configure(
    table_name: str | None | _NotGiven = NOT_GIVEN,
    endpoint_url: str | None | _NotGiven = NOT_GIVEN,
    region_name: str | None | _NotGiven = NOT_GIVEN,
    client: Any = NOT_GIVEN,
    cursor_secret: str | bytes | None | _NotGiven = NOT_GIVEN,
    max_attempts: int | _NotGiven = NOT_GIVEN,
    transport: str | _NotGiven = NOT_GIVEN,
    max_pool_connections: int | _NotGiven = NOT_GIVEN,
    connect_timeout: float | _NotGiven = NOT_GIVEN,
    read_timeout: float | _NotGiven = NOT_GIVEN,
    blob_bucket: str | None | _NotGiven = NOT_GIVEN,
    s3_endpoint_url: str | None | _NotGiven = NOT_GIVEN,
    s3_client: Any = NOT_GIVEN,
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
        transport: How dynorm's item requests travel: `"boto3"` (the boto3 client's own
            pipeline, the default) or `"http"` (the lean path: the same endpoint, SigV4
            signer, credentials and standard retries, without botocore's per-request
            pipeline; see the Performance page). Also `$DYNORM_TRANSPORT`. A `client` of
            your own always uses `"boto3"`.
        max_pool_connections: Keep-alive connections per client (default 50): at least the
            number of threads (or async tasks) that send at once.
        connect_timeout: Seconds to wait for a connection (default 60, as botocore).
        read_timeout: Seconds to wait for an answer (default 60, as botocore).
        blob_bucket: The S3 bucket of blob fields (`fields.Blob()`) whose model has no
            `Meta.blob_bucket` ($DYNORM_BLOB_BUCKET).
        s3_endpoint_url: An S3-compatible endpoint for blobs ($DYNORM_S3_ENDPOINT_URL);
            None for AWS.
        s3_client: Your own boto3 S3 client for blobs; `s3_endpoint_url` is then ignored.

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
        options = {
            "max_attempts": max_attempts,
            "transport": transport,
            "max_pool_connections": max_pool_connections,
            "connect_timeout": connect_timeout,
            "read_timeout": read_timeout,
        }
        for name, value in options.items():
            if not isinstance(value, _NotGiven):
                setattr(current, name, check_option(name, value))
        if not isinstance(blob_bucket, _NotGiven):
            current.blob_bucket = blob_bucket
        if not isinstance(s3_endpoint_url, _NotGiven):
            current.s3_endpoint_url = s3_endpoint_url
        if not isinstance(s3_client, _NotGiven):
            current.s3_client = s3_client
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
    """Return the Connection of this context: the `using()` table's, else the default."""
    override = _override.get()
    if override is not None:
        return override.connection()
    return get_connection_default()


def get_connection_default() -> Connection:
    """Return the default table's Connection, creating its client on first use."""
    global _connection
    conn = _connection
    if conn is not None:
        return conn
    settings = get_settings()
    with _lock:
        if _connection is None:
            _connection = Connection.from_settings(settings)
        return _connection


class Table:
    """A DynamoDB table that models, queries or a block of code can use.

    Options not given come from `configure()` when the table is first used: a `Table("x")`
    shares the default client and only names another table; with its own `endpoint_url`,
    `region_name`, `client` or `max_attempts` it gets a client of its own.

    Args:
        name: The DynamoDB table name (3 to 255 letters, digits, `_`, `-`, `.`).
        endpoint_url: Another endpoint for this table (None: AWS).
        region_name: Another region for this table.
        client: A boto3 DynamoDB client of your own for this table.
        max_attempts: Attempts per request for the client dynorm creates for this table.
        transport: `"boto3"` or `"http"` for this table's client (see `configure()`).
        max_pool_connections: Keep-alive connections of this table's client.
        connect_timeout: Seconds to wait for a connection.
        read_timeout: Seconds to wait for an answer.
        managed: False for a table dynorm did not create: `create_table()` and
            `delete_table()` refuse it, `dynorm check` compares it with the models.
        pk_attribute: The partition-key attribute name of every model in it (default `"pk"`).
        sk_attribute: The sort-key attribute name (default `"sk"`); None for a table with a
            partition key only.
        type_attribute: The entity-type attribute (default `"_type"`); None: every item in a
            model's key range is that model (reads check no type).
        version_attribute: The optimistic-locking attribute (default `"version"`), e.g. an
            existing numeric `"Version"`; None: `save()` is last-writer-wins.
        write_token_attribute: The attribute of dynorm's write token (default `"_wtok"`);
            None: no token is stored (for a library that refuses unknown attributes), and
            a write whose response was lost is recognised by its content.

    A model's `Meta` may override each of the last six (`Meta.pk_attribute = ...`).

    Raises:
        ConfigurationError: A table name DynamoDB would refuse.
    """

    def __init__(
        self,
        name: str,
        *,
        endpoint_url: str | None | _NotGiven = NOT_GIVEN,
        region_name: str | None | _NotGiven = NOT_GIVEN,
        client: Any = NOT_GIVEN,
        max_attempts: int | _NotGiven = NOT_GIVEN,
        transport: str | _NotGiven = NOT_GIVEN,
        max_pool_connections: int | _NotGiven = NOT_GIVEN,
        connect_timeout: float | _NotGiven = NOT_GIVEN,
        read_timeout: float | _NotGiven = NOT_GIVEN,
        managed: bool | _NotGiven = NOT_GIVEN,
        pk_attribute: str | _NotGiven = NOT_GIVEN,
        sk_attribute: str | None | _NotGiven = NOT_GIVEN,
        type_attribute: str | None | _NotGiven = NOT_GIVEN,
        version_attribute: str | None | _NotGiven = NOT_GIVEN,
        write_token_attribute: str | None | _NotGiven = NOT_GIVEN,
    ) -> None:
        self.name = check_table_name(name, "Table(name)")
        #: The physical names given here (the models' `Meta` may override each).
        self.layout: dict[str, Any] = {
            key: value
            for key, value in (
                ("managed", managed),
                ("pk_attribute", pk_attribute),
                ("sk_attribute", sk_attribute),
                ("type_attribute", type_attribute),
                ("version_attribute", version_attribute),
                ("write_token_attribute", write_token_attribute),
            )
            if not isinstance(value, _NotGiven)
        }
        self._own: dict[str, Any] = {
            key: value
            for key, value in (
                ("endpoint_url", endpoint_url),
                ("region_name", region_name),
                ("client", client),
            )
            if not isinstance(value, _NotGiven)
        }
        for key, option in (
            ("max_attempts", max_attempts),
            ("transport", transport),
            ("max_pool_connections", max_pool_connections),
            ("connect_timeout", connect_timeout),
            ("read_timeout", read_timeout),
        ):
            if not isinstance(option, _NotGiven):
                self._own[key] = check_option(key, option)
        self._lock = threading.Lock()
        self._built: tuple[object, Connection] | None = None

    def connection(self) -> Connection:
        """The Connection this table's requests go through (created on first use)."""
        # A table without options of its own follows the default client, even when
        # configure() replaces it later.
        base: object = get_connection_default() if not self._own else get_settings()
        built = self._built
        if built is not None and built[0] is base:
            return built[1]
        with self._lock:
            if self._own:
                settings = dataclasses.replace(get_settings(), table_name=self.name, **self._own)
                conn = Connection.from_settings(settings)
            else:
                assert isinstance(base, Connection)
                conn = base.for_table(self.name)
            self._built = (base, conn)
            return conn

    def __repr__(self) -> str:
        return f"Table({self.name!r})"

    def __copy__(self) -> Table:
        return self  # a Table names a table and holds its client: copies share both

    def __deepcopy__(self, memo: dict[int, Any]) -> Table:
        return self

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled by name and options. A client of its own cannot be pickled, and dropping
        # it would send the table's requests through another client (region, account).
        if "client" in self._own:
            raise ConfigurationError(
                f"Cannot pickle Table({self.name!r}): it has a client of its own, which "
                "cannot be pickled. Give it endpoint_url/region_name instead of a client, or "
                "do not pickle objects read from it.",
                code="config",
            )
        return (_unpickle_table, (self.name, dict(self._own)))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Table) and (other.name, other._own) == (self.name, self._own)

    def __hash__(self) -> int:
        return hash(self.name)


def _unpickle_table(name: str, own: dict[str, Any]) -> Table:
    return Table(name, **own)


#: The table of the current thread / asyncio task (`dynorm.using`), else the default.
_override: ContextVar[Table | None] = ContextVar("dynorm_table", default=None)


def as_table(table: Table | str) -> Table:
    """A Table for a Table or a table name."""
    if isinstance(table, Table):
        return table
    if isinstance(table, str):
        return Table(table)
    raise ConfigurationError(
        f"Cannot use a {type(table).__name__} as a table; pass dynorm.Table(...) or a name.",
        code="config",
    )


@contextmanager
def using(table: Table | str) -> Iterator[Table]:
    """Send this block's requests to `table` (this thread or asyncio task only).

    Models whose `Meta.table` names a table keep it, and `qs.using(...)` on a query wins
    over both; everything else (`create_table()` included) uses `table` inside the block.
    Other threads and tasks are never affected, and `configure()` elsewhere does not move
    the block to another table.
    """
    chosen = as_table(table)
    token = _override.set(chosen)
    try:
        yield chosen
    finally:
        _override.reset(token)


class _OwnTable:
    """The `table` of a request that goes to the model's own table whatever `using()` says.

    That is the model's `Meta.table`, else the default table. A loaded instance writes back
    there when it was read from (or saved to) it: a `using()` block active at the write must
    not send it to another table.
    """

    __slots__ = ()

    def __repr__(self) -> str:
        return "OWN_TABLE"

    def __reduce__(self) -> str:
        return "OWN_TABLE"


OWN_TABLE: Final = _OwnTable()

#: What a request names as its table: a Table, a table name, the model's own table, or None
#: (the rule: the model's `Meta.table`, else this context's `using()` table, else the default).
TableChoice = Table | str | _OwnTable | None


def _chosen_table(model: type[Any] | None, table: TableChoice) -> Table | str | None:
    """`table` if given, else the model's `Meta.table`, else this context's `using()` table."""
    own: Table | None = None if model is None else model._meta.table
    if isinstance(table, _OwnTable):
        return own
    if table is not None:
        return table
    return own if own is not None else _override.get()


def binding(model: type[Any], table: TableChoice) -> Table | None:
    """The table instances of `model` read or written with `table` belong to.

    None when that is the model's own table (`OWN_TABLE`): only other tables are remembered.
    """
    chosen = _chosen_table(model, table)
    if chosen is None or chosen is model._meta.table:
        return None
    return as_table(chosen)


def connection_for(model: type[Any] | None = None, table: TableChoice = None) -> Connection:
    """The Connection for a request.

    `table` if given, else the model's `Meta.table`, else the `using()` table of this
    context, else the default table.
    """
    chosen = _chosen_table(model, table)
    return get_connection_default() if chosen is None else as_table(chosen).connection()


def table_name_for(model: type[Any] | None = None, table: TableChoice = None) -> str:
    """The name of the table `connection_for` would pick, without creating a client."""
    chosen = _chosen_table(model, table)
    return get_settings().table_name if chosen is None else as_table(chosen).name


def snapshot() -> tuple[Settings | None, Connection | None]:
    """Return the current configuration state (the pytest plugin restores it after a test)."""
    return _settings, _connection


def restore(state: tuple[Settings | None, Connection | None]) -> None:
    """Restore a state returned by `snapshot()`."""
    global _settings, _connection
    with _lock:
        _settings, _connection = state
