"""Where the lean transport sends requests, found without building a boto3 client.

Creating a botocore client loads DynamoDB's service model, its endpoint rules and the
partition table and builds the client class: most of what a cold start (a Lambda's first
request) pays beyond the imports. The lean transport (`transport="http"`) needs only the
endpoint, the region and the credentials, so `lean_endpoint()` names the endpoint botocore
would resolve when that is certain: the `endpoint_url` given, or DynamoDB's standard
regional endpoint of an ordinary AWS region. Anything else (FIPS or dual-stack endpoints,
an endpoint configured in the environment or the AWS config file, another partition, a
table named by its ARN) returns None, and the connection builds the client as the boto3
transport does and takes its resolved endpoint. `ClientSlot` holds that client, made on
first use when the transport does not need it to start.
"""

from __future__ import annotations

import os
import re
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

import botocore.session
from botocore.configprovider import ConfiguredEndpointProvider
from botocore.httpsession import URLLib3Session
from botocore.utils import get_environ_proxies

from .exceptions import ConfigurationError

if TYPE_CHECKING:
    from ._config import Settings

#: The region names of botocore's "aws" partition (endpoints.json `regionRegex`), which
#: DynamoDB's endpoint rules map to `https://dynamodb.{region}.amazonaws.com`. Other
#: partitions (aws-cn, aws-us-gov, the isolated ones) have other DNS suffixes: not matched.
_AWS_REGION = re.compile(r"^(us|eu|ap|sa|ca|me|af|il|mx)-[A-Za-z0-9_]+-\d+$")

#: Configuration that changes the endpoint DynamoDB's rules pick (the client's config
#: variables of the same names).
_ENDPOINT_SWITCHES = ("use_fips_endpoint", "use_dualstack_endpoint")


class LeanSession(botocore.session.Session):
    """A botocore Session whose built-in event handlers are registered with its first client.

    botocore registers ~120 handlers (each with a signature check) on every new Session; all
    of them are for the events of clients (`before-call`, `choose-signer`, ...), so a
    session that only resolves credentials and the region does not need them. The first
    `create_client` (dynorm's own, or a credential provider's STS or SSO client) registers
    them first, exactly as `Session()` would have.
    """

    def __init__(self, profile: str | None = None) -> None:
        super().__init__(include_builtin_handlers=False, profile=profile)
        self._builtins_lock = threading.Lock()
        self._builtins_registered = False

    def create_client(self, *args: Any, **kwargs: Any) -> Any:
        if not self._builtins_registered:
            with self._builtins_lock:
                if not self._builtins_registered:
                    own: Any = self  # botocore's own (private) registration, as __init__ does
                    own._register_builtin_handlers(own._events)
                    self._builtins_registered = True
        return super().create_client(*args, **kwargs)


def session_for(transport: str) -> botocore.session.Session:
    """The botocore session a Connection starts from (a `LeanSession` on the lean transport)."""
    if transport == "http" and callable(
        getattr(botocore.session.Session, "_register_builtin_handlers", None)
    ):
        return LeanSession()
    return botocore.session.Session()


def client_region(session: Any, settings: Settings) -> str:
    """The region of the client dynorm creates for `settings`.

    Raises:
        ConfigurationError: No region is configured and no `endpoint_url` given.
    """
    # botocore reads $AWS_DEFAULT_REGION and the profile; the newer AWS SDKs read $AWS_REGION.
    region = (
        settings.region_name
        or session.get_config_variable("region")
        or os.environ.get("AWS_REGION")
    )
    if not region:
        if settings.endpoint_url is None:
            raise ConfigurationError(
                "Cannot create a DynamoDB client without a region; set $AWS_REGION (or "
                "$AWS_DEFAULT_REGION), give your AWS profile a region, or call "
                "dynorm.configure(region_name=...).",
                code="config",
            )
        region = "us-east-1"  # any region works against a local endpoint
    return str(region)


def lean_endpoint(
    session: Any, region: str, endpoint_url: str | None, table_name: str
) -> str | None:
    """The endpoint a dynorm-created client would send to, when known without the client.

    Args:
        session: The botocore session the client would be created from.
        region: The client's region.
        endpoint_url: The `endpoint_url` given to dynorm (None: AWS).
        table_name: The table the connection is for.
    """
    if endpoint_url is not None:
        return endpoint_url  # the client takes an explicit endpoint as it is
    if table_name.startswith("arn:") or not _AWS_REGION.match(region):
        return None
    if any(_enabled(session.get_config_variable(name)) for name in _ENDPOINT_SWITCHES):
        return None
    if not _enabled(session.get_config_variable("ignore_configured_endpoint_urls")):
        configured = ConfiguredEndpointProvider(
            full_config=session.full_config,
            scoped_config=session.get_scoped_config(),
            client_name="dynamodb",
            environ=os.environ,
        ).provide()
        if configured is not None:
            return None
    return f"https://dynamodb.{region}.amazonaws.com"


def _enabled(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def lean_http_session(session: Any, endpoint: str, settings: Settings) -> URLLib3Session:
    """The botocore HTTP session a dynorm-created client would build for `endpoint`.

    What botocore's client creation computes (its `EndpointCreator`): TLS verification from
    the `ca_bundle` setting or `$REQUESTS_CA_BUNDLE`, the proxies of the environment for
    that URL, TCP_NODELAY plus SO_KEEPALIVE when the profile sets `tcp_keepalive`, dynorm's
    pool size and timeouts. A unit test compares it with a real client's.
    """
    verify: Any = session.get_config_variable("ca_bundle")  # True, or a CA bundle's path
    if verify is None:
        verify = os.environ.get("REQUESTS_CA_BUNDLE", True)
    options = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
    if session.get_config_variable("tcp_keepalive"):
        options.append((socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1))
    timeout: Any = (settings.connect_timeout, settings.read_timeout)  # the stubs say int
    return URLLib3Session(
        verify=verify,
        proxies=get_environ_proxies(endpoint),
        timeout=timeout,
        max_pool_connections=settings.max_pool_connections,
        socket_options=cast(Any, options),  # the stubs say list[str]
    )


class ClientSlot:
    """The boto3 client behind a Connection and its `for_table` siblings.

    Either given (a user's client, or one dynorm built right away), or made on first use
    by `make`: the lean transport sends its operations without a client, so a process that
    only does those never builds one (nor loads the service model it needs). dynorm's hooks
    are installed when the client exists; `on_client` callbacks run then, once each.
    """

    __slots__ = (
        "__weakref__",
        "_client",
        "_prepare_client",
        "_make",
        "_lock",
        "_callbacks",
        "direct",
    )

    def __init__(
        self,
        client: Any,
        prepare: Callable[[Any, bool], bool],
        make: Callable[[], Any] | None = None,
        *,
        direct: bool = False,
    ) -> None:
        self._client: Any = None
        self._prepare_client = prepare
        self._make = make
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[Any], None]] = []
        self.direct = direct
        if client is not None:
            self._prepare(client)

    @property
    def made(self) -> Any:
        """The client if it exists yet, else None."""
        return self._client

    def get(self) -> Any:
        client = self._client
        if client is None:
            with self._lock:
                client = self._client
                if client is None:
                    assert self._make is not None
                    client = self._make()
                    self._prepare(client)
        return client

    def _prepare(self, client: Any) -> None:
        self.direct = self._prepare_client(client, self.direct)
        for callback in self._callbacks:
            callback(client)
        self._client = client

    def on_client(self, callback: Callable[[Any], None]) -> None:
        """Run `callback(client)` now if the client exists, else when it is made."""
        with self._lock:
            client = self._client
            if client is None:
                self._callbacks.append(callback)
                return
        callback(client)
