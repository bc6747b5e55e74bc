"""K. Logging and secrets (scenarios 55-56)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from pydantic import SecretStr

import dynorm
from dynorm import Model
from dynorm.exceptions import DynormError
from tests.reliability.conftest import FakeTime
from tests.reliability.helpers import SENTINEL, Faults, aws_response, request_json


class RelSecretive(Model):
    owner: str
    id: str
    note: str = ""
    tags: set[str] = set()
    when: datetime | None = None
    amount: Decimal = Decimal(0)

    class Meta:
        pk = "RELSECRET#{owner}"
        sk = "RELSECRET#{id}"


def _leaks(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith("dynorm") and SENTINEL in record.getMessage()
    ]


def _expect_error(action: Callable[[], Any], errors: list[BaseException]) -> None:
    with pytest.raises(DynormError) as info:
        action()
    errors.append(info.value)


def test_s55_sentinel_values_never_reach_logs_or_error_messages(
    faults: Faults,
    caplog: pytest.LogCaptureFixture,
    retry_sleeps: FakeTime,
    dynorm_sleeps: FakeTime,
) -> None:
    caplog.set_level(logging.DEBUG, logger="dynorm")
    secret = SENTINEL
    errors: list[BaseException] = []

    # CRUD, queries, cursors, batches, transactions: values all carry the sentinel.
    obj = RelSecretive.objects.create(owner=secret, id=f"{secret}-1", note=secret, tags={secret})
    obj.note = f"{secret}-again"
    obj.save()
    obj.update(note=secret)
    RelSecretive.objects.get(owner=secret, id=f"{secret}-1")
    list(RelSecretive.objects.filter(owner=secret, note=secret, id__begins_with=secret))
    RelSecretive.objects.bulk_create(
        [RelSecretive(owner=secret, id=f"{secret}-{i}", note=secret) for i in range(2, 6)]
    )
    page = RelSecretive.objects.filter(owner=secret).page(size=2)
    assert page.next_cursor is not None
    RelSecretive.objects.filter(owner=secret).page(size=2, cursor=page.next_cursor)
    RelSecretive.objects.bulk_get([{"owner": secret, "id": f"{secret}-{i}"} for i in range(1, 4)])
    with dynorm.transaction():
        RelSecretive(owner=secret, id=f"{secret}-tx", note=secret).save()
    dynorm.transaction_get([(RelSecretive, {"owner": secret, "id": f"{secret}-1"})])

    # Error paths.
    stale = RelSecretive.objects.get(owner=secret, id=f"{secret}-2")
    fresh = RelSecretive.objects.get(owner=secret, id=f"{secret}-2")
    fresh.save()
    stale.note = secret
    _expect_error(stale.save, errors)  # VersionConflictError (ALL_OLD item holds the sentinel)
    _expect_error(  # ConditionFailedError on create
        lambda: RelSecretive.objects.create(owner=secret, id=f"{secret}-2", note=secret), errors
    )
    _expect_error(lambda: RelSecretive.objects.get(owner=secret, id="nope"), errors)
    _expect_error(lambda: RelSecretive(owner=secret * 300, id="x").save(), errors)  # key size
    _expect_error(lambda: RelSecretive(owner="o", id="x", note=secret * 60_000).save(), errors)
    _expect_error(lambda: RelSecretive(owner="o", id="x", when=datetime(2024, 1, 1)).save(), errors)
    _expect_error(lambda: RelSecretive(owner="o", id="x", amount=Decimal("1E+200")).save(), errors)
    _expect_error(
        lambda: list(RelSecretive.objects.filter(owner="o", note__in=[secret] * 101)), errors
    )
    _expect_error(
        lambda: RelSecretive.objects.filter(owner=secret).page(size=2, cursor=f"{secret}.x"),
        errors,
    )
    _expect_error(
        lambda: RelSecretive.objects.filter(owner="other").page(size=2, cursor=page.next_cursor),
        errors,
    )

    def cancel_transaction() -> None:
        with dynorm.transaction():
            RelSecretive(owner=secret, id=f"{secret}-1", note=secret).save()

    _expect_error(cancel_transaction, errors)  # TransactionCanceledError

    def unprocessed(request: Any, **_: Any) -> Any:
        return aws_response(200, {"UnprocessedItems": request_json(request)["RequestItems"]})

    dynorm.configure(max_attempts=1)  # a new client: register the faults after this
    faults.on("before-send.dynamodb.BatchWriteItem", unprocessed)
    faults.fail("PutItem", "ProvisionedThroughputExceededException")
    faults.fail("UpdateItem", "InternalServerError", status=500)
    _expect_error(
        lambda: RelSecretive.objects.bulk_create(
            [RelSecretive(owner=secret, id=f"{secret}-b", note=secret)], overwrite=True
        ),
        errors,
    )  # BatchIncompleteError
    _expect_error(lambda: RelSecretive(owner=secret, id="t", note=secret).save(), errors)
    _expect_error(lambda: obj.update(note=secret), errors)  # ServiceError (500)

    kinds = {type(e).__name__ for e in errors}
    assert {
        "VersionConflictError",
        "ItemExistsError",  # a ConditionFailedError: create() of a stored key
        "DoesNotExist",
        "InvalidValueError",
        "ItemTooLargeError",
        "QueryError",
        "InvalidCursorError",
        "TransactionCanceledError",
        "BatchIncompleteError",
        "ThrottledError",
        "ServiceError",
    } <= kinds
    for err in errors:
        assert SENTINEL not in str(err), (type(err).__name__, str(err))
        assert SENTINEL not in repr(err), (type(err).__name__, repr(err))
    assert any(r.name.startswith("dynorm") for r in caplog.records)  # it did log
    assert _leaks(caplog) == []


class RelVault(Model):
    id: str
    secret: SecretStr

    class Meta:
        pk = "RELVAULT#{id}"


def test_s55_secret_str_field_is_stored_and_never_shown(
    dynorm_table: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="dynorm")
    vault = RelVault(id="v1", secret=SecretStr(SENTINEL))
    vault.save()
    got = RelVault.objects.get(id="v1")
    assert got.secret.get_secret_value() == SENTINEL
    stale = RelVault.objects.get(id="v1")
    got.save()
    with pytest.raises(DynormError) as info:
        stale.save()
    for text in (repr(got), str(got), repr(info.value), str(info.value)):
        assert SENTINEL not in text
    assert _leaks(caplog) == []


# --------------------------------------------------------------------------- scenario 56

_LOGGERS = ("botocore", "boto3", "urllib3", "")


def _logging_state() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in _LOGGERS:
        logger = logging.getLogger(name)
        out[name or "root"] = {
            "level": logger.level,
            "handlers": [type(h).__name__ for h in logger.handlers],
            "propagate": logger.propagate,
            "disabled": logger.disabled,
        }
    return out


def test_s56_using_dynorm_leaves_botocore_logging_alone(dynorm_table: str) -> None:
    before = _logging_state()
    RelSecretive.objects.create(owner="o", id="1")
    list(RelSecretive.objects.filter(owner="o"))
    with pytest.raises(DynormError):
        RelSecretive.objects.create(owner="o", id="1")
    assert _logging_state() == before


def test_s56_importing_and_using_dynorm_in_a_fresh_process(dynamodb_local: str) -> None:
    script = textwrap.dedent(
        f"""
        import json, logging, sys

        def state():
            out = {{}}
            for name in {_LOGGERS!r}:
                logger = logging.getLogger(name)
                out[name or "root"] = [logger.level, [type(h).__name__ for h in
                    logger.handlers], logger.propagate, logger.disabled]
            return out

        import boto3, botocore.session  # their own NullHandlers are installed on import

        before = state()
        import dynorm
        from dynorm import Model

        class Probe(Model):
            id: str
            class Meta:
                pk = "PROBE#{{id}}"

        after_import = state()
        dynorm.configure(table_name="rel-logging-probe", endpoint_url={dynamodb_local!r},
                         region_name="us-east-1")
        dynorm.create_table()
        try:
            Probe.objects.create(id="1")
            Probe.objects.get(id="1")
            try:
                Probe.objects.create(id="1")
            except dynorm.ConditionFailedError:
                pass
        finally:
            dynorm.delete_table()
        json.dump({{"before": before, "after_import": after_import, "after_use": state()}},
                  sys.stdout)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    states = json.loads(result.stdout)
    assert states["after_import"] == states["before"]
    assert states["after_use"] == states["before"]
