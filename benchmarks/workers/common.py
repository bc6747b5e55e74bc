"""Shared by every benchmark worker: the Order data, measurement, request counting, replay.

Standard library (and botocore, which every client has) only: this module is imported by
workers running in different virtual environments (dynorm's, PynamoDB's, simplesingletable's).

A worker is a module that defines a `Client` subclass and calls `main(ClientClass)`. The driver
(`benchmarks/run.py`) runs it as a subprocess; the worker prints one line `RESULT {json}`.
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import os
import random
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

# ----------------------------------------------------------------------------- data

#: Partition that every client queries (seeded once per table during setup).
QUERY_CUSTOMER = "CQUERY"
#: Small partition used to warm up each worker process before anything is timed.
WARM_CUSTOMER = "CWARM"
WARM_ITEMS = 30
#: Partition the streaming benchmark reads (one per size: `stream_customer(n)`).
STREAM_CUSTOMER = "CSTREAM"


def stream_customer(items: int) -> str:
    return f"{STREAM_CUSTOMER}{items}"


STATUSES = ("open", "paid", "shipped", "cancelled")
TAG_POOL = ("gift", "express", "fragile", "b2b", "promo", "repeat", "priority", "eco")
WORDS = (
    "alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november "
    "oscar papa quebec romeo sierra tango uniform victor whiskey xray yankee zulu"
).split()
CITIES = ("Oslo", "Bergen", "Lisbon", "Porto", "Lyon", "Ghent", "Turku", "Graz", "Cork")
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_EPOCH = datetime(2024, 1, 1, tzinfo=timezone.utc)


def ulid_like(rng: random.Random, when: datetime) -> str:
    """A 26-character Crockford base32 ULID: 48-bit ms timestamp + 80 random bits."""
    value = (int(when.timestamp() * 1000) << 80) | rng.getrandbits(80)
    out = []
    for _ in range(26):
        out.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(out))


def iso(dt: datetime) -> str:
    """Fixed-width UTC ISO-8601 with microseconds (dynorm's stored form)."""
    v = dt.astimezone(timezone.utc)
    return v.strftime("%Y-%m-%dT%H:%M:%S.") + f"{v.microsecond:06d}Z"


def _sentence(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words))


def make_orders(seed: str, customer_id: str, n: int) -> list[dict[str, Any]]:
    """`n` deterministic ~1 KB orders of one customer, as plain Python values.

    Fields: id (ULID), customer_id, status, total (Decimal), created_at (aware datetime),
    lines (3-5 maps: sku, name, qty, price), tags (set of str), shipping (map), note (str).
    """
    rng = random.Random(f"{seed}/{customer_id}")
    out = []
    for i in range(n):
        created = _EPOCH + timedelta(seconds=i, microseconds=rng.randrange(1_000_000))
        lines = []
        for _ in range(rng.randint(3, 5)):
            lines.append(
                {
                    "sku": f"SKU-{rng.randrange(10**8):08d}",
                    "name": _sentence(rng, 4).title(),
                    "qty": rng.randint(1, 9),
                    "price": Decimal(rng.randrange(100, 100_000)) / 100,
                }
            )
        total = sum((line["price"] * line["qty"] for line in lines), Decimal("0"))
        out.append(
            {
                "id": ulid_like(rng, created),
                "customer_id": customer_id,
                "status": rng.choice(STATUSES),
                "total": total,
                "created_at": created,
                "lines": lines,
                "tags": set(rng.sample(TAG_POOL, rng.randint(1, 4))),
                "shipping": {
                    "name": _sentence(rng, 2).title(),
                    "street": f"{rng.randint(1, 400)} {_sentence(rng, 2).title()} Street",
                    "city": rng.choice(CITIES),
                    "postcode": f"{rng.randrange(10**5):05d}",
                    "country": "NO",
                },
                "note": _sentence(rng, 80 + rng.randrange(10)),
            }
        )
    return out


# ----------------------------------------------------------------------------- requests


class RequestCounter:
    """Counts HTTP requests at http.client level (botocore's urllib3, the lean path's urllib3
    fallback) and at dynorm's own exchange (`dynorm._wire`, the lean path's sync wire)."""

    count = 0
    _installed = False
    _lock = threading.Lock()  # the threads row counts from 16 threads at once

    @classmethod
    def install(cls) -> None:
        if cls._installed:
            return
        original = http.client.HTTPConnection.putrequest

        def putrequest(self: Any, *args: Any, **kwargs: Any) -> Any:
            with cls._lock:
                cls.count += 1
            return original(self, *args, **kwargs)

        http.client.HTTPConnection.putrequest = putrequest  # type: ignore[method-assign]
        try:
            from dynorm._wire import Exchange
        except ImportError:  # a peer's worker, without dynorm
            pass
        else:
            post = Exchange.post

            def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
                with cls._lock:
                    cls.count += 1
                return post(self, *args, **kwargs)

            Exchange.post = counted  # type: ignore[method-assign]
        cls._installed = True


# ----------------------------------------------------------------------------- replay


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Iterable[bytes]:
        yield self._body


class Replay:
    """Answer every botocore request with a recorded body, without touching the network.

    Patches `botocore.endpoint.Endpoint._send` (the call that hands a signed request to
    urllib3): request serialisation, signing, retries' bookkeeping, response parsing and
    everything the client does above botocore still run.
    """

    def __init__(self, body: bytes) -> None:
        self.body = body
        self.sent = 0

    def __enter__(self) -> Replay:
        from botocore.awsrequest import AWSResponse
        from botocore.endpoint import Endpoint

        self._original = Endpoint._send
        body = self.body
        headers = {
            "content-type": "application/x-amz-json-1.0",
            "x-amzn-requestid": "replay",
            "content-length": str(len(body)),
        }

        def _send(endpoint: Any, request: Any) -> Any:
            self.sent += 1
            return AWSResponse(request.url, 200, headers, _Raw(body))

        Endpoint._send = _send  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: Any) -> None:
        from botocore.endpoint import Endpoint

        Endpoint._send = self._original  # type: ignore[method-assign]


class Recorder:
    """Capture the raw body of the first response botocore receives while active."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    def __enter__(self) -> Recorder:
        from botocore.endpoint import Endpoint

        self._original = Endpoint._send
        original = self._original

        def _send(endpoint: Any, request: Any) -> Any:
            response = original(endpoint, request)
            self.bodies.append(response.content)
            return response

        Endpoint._send = _send  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: Any) -> None:
        from botocore.endpoint import Endpoint

        Endpoint._send = self._original  # type: ignore[method-assign]


def strip_last_key(body: bytes) -> bytes:
    """The same page without LastEvaluatedKey, so a replayed Query ends after one page."""
    data = json.loads(body)
    data.pop("LastEvaluatedKey", None)
    return json.dumps(data, separators=(",", ":")).encode()


_PARSER: Any = None


def botocore_parse(body: bytes) -> dict[str, Any]:
    """Parse a Query response body exactly as a botocore DynamoDB client does."""
    global _PARSER
    if _PARSER is None:
        import botocore.parsers
        import botocore.session

        model = botocore.session.get_session().get_service_model("dynamodb")
        _PARSER = (botocore.parsers.create_parser("json"), model.operation_model("Query"))
    parser, operation = _PARSER
    response = {
        "body": body,
        "headers": {"content-type": "application/x-amz-json-1.0", "x-amzn-requestid": "r"},
        "status_code": 200,
    }
    return parser.parse(response, operation.output_shape)  # type: ignore[no-any-return]


# ----------------------------------------------------------------------------- the client API


class Client:
    """What each worker implements. Untimed: `prepare_*`; timed: the work methods."""

    name = "client"
    #: Which recorded page the decode and replay works use ("common" or the client's own).
    layout = "common"
    #: Works this client cannot do, with the reason the report gives (its cell shows "—").
    unsupported: dict[str, str] = {}
    #: False when the client's HTTP does not go through `http.client` (a native core): its
    #: requests cannot be counted, and the report says "—" rather than 0.
    counts_requests = True

    def __init__(self, endpoint: str, table: str) -> None:
        self.endpoint = endpoint
        self.table = table

    # setup (untimed) -------------------------------------------------------
    def create_table(self) -> None:
        """Create the table if this client owns it (others share "common")."""

    def seed(self, orders: list[dict[str, Any]]) -> None:
        raise NotImplementedError

    def versions(self) -> dict[str, str]:
        return {}

    # inputs (untimed) ------------------------------------------------------
    def prepare_put(self, orders: list[dict[str, Any]]) -> list[Any]:
        """Turn plain orders into what this client's write API takes (model instances...)."""
        return orders

    def prepare_key(self, order: dict[str, Any]) -> Any:
        return order

    # timed work ------------------------------------------------------------
    def put(self, obj: Any) -> None:
        raise NotImplementedError

    def get(self, key: Any) -> Any:
        raise NotImplementedError

    def query(self, customer_id: str) -> list[Any]:
        raise NotImplementedError

    def bulk(self, objs: list[Any]) -> None:
        raise NotImplementedError

    def decode(self, body: bytes) -> list[Any]:
        """Decode a recorded Query body into this client's objects, the way its reads do."""
        raise NotImplementedError

    def iterate(self, customer_id: str) -> Iterator[Any]:
        """Stream one partition's objects page by page (the client's streaming API)."""
        raise NotImplementedError


# ----------------------------------------------------------------------------- measuring


def measure(fn: Callable[[], Any], units: int, label: str) -> dict[str, Any]:
    """Run `fn` once; return wall and process-CPU time per unit, requests, throughput.

    `fn`'s return value is kept under "result" (popped by the caller before reporting).
    """
    start_requests = RequestCounter.count
    wall0, cpu0 = time.perf_counter(), time.process_time()
    result = fn()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    return {
        "result": result,
        "units": units,
        "unit": label,
        "wall_s": wall,
        "cpu_s": cpu,
        "per_s": units / wall if wall else 0.0,
        "cpu_us_per_unit": cpu / units * 1e6,
        "requests": RequestCounter.count - start_requests,
    }


def _merge(samples: list[dict[str, Any]], user_ops: int) -> dict[str, Any]:
    units = sum(s["units"] for s in samples)
    wall = sum(s["wall_s"] for s in samples)
    cpu = sum(s["cpu_s"] for s in samples)
    requests = sum(s["requests"] for s in samples)
    return {
        "units": units,
        "unit": samples[0]["unit"],
        "wall_s": wall,
        "cpu_s": cpu,
        "per_s": units / wall if wall else 0.0,
        "cpu_us_per_unit": cpu / units * 1e6,
        "requests": requests,
        "user_ops": user_ops,
        "requests_per_op": requests / user_ops if user_ops else 0.0,
    }


def run_works(client: Client, args: argparse.Namespace) -> dict[str, Any]:
    n = args.n
    tag = f"{client.name}-r{args.round}"
    query_orders = make_orders("seed", QUERY_CUSTOMER, args.query_items)
    warm_orders = make_orders("seed", WARM_CUSTOMER, WARM_ITEMS)
    rng = random.Random(tag)
    get_orders = [rng.choice(query_orders) for _ in range(n)]
    get_keys = [client.prepare_key(o) for o in get_orders]
    put_objs = client.prepare_put(make_orders(tag, f"PUT-{tag}", n))
    bulk_objs = client.prepare_put(make_orders(tag, f"BULK-{tag}", n))
    warm_put = client.prepare_put(make_orders(tag, f"WARMPUT-{tag}", 10 + 25))
    cache = Path(args.cache)
    body = (cache / f"page-{client.layout}.json").read_bytes()
    replay_body = strip_last_key(body)

    # Warm up: clients, connections, lazily loaded service models, validators.
    for o in warm_orders[:10]:
        client.get(client.prepare_key(o))
    for o in warm_put[:10]:
        client.put(o)
    client.bulk(warm_put[10:])
    got = client.query(WARM_CUSTOMER)
    if len(got) != WARM_ITEMS:
        raise AssertionError(f"warm-up query returned {len(got)} items, expected {WARM_ITEMS}")
    if "decode" not in client.unsupported:
        client.decode(body)
    if hasattr(client, "decode_botocore"):
        client.decode_botocore(body)
    if "replay" not in client.unsupported:
        with Replay(replay_body):
            client.query(QUERY_CUSTOMER)
    gc.collect()

    results: dict[str, Any] = {}

    def guarded(name: str, work: Callable[[], dict[str, Any]]) -> None:
        if name in client.unsupported:
            results[name] = {"unsupported": client.unsupported[name]}
            return
        try:
            results[name] = work()
        except Exception as exc:  # reported, the other works still run
            traceback.print_exc(file=sys.stderr)
            results[name] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        else:
            if not client.counts_requests:
                results[name]["requests"] = results[name]["requests_per_op"] = None

    def do_get() -> dict[str, Any]:
        def run() -> None:
            for key in get_keys:
                client.get(key)

        sample = measure(run, n, "op")
        sample.pop("result")
        return _merge([sample], n)

    def do_put() -> dict[str, Any]:
        def run() -> None:
            for obj in put_objs:
                client.put(obj)

        sample = measure(run, n, "op")
        sample.pop("result")
        return _merge([sample], n)

    def do_query() -> dict[str, Any]:
        samples = []
        for _ in range(args.query_reps):
            sample = measure(lambda: client.query(QUERY_CUSTOMER), args.query_items, "item")
            got = len(sample.pop("result"))
            if got != args.query_items:
                raise AssertionError(f"query returned {got} items, not {args.query_items}")
            samples.append(sample)
        return _merge(samples, args.query_reps)

    def do_bulk() -> dict[str, Any]:
        sample = measure(lambda: client.bulk(bulk_objs), n, "item")
        sample.pop("result")
        return _merge([sample], 1)

    page_items = len(json.loads(body)["Items"])

    def decoding(decode: Callable[[bytes], list[Any]]) -> Callable[[], dict[str, Any]]:
        def work() -> dict[str, Any]:
            samples = []
            for _ in range(args.decode_reps):
                sample = measure(lambda: decode(body), page_items, "item")
                got = len(sample.pop("result"))
                if got != page_items:
                    raise AssertionError(f"decoded {got} items, not {page_items}")
                samples.append(sample)
            out = _merge(samples, args.decode_reps)
            out["page_bytes"] = len(body)
            return out

        return work

    def do_replay() -> dict[str, Any]:
        samples = []
        for _ in range(args.decode_reps):
            with Replay(replay_body) as rp:
                sample = measure(lambda: client.query(QUERY_CUSTOMER), page_items, "item")
            got = len(sample.pop("result"))
            if got != page_items or rp.sent != 1:
                raise AssertionError(f"replayed query gave {got} items in {rp.sent} requests")
            sample["requests"] = rp.sent
            samples.append(sample)
        out = _merge(samples, args.decode_reps)
        out["page_bytes"] = len(replay_body)
        return out

    guarded("get", do_get)
    guarded("put", do_put)
    guarded("query", do_query)
    guarded("bulk", do_bulk)
    guarded("decode", decoding(client.decode))
    extra = getattr(client, "decode_botocore", None)
    if extra is not None:
        guarded("decode_botocore", decoding(extra))
    guarded("replay", do_replay)
    return results


# ----------------------------------------------------------------------------- threads


def run_threads(client: Client, args: argparse.Namespace) -> dict[str, Any]:
    """`args.threads` threads sharing this one client, `args.n` GetItems between them.

    Every thread first makes a few GetItems of its own (connections opened, models warm),
    then all start together at a barrier; the wall time runs from their release until the
    last thread is done. Keys are random orders of the Query partition, the same for every client
    of a round.
    """
    threads, n = args.threads, args.n
    orders = make_orders("seed", QUERY_CUSTOMER, args.query_items)
    rng = random.Random(f"threads-r{args.round}")
    keys = [client.prepare_key(rng.choice(orders)) for _ in range(n)]
    warm = [client.prepare_key(o) for o in make_orders("seed", WARM_CUSTOMER, WARM_ITEMS)]
    shares = [keys[i::threads] for i in range(threads)]
    # Two barriers: every thread warm (counters read), then all go at once.
    ready, go = threading.Barrier(threads + 1), threading.Barrier(threads + 1)
    errors: list[BaseException] = []

    def work(share: list[Any], index: int) -> None:
        try:
            for j in range(3):
                client.get(warm[(index + j) % len(warm)])
        except BaseException as exc:
            errors.append(exc)
        ready.wait()
        go.wait()
        try:
            for key in share:
                client.get(key)
        except BaseException as exc:
            errors.append(exc)

    pool = [threading.Thread(target=work, args=(s, i)) for i, s in enumerate(shares)]
    for t in pool:
        t.start()
    ready.wait()
    gc.collect()
    start_requests = RequestCounter.count
    wall0, cpu0 = time.perf_counter(), time.process_time()
    go.wait()
    for t in pool:
        t.join()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    if errors:
        raise errors[0]
    requests = RequestCounter.count - start_requests
    return {
        "threads": threads,
        "units": n,
        "wall_s": wall,
        "cpu_s": cpu,
        "per_s": n / wall if wall else 0.0,
        "cpu_us_per_unit": cpu / n * 1e6,
        "requests_per_op": requests / n if client.counts_requests else None,
    }


# ----------------------------------------------------------------------------- streaming


def run_stream(client: Client, args: argparse.Namespace) -> dict[str, Any]:
    """Iterate the streaming partition once through `client.iterate` (or list() it).

    Peak RSS is the process's `ru_maxrss`; the baseline is the RSS after the client made
    its first request (a warm-up query), just before the iteration starts.
    """
    got = client.query(WARM_CUSTOMER)  # client created, first request made
    if len(got) != WARM_ITEMS:
        raise AssertionError(f"warm-up query returned {len(got)} items")
    del got
    gc.collect()
    base = rss_now_kib()
    t0, c0 = time.perf_counter(), time.process_time()
    if args.how == "iterator":
        count = 0
        for _ in client.iterate(stream_customer(args.stream_items)):
            count += 1
    else:
        objs = client.query(stream_customer(args.stream_items))
        count = len(objs)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = peak_rss_kib()
    if count != args.stream_items:
        raise AssertionError(f"streamed {count} items, expected {args.stream_items}")
    return {
        "how": args.how,
        "items": count,
        "baseline_rss_mib": base / 1024,
        "peak_rss_mib": peak / 1024,
        "growth_mib": (peak - base) / 1024,
        "items_per_s": count / wall,
        "cpu_us_per_item": cpu / count * 1e6,
    }


def rss_now_kib() -> int:
    with open("/proc/self/statm") as fh:
        pages = int(fh.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") // 1024


def peak_rss_kib() -> int:
    """This process's own peak RSS: VmHWM, which `exec` resets (`ru_maxrss` keeps the
    high-water mark of the parent the process was forked from)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("/proc/self/status has no VmHWM line")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="One benchmark worker (run by benchmarks/run.py).")
    p.add_argument("mode", choices=["setup", "run", "threads", "stream-setup", "stream"])
    p.add_argument("--endpoint", required=True)
    p.add_argument("--table", required=True)
    p.add_argument("--cache", required=True, help="folder of recorded pages")
    p.add_argument("--n", type=int, default=1000, help="GetItem / PutItem / bulk items")
    p.add_argument("--query-items", type=int, default=1000)
    p.add_argument("--query-reps", type=int, default=3)
    p.add_argument("--decode-reps", type=int, default=3)
    p.add_argument("--round", type=int, default=0)
    p.add_argument("--stream-items", type=int, default=100_000)
    p.add_argument("--how", choices=["iterator", "list"], default="iterator")
    p.add_argument("--threads", type=int, default=16, help="threads of the threads mode")
    p.add_argument("--transport", help="dynorm's transport (boto3 or http)")
    return p.parse_args(argv)


def emit(payload: dict[str, Any]) -> None:
    sys.stdout.write("RESULT " + json.dumps(payload, default=str) + "\n")
    sys.stdout.flush()


def main(make: Callable[..., Client], argv: list[str] | None = None) -> None:
    """Entry point of every worker (`--transport`, when given, goes to the client)."""
    args = parse_args(argv)
    RequestCounter.install()
    options = {"transport": args.transport} if args.transport else {}
    client = make(args.endpoint, args.table, **options)
    if args.mode == "setup":
        client.create_table()
        client.seed(make_orders("seed", QUERY_CUSTOMER, args.query_items))
        client.seed(make_orders("seed", WARM_CUSTOMER, WARM_ITEMS))
        cache = Path(args.cache)
        cache.mkdir(parents=True, exist_ok=True)
        target = cache / f"page-{client.layout}.json"
        with Recorder() as rec:
            got = client.query(QUERY_CUSTOMER)
        if len(got) != args.query_items:
            raise SystemExit(f"{client.name}: seeded query returned {len(got)} items")
        target.write_bytes(rec.bodies[0])
        first = json.loads(rec.bodies[0])
        emit(
            {
                "client": client.name,
                "layout": client.layout,
                "pages": len(rec.bodies),
                "page_items": len(first["Items"]),
                "page_bytes": len(rec.bodies[0]),
                "versions": client.versions(),
            }
        )
    elif args.mode == "run":
        works = run_works(client, args)
        emit(
            {
                "client": client.name,
                "round": args.round,
                "versions": client.versions(),
                "works": works,
            }
        )
    elif args.mode == "threads":
        emit({"client": client.name, "round": args.round, **run_threads(client, args)})
    elif args.mode == "stream-setup":
        emit({"client": client.name, **client.stream_setup(args)})  # type: ignore[attr-defined]
    else:
        emit({"client": client.name, **run_stream(client, args)})
