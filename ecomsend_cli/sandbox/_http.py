"""What the two sandbox simulators share: a loopback HTTP server and fault injection.

Each simulator (``tiktok_sim``, ``shopify_sim``) subclasses :class:`Simulator`
and implements four hooks; this module owns everything around them:

* a ``ThreadingHTTPServer`` on 127.0.0.1 run in a background thread, with
  ``start()`` / ``stop()`` / context-manager support and ``.url``;
* JSON request parsing and replies (HTTP/1.1, keep-alive, ``Content-Length``);
* the fault plan of DESIGN §8, applied to every API request before and after
  the simulator handles it: ``latency_ms``, ``error_rate`` (5xx),
  ``drop_rate`` (connection closed before handling), ``lost_response_rate``
  (handled and committed, then the connection is closed without an answer),
  ``truncate_rate`` (the answer is cut off halfway through its body), and
  one-shot faults for tests (``fail_next``), all drawn from a seedable RNG;
* the control endpoint ``POST /_sandbox/faults`` (and ``GET`` to read it back);
* a log of the API requests served, for tests to assert on;
* a webhook receiver for ecomsend's alerts: ``POST /_sandbox/webhook`` (or
  any path below it) records the message and answers 200; ``GET
  /_sandbox/webhook`` lists what was received (``{"messages": [{path,
  content_type, body}]}``, ``body`` parsed when it is JSON). Apprise's
  ``json://127.0.0.1:PORT/_sandbox/webhook`` posts there.

Using it from a simulator::

    class MySim(Simulator):
        def operation(self, req):          # name of the API operation, or None
            return "orderCreate"
        def handle(self, req):             # do the work, return a Reply
            return Reply(200, {"data": ...})
        def error_reply(self, req, status):  # body of an injected 5xx
            return Reply(status, {"errors": "internal"})
        def throttled_reply(self, req):    # body of an injected throttle
            return Reply(429, {"errors": "Throttled"})
        def control(self, req):            # extra /_sandbox/... endpoints (optional)
            return None                    # None = 404

Faults (``set_faults(**faults)`` or ``POST /_sandbox/faults`` with the same
keys as JSON) are merged into the current plan; ``reset=True`` first restores
every knob to its default and empties the one-shot queue. Keys:

``latency_ms`` (int), ``error_rate``, ``drop_rate``, ``lost_response_rate``,
``truncate_rate`` (floats 0..1), ``error_status`` (int, default 500),
``seed`` (int: reseeds the RNG), ``fail_next`` (list, appended to the queue),
plus the simulator's own knobs (e.g. ``rate_limit``), and ``reset`` (bool).

A ``fail_next`` entry is ``{"op": name or null (any op), "kind": one of
error | drop | lost_response | truncated | rate_limit | latency | answer |
trickle | hang, "after": n (let n matching requests through first, default
0), "count": n (fire n times, default 1), "status": http status for
kind=error (default 500), "latency_ms": for kind=latency}``. One-shot faults
fire in queue order and take precedence over the random rates.

Three kinds shape the answer itself; each takes ``"handled"`` (default
true): the simulator first handles the request for real and commits its
effect (a Shopify order IS created, stock IS claimed), then answers as the
fault says; ``"handled": false`` answers without handling (nothing happens).

* ``answer`` — replaces the reply with ``"status"`` (default 200) and
  ``"body"`` (required): a string is sent verbatim (default content type
  ``text/html; charset=utf-8``), any other JSON value (null included) is
  serialised (default ``application/json; charset=utf-8``);
  ``"content_type"`` overrides either default.
* ``trickle`` — the answer (the real one; with ``handled: false`` the
  simulator's injected error answer of ``"status"``, default 500) is sent
  whole, status line and headers included, with its correct
  ``Content-Length``, at ``"bytes_per_second"`` (default 1): a client with
  only a per-read timeout never times out. Writing stops when the client
  disconnects or the simulator stops.
* ``hang`` — no answer at all: the connection stays open, silent, until
  ``"hang_seconds"`` (default 300) pass, the client disconnects or the
  simulator stops; then it is closed.

``stop()`` never waits for a trickling or hanging answer: it wakes them and
cuts their connections.

Random ``lost_response_rate`` skips operations a simulator lists in
``no_random_lost_response`` (e.g. TikTok's token refresh, whose loss would
strand any client); ``fail_next`` can still target them explicitly.
"""

from __future__ import annotations

import json
import math
import random
import select
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

FAULT_KINDS = ("error", "drop", "lost_response", "truncated", "rate_limit", "latency",
               "answer", "trickle", "hang")
# Kinds that decide what the answer looks like (and whether the request is handled at all).
SHAPING_KINDS = ("answer", "trickle", "hang")
_SHOT_KEYS = {"op", "kind", "after", "count", "status", "latency_ms", "handled", "body",
              "content_type", "bytes_per_second", "hang_seconds"}
_RATE_KEYS = ("error_rate", "drop_rate", "lost_response_rate", "truncate_rate")
BASE_FAULT_DEFAULTS: dict[str, Any] = {
    "latency_ms": 0,
    "error_rate": 0.0,
    "drop_rate": 0.0,
    "lost_response_rate": 0.0,
    "truncate_rate": 0.0,
    "error_status": 500,
}


@dataclass
class Request:
    """One parsed HTTP request, as the simulator hooks see it."""

    method: str
    path: str
    query: dict[str, str]  # first value of each key; blank values kept
    headers: dict[str, str]  # keys lower-cased
    body: bytes
    raw_query: str = ""

    def json(self) -> Any:
        """The body parsed as JSON (``{}`` when empty); ValueError when malformed."""
        if not self.body.strip():
            return {}
        return json.loads(self.body)


@dataclass
class Reply:
    """What to answer: a status, a JSON-able payload (or raw bytes) and extra headers."""

    status: int
    payload: Any
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> bytes:
        if isinstance(self.payload, bytes):
            return self.payload
        return json.dumps(self.payload, separators=(",", ":")).encode()


@dataclass
class _OneShot:
    op: str | None
    kind: str
    after: int = 0
    count: int = 1
    status: int = 500
    latency_ms: int = 0
    handled: bool = True
    body: Any = None  # kind=answer only (required there)
    content_type: str | None = None
    bytes_per_second: float = 1.0
    hang_seconds: float = 300.0

    def answer(self) -> Reply:
        """The reply of kind=answer: a str body verbatim, anything else as JSON."""
        if isinstance(self.body, str):
            payload = self.body.encode()
            content_type = self.content_type or "text/html; charset=utf-8"
        else:
            payload = json.dumps(self.body, separators=(",", ":")).encode()
            content_type = self.content_type or "application/json; charset=utf-8"
        return Reply(self.status, payload, {"Content-Type": content_type})


@dataclass
class Decision:
    """The faults that apply to one request."""

    latency_s: float = 0.0
    pre: str | None = None  # drop | error | rate_limit
    status: int = 500
    post: str | None = None  # lost_response | truncated | answer | trickle | hang
    shot: _OneShot | None = None  # the one-shot fault of an answer-shaping kind

    @property
    def handled(self) -> bool:
        """Whether the simulator handles the request (commits its effect) at all."""
        if self.pre is not None:
            return False
        return self.shot is None or self.shot.handled


class FaultPlan:
    """The current faults of one simulator; thread-safe, reproducible with ``seed``."""

    def __init__(self, extra_defaults: dict[str, Any] | None = None, *, seed: int | None = None,
                 no_random_lost_response: frozenset[str] = frozenset()) -> None:
        self._defaults = {**BASE_FAULT_DEFAULTS, **(extra_defaults or {})}
        self._values = dict(self._defaults)
        self._queue: list[_OneShot] = []
        self._lock = threading.Lock()
        self._rng = random.Random(seed)
        self._no_random_lost = no_random_lost_response

    def get(self, name: str) -> Any:
        with self._lock:
            return self._values[name]

    def snapshot(self) -> dict[str, Any]:
        """The knobs and the pending one-shot faults, as JSON-able data."""
        with self._lock:
            return {
                **self._values,
                "fail_next": [vars(shot).copy() for shot in self._queue],
            }

    def update(self, **faults: Any) -> None:
        """Merge ``faults`` into the plan (see the module docstring for the keys)."""
        unknown = set(faults) - set(self._defaults) - {"seed", "fail_next", "reset"}
        if unknown:
            raise ValueError(f"unknown fault key(s): {', '.join(sorted(unknown))}")
        shots = [self._parse_shot(item) for item in faults.get("fail_next") or []]
        with self._lock:
            if faults.get("reset"):
                self._values = dict(self._defaults)
                self._queue.clear()
            if faults.get("seed") is not None:
                self._rng.seed(faults["seed"])
            for key, value in faults.items():
                if key in ("seed", "fail_next", "reset"):
                    continue
                if key in _RATE_KEYS and not 0.0 <= float(value) <= 1.0:
                    raise ValueError(f"{key} must be between 0 and 1")
                self._values[key] = value
            self._queue.extend(shots)

    @staticmethod
    def _parse_shot(item: Any) -> _OneShot:
        if not isinstance(item, dict) or item.get("kind") not in FAULT_KINDS:
            raise ValueError(f"fail_next entries need a kind among {', '.join(FAULT_KINDS)}: {item!r}")
        extra = set(item) - _SHOT_KEYS
        if extra:
            raise ValueError(f"unknown fail_next key(s): {', '.join(sorted(extra))}")
        kind = item["kind"]
        if kind == "answer" and "body" not in item:
            raise ValueError("fail_next kind=answer needs a body (a string, or any JSON value)")
        if not isinstance(item.get("handled", True), bool):
            raise ValueError("fail_next handled must be true or false")
        rate = float(item.get("bytes_per_second", 1))
        if not rate > 0 or math.isinf(rate):
            raise ValueError("fail_next bytes_per_second must be a positive number")
        content_type = item.get("content_type")
        return _OneShot(
            op=item.get("op"),
            kind=kind,
            after=int(item.get("after", 0)),
            count=int(item.get("count", 1)),
            status=int(item.get("status", 200 if kind == "answer" else 500)),
            latency_ms=int(item.get("latency_ms", 0)),
            handled=item.get("handled", True),
            body=item.get("body"),
            content_type=str(content_type) if content_type is not None else None,
            bytes_per_second=rate,
            hang_seconds=float(item.get("hang_seconds", 300)),
        )

    def decide(self, op: str | None) -> Decision:
        """The faults for one request of operation ``op`` (consumes one-shot faults)."""
        with self._lock:
            decision = Decision(latency_s=self._values["latency_ms"] / 1000.0,
                                status=self._values["error_status"])
            shot = self._take_shot(op)
            if shot is not None:
                if shot.kind == "latency":
                    decision.latency_s += shot.latency_ms / 1000.0
                elif shot.kind in ("lost_response", "truncated"):
                    decision.post = shot.kind
                elif shot.kind in SHAPING_KINDS:
                    decision.post = shot.kind
                    decision.shot = shot
                else:
                    decision.pre = shot.kind
                    decision.status = shot.status
                return decision
            rng = self._rng
            if rng.random() < self._values["drop_rate"]:
                decision.pre = "drop"
            elif rng.random() < self._values["error_rate"]:
                decision.pre = "error"
            elif op not in self._no_random_lost and rng.random() < self._values["lost_response_rate"]:
                decision.post = "lost_response"
            elif rng.random() < self._values["truncate_rate"]:
                decision.post = "truncated"
            return decision

    def _take_shot(self, op: str | None) -> _OneShot | None:
        for index, shot in enumerate(self._queue):
            if shot.op is not None and shot.op != op:
                continue
            if shot.after > 0:
                shot.after -= 1
                # Only the first matching entry counts this request: later
                # entries wait their turn, so queued faults stay in order.
                return None
            shot.count -= 1
            if shot.count <= 0:
                del self._queue[index]
            return shot
        return None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], sim: Simulator) -> None:
        self.sim = sim
        # Set by Simulator.stop(): trickling and hanging answers give up at once.
        self.stopping = threading.Event()
        self._conns: set[socket.socket] = set()
        self._conns_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conns_lock:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._conns_lock:
            self._conns.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Cut every open keep-alive connection, so a stopped simulator answers nothing."""
        with self._conns_lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    # An idle keep-alive connection must not pin a thread forever.
    timeout = 60

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in two writes; without this, Nagle's algorithm
        # and the client's delayed ACK add ~40 ms to every keep-alive answer.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _read_request(self, method: str) -> Request:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        return Request(
            method=method,
            path=parts.path,
            query=dict(reversed(parse_qsl(parts.query, keep_blank_values=True))),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            raw_query=parts.query,
        )

    def _handle(self, method: str) -> None:
        sim = self.server.sim
        req = self._read_request(method)
        if req.path.startswith("/_sandbox/"):
            self._send(sim._control(req))
            return
        op = sim.operation(req)
        decision = sim.faults.decide(op)
        if decision.latency_s > 0:
            time.sleep(decision.latency_s)
        if decision.pre == "drop":
            sim._log(req, op, None, "drop")
            self._drop()
            return
        reply: Reply | None = None
        if decision.pre == "error":
            reply = sim.error_reply(req, decision.status)
        elif decision.pre == "rate_limit":
            reply = sim.throttled_reply(req)
        elif decision.handled:
            try:
                reply = sim.handle(req)
            except Exception as exc:  # a simulator bug must look like a 500, not a hang
                reply = sim.error_reply(req, 500)
                sim.last_exception = exc
        shot = decision.shot
        if shot is not None and shot.kind == "answer":
            reply = shot.answer()
        elif shot is not None and shot.kind == "trickle" and reply is None:
            reply = sim.error_reply(req, shot.status)
        fault = decision.pre or decision.post
        sim._log(req, op, reply, fault)
        if decision.post == "lost_response":
            self._drop()
            return
        if shot is not None and shot.kind == "hang":
            self._hang(shot.hang_seconds)
            return
        assert reply is not None  # every path but hang has an answer by now
        if shot is not None and shot.kind == "trickle":
            self._trickle(reply, shot.bytes_per_second)
            return
        self._send(reply, truncate=decision.post == "truncated")

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _client_gone(self) -> bool:
        """Whether the client closed its end (or the connection was cut)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and self.connection.recv(1, socket.MSG_PEEK) == b""
        except (OSError, ValueError):
            return True

    def _hang(self, seconds: float) -> None:
        """Answer nothing: keep the connection open and silent, then close it."""
        self.close_connection = True
        stopping = self.server.stopping
        deadline = time.monotonic() + seconds
        while not stopping.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                # Wakes when the client closes, sends more, or stop() cuts the socket.
                readable, _, _ = select.select([self.connection], [], [], min(remaining, 0.1))
            except (OSError, ValueError):
                break
            if readable:
                if self._client_gone():
                    break
                # More bytes from the client (say a pipelined request): still no answer.
                stopping.wait(min(remaining, 0.05))
        self._drop()

    def _trickle(self, reply: Reply, bytes_per_second: float) -> None:
        """Send the whole answer, status line first, at ``bytes_per_second``."""
        body = reply.body()
        headers = {"Content-Type": "application/json; charset=utf-8", **reply.headers,
                   "Content-Length": str(len(body))}
        phrase = self.responses.get(reply.status, ("",))[0]
        head = [f"{self.protocol_version} {reply.status} {phrase}",
                f"Server: {self.version_string()}", f"Date: {self.date_time_string()}"]
        head += [f"{name}: {value}" for name, value in headers.items()]
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body
        # Fast rates go out in small chunks every 10 ms rather than one write per byte.
        chunk = max(1, int(bytes_per_second * 0.01))
        pause = chunk / bytes_per_second
        stopping = self.server.stopping
        for start in range(0, len(data), chunk):
            if stopping.is_set() or self._client_gone():
                self._drop()
                return
            try:
                self.wfile.write(data[start:start + chunk])
            except OSError:
                self._drop()
                return
            if start + chunk < len(data) and stopping.wait(pause):
                self._drop()
                return

    def _send(self, reply: Reply, *, truncate: bool = False) -> None:
        body = reply.body()
        self.send_response(reply.status)
        headers = {"Content-Type": "application/json; charset=utf-8", **reply.headers}
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if truncate:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self._drop()
            return
        self.wfile.write(body)


class Simulator:
    """Base of the loopback simulators: server lifecycle, faults, request log.

    Subclasses implement :meth:`operation`, :meth:`handle`, :meth:`error_reply`,
    :meth:`throttled_reply` and optionally :meth:`control`.
    """

    #: the simulator's own fault knobs and their defaults (e.g. ``rate_limit``)
    extra_fault_defaults: dict[str, Any] = {}
    #: operations random lost responses never hit (see module docstring)
    no_random_lost_response: frozenset[str] = frozenset()

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, fault_seed: int | None = None) -> None:
        self.host = host
        self.port = port
        self.faults = FaultPlan(self.extra_fault_defaults, seed=fault_seed,
                                no_random_lost_response=self.no_random_lost_response)
        self.requests: deque[dict[str, Any]] = deque(maxlen=100_000)
        self.last_exception: BaseException | None = None
        self.webhooks: list[dict[str, Any]] = []  # messages received at /_sandbox/webhook
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> Simulator:
        """Serve in a background thread; returns self. The port is known after this."""
        if self._server is not None:
            return self
        self._server = _Server((self.host, self.port), self)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}:{self.port}", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and cut open connections. Safe to call twice."""
        server, self._server = self._server, None
        if server is None:
            return
        server.stopping.set()
        server.shutdown()
        server.close_connections()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self.close()

    def close(self) -> None:
        """Release the simulator's own resources (subclasses close their database)."""

    def __enter__(self) -> Simulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321`` (valid once started)."""
        return f"http://{self.host}:{self.port}"

    # -- faults and log ------------------------------------------------------
    def set_faults(self, **faults: Any) -> None:
        """Merge fault settings into the plan (keys in the module docstring)."""
        self.faults.update(**faults)

    def _log(self, req: Request, op: str | None, reply: Reply | None, fault: str | None) -> None:
        entry: dict[str, Any] = {
            "op": op,
            "method": req.method,
            "path": req.path,
            "status": reply.status if reply else None,
            "fault": fault,
            "at": time.time(),
        }
        if reply is not None and isinstance(reply.payload, dict) and "code" in reply.payload:
            entry["code"] = reply.payload["code"]
        cost = ((reply.payload.get("extensions") or {}).get("cost")
                if reply is not None and isinstance(reply.payload, dict) else None)
        if isinstance(cost, dict):  # Shopify's: benchmarks replay the bucket with it
            entry["cost"] = {"requested": cost.get("requestedQueryCost"), "actual": cost.get("actualQueryCost")}
        self.requests.append(entry)

    def ops(self, op: str | None = None) -> list[dict[str, Any]]:
        """The logged API requests, optionally only those of one operation."""
        return [e for e in list(self.requests) if op is None or e["op"] == op]

    def _control(self, req: Request) -> Reply:
        try:
            if req.path == "/_sandbox/faults":
                if req.method == "POST":
                    body = req.json()
                    if not isinstance(body, dict):
                        raise ValueError("the body must be a JSON object")
                    self.set_faults(**body)
                return Reply(200, self.faults.snapshot())
            if req.path == "/_sandbox/requests" and req.method == "GET":
                return Reply(200, {"requests": self.ops(req.query.get("op") or None)})
            if req.path == "/_sandbox/webhook" and req.method == "GET":
                return Reply(200, {"messages": list(self.webhooks)})
            if req.path == "/_sandbox/webhook" or req.path.startswith("/_sandbox/webhook/"):
                return self._receive_webhook(req)
            reply = self.control(req)
        except (ValueError, KeyError, TypeError) as exc:
            return Reply(400, {"error": str(exc)})
        if reply is None:
            return Reply(404, {"error": f"no control endpoint {req.method} {req.path}"})
        return reply

    def _receive_webhook(self, req: Request) -> Reply:
        """Record a message posted to the webhook receiver (an alert from ecomsend)."""
        if req.method not in ("POST", "PUT"):
            return Reply(405, {"error": "POST a message here; GET /_sandbox/webhook lists them"})
        content_type = req.headers.get("content-type", "")
        text = req.body.decode("utf-8", "replace")
        try:
            body: Any = json.loads(text) if "json" in content_type else text
        except ValueError:
            body = text
        self.webhooks.append({"path": req.path, "content_type": content_type, "body": body, "at": time.time()})
        return Reply(200, {"received": len(self.webhooks)})

    # -- hooks ---------------------------------------------------------------
    def operation(self, req: Request) -> str | None:
        """The API operation a request is (the name ``fail_next`` entries use)."""
        raise NotImplementedError

    def handle(self, req: Request) -> Reply:
        """Serve one API request (no faults involved)."""
        raise NotImplementedError

    def error_reply(self, req: Request, status: int) -> Reply:
        """The answer of an injected server error."""
        return Reply(status, {"error": "internal error (injected)"})

    def throttled_reply(self, req: Request) -> Reply:
        """The answer of an injected throttle."""
        return Reply(429, {"error": "throttled (injected)"})

    def control(self, req: Request) -> Reply | None:
        """Extra ``/_sandbox/...`` endpoints; None means not found."""
        return None
