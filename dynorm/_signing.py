"""SigV4 headers for the lean transport's requests, without botocore's request object.

botocore's `SigV4Auth.add_auth` signs an `AWSRequest`, whose headers are an
`email.message.Message`; building it, and the header maps the signer builds from it, was
about a fifth of a lean GetItem's client time. Every request dynorm sends on the lean path
has the same shape: `POST` to one endpoint, a JSON body, and the same signed headers
(`content-type`, `host`, `x-amz-date`, `x-amz-security-token` with temporary credentials,
`x-amz-target`). So the canonical request is a fixed template, built here once per
endpoint; the path and host in it come from botocore's own normalisation, asked once.
The signature is SigV4's, computed as botocore's `SigV4Auth.signature` computes it, with
one difference: the signing key (four HMACs of the secret, the day, the region and the
service) is kept for the secret and the day it was derived from, so a request computes one
HMAC, not five; a new day or rotated credentials derive it anew. Credentials stay
botocore's (refreshable ones refresh themselves).

tests/unit/test_signing.py checks, for any body, operation, credentials (with and without
a session token) and endpoint, that these headers are byte for byte the ones
`SigV4Auth.add_auth` writes at the same second, and, for one signer used through any
sequence of days and rotated secrets, at every step.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

_ALGORITHM = "AWS4-HMAC-SHA256"
_TIMESTAMP = "%Y%m%dT%H%M%SZ"


def _hmac(key: bytes, message: str) -> bytes:
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).digest()


class RequestSigner:
    """Sign dynorm's POSTs to one DynamoDB endpoint with SigV4, as botocore's signer does."""

    def __init__(self, endpoint_url: str, region: str, content_type: str) -> None:
        self.region = region
        self._content_type = content_type
        # The host and the path as botocore's signer writes them for this endpoint (port,
        # IPv6 brackets and user info; quoting and dot segments), asked of it once.
        probe = AWSRequest(method="POST", url=endpoint_url, data=b"")
        probe.context["timestamp"] = "19700101T000000Z"
        signer = SigV4Auth(Credentials("-", "-"), "dynamodb", region)
        self._host = str(signer.headers_to_sign(probe)["host"])
        self._path = signer.canonical_request(probe).split("\n")[1]
        #: (SHA-256 of the secret key, day, the signing key derived from them): replaced,
        #: never mutated, so threads sharing the signer read a consistent triple without a
        #: lock. A digest, not the secret itself: what the signer holds (and a pickle or an
        #: error report's locals could show) signs for one day, region and service only.
        self._key: tuple[bytes, str, bytes] = (b"", "", b"")

    def headers(
        self, credentials: Any, target: str, body: bytes, timestamp: str | None = None
    ) -> dict[str, str]:
        """The request's headers, signed: what `SigV4Auth.add_auth` gives an AWSRequest.

        `credentials` are botocore's frozen credentials; `timestamp` (`YYYYMMDDTHHMMSSZ`,
        UTC) defaults to now.
        """
        ts = timestamp or time.strftime(_TIMESTAMP, time.gmtime())
        token = credentials.token
        headers = {"Content-Type": self._content_type, "X-Amz-Target": target, "X-Amz-Date": ts}
        if token:
            headers["X-Amz-Security-Token"] = token
            signed = "content-type;host;x-amz-date;x-amz-security-token;x-amz-target"
            token_line = f"x-amz-security-token:{' '.join(token.split())}\n"
        else:
            signed = "content-type;host;x-amz-date;x-amz-target"
            token_line = ""
        canonical = (
            f"POST\n{self._path}\n\n"
            f"content-type:{self._content_type}\nhost:{self._host}\nx-amz-date:{ts}\n"
            f"{token_line}x-amz-target:{' '.join(target.split())}\n\n"
            f"{signed}\n{hashlib.sha256(body).hexdigest()}"
        )
        scope = f"{ts[:8]}/{self.region}/dynamodb/aws4_request"
        to_sign = (
            f"{_ALGORITHM}\n{ts}\n{scope}\n{hashlib.sha256(canonical.encode('utf-8')).hexdigest()}"
        )
        signature = hmac.new(
            self._signing_key(credentials.secret_key, ts[:8]),
            to_sign.encode("utf-8"),
            hashlib.sha256,
        ).hexdigest()
        headers["Authorization"] = (
            f"{_ALGORITHM} Credential={credentials.access_key}/{scope}, "
            f"SignedHeaders={signed}, Signature={signature}"
        )
        return headers

    def _signing_key(self, secret: str, day: str) -> bytes:
        """SigV4's signing key for `secret` on `day` (`YYYYMMDD`), derived once per pair."""
        digest = hashlib.sha256(secret.encode("utf-8")).digest()
        known, known_day, key = self._key
        if known != digest or known_day != day or not key:
            key = _hmac(f"AWS4{secret}".encode(), day)
            for part in (self.region, "dynamodb", "aws4_request"):
                key = _hmac(key, part)
            self._key = (digest, day, key)
        return key
