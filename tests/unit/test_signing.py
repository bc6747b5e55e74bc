"""The lean transport's SigV4 headers are exactly the ones botocore's signer writes."""

from __future__ import annotations

import os
import time
from datetime import datetime
from types import SimpleNamespace
from typing import Any
from unittest.mock import patch

import botocore.auth
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from hypothesis import given, settings, strategies as st

from dynorm._signing import RequestSigner

CONTENT_TYPE = "application/x-amz-json-1.0"

FAST = settings(
    max_examples=int(os.environ.get("DYNORM_HYPOTHESIS_EXAMPLES", "100")),
    deadline=None,
    database=None,
)

_text = st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40)
endpoints = st.sampled_from(
    [
        "https://dynamodb.us-east-1.amazonaws.com/",
        "https://dynamodb.eu-west-1.amazonaws.com:443/",
        "http://127.0.0.1:8000/",
        "http://LocalHost:80/",
        "https://[::1]:8443/",
        "https://proxy.example.com/dynamo/db/",
        "https://proxy.example.com/a b/./c/../d/",
        "http://user:secret@example.com:8080/",
    ]
)


def _botocore(
    creds: Credentials, region: str, url: str, target: str, body: bytes
) -> dict[str, str]:
    request = AWSRequest(
        method="POST",
        url=url,
        data=body,
        headers={"Content-Type": CONTENT_TYPE, "X-Amz-Target": target},
    )
    SigV4Auth(creds.get_frozen_credentials(), "dynamodb", region).add_auth(request)
    return dict(request.headers.items())


@FAST
@given(
    body=st.binary(max_size=300) | st.text(max_size=100).map(str.encode),
    operation=st.sampled_from(["GetItem", "PutItem", "Query", "TransactWriteItems"]),
    access_key=_text,
    secret_key=_text,
    token=st.none() | _text | st.just("  spaced   token  "),
    region=st.sampled_from(["us-east-1", "eu-central-1", "ap-southeast-2", "local"]),
    url=endpoints,
)
def test_headers_equal_botocores_sigv4_for_any_request(
    body: bytes,
    operation: str,
    access_key: str,
    secret_key: str,
    token: str | None,
    region: str,
    url: str,
) -> None:
    creds = Credentials(access_key, secret_key, token)
    target = "DynamoDB_20120810." + operation
    expected = _botocore(creds, region, url, target, body)
    # botocore stamps the request with the current second; sign at that same second.
    got = RequestSigner(url, region, CONTENT_TYPE).headers(
        creds.get_frozen_credentials(), target, body, timestamp=expected["X-Amz-Date"]
    )
    assert got == expected
    assert list(got) == list(expected)  # the same headers, in the order botocore sends them


def test_the_default_timestamp_is_now_in_utc() -> None:
    # The signer's clock is stopped at one instant (this VM's wall clock steps backwards at
    # times, so two reads of it cannot bracket a third); only `gmtime` is offered, so a
    # signer reading local time, or another clock, fails here.
    instant = 1_700_000_000.75  # 2023-11-14T22:13:20.75Z
    clock = SimpleNamespace(
        gmtime=lambda secs=None: time.gmtime(instant if secs is None else secs),
        strftime=time.strftime,
    )
    signer = RequestSigner("http://127.0.0.1:8000/", "us-east-1", CONTENT_TYPE)
    creds = Credentials("AKID", "secret").get_frozen_credentials()
    with patch("dynorm._signing.time", clock):
        got = signer.headers(creds, "DynamoDB_20120810.GetItem", b"{}")
    assert got["X-Amz-Date"] == "20231114T221320Z"
    assert got == signer.headers(creds, "DynamoDB_20120810.GetItem", b"{}", got["X-Amz-Date"])


def _botocore_clock_at(when: datetime) -> Any:
    """Stop the clock botocore's `add_auth` reads at `when` (naive UTC).

    botocore 1.36+ asks `botocore.auth.get_current_datetime()`; older releases (the lowest
    cell of the matrix) call `datetime.datetime.utcnow()` of the module it imported.
    """
    if hasattr(botocore.auth, "get_current_datetime"):
        return patch("botocore.auth.get_current_datetime", return_value=when)
    clock = SimpleNamespace(datetime=SimpleNamespace(utcnow=lambda: when))
    return patch("botocore.auth.datetime", clock)


@FAST
@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from(["secret-a", "secret-b", "rotated/secret+c"]),
            st.datetimes(
                min_value=datetime(2026, 12, 30, 23, 59, 50),
                max_value=datetime(2027, 1, 1, 0, 0, 10),
            ),
        ),
        min_size=1,
        max_size=12,
    )
)
def test_one_signer_signs_as_botocore_through_any_days_and_rotated_secrets(
    steps: list[tuple[str, datetime]],
) -> None:
    # The signing key is kept per (secret, day): each step may cross midnight or rotate
    # the secret, and every request still carries botocore's signature for that second.
    signer = RequestSigner("http://127.0.0.1:8000/", "us-east-1", CONTENT_TYPE)
    target = "DynamoDB_20120810.PutItem"
    for secret, when in steps:
        creds = Credentials("AKID", secret)
        stamp = when.replace(microsecond=0)
        with _botocore_clock_at(stamp):
            expected = _botocore(creds, "us-east-1", "http://127.0.0.1:8000/", target, b"{}")
        assert expected["X-Amz-Date"] == stamp.strftime("%Y%m%dT%H%M%SZ")
        got = signer.headers(creds.get_frozen_credentials(), target, b"{}", expected["X-Amz-Date"])
        assert got == expected
