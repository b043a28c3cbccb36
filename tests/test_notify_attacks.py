"""Alerts against hostile receivers and hostile shop data: bounded in time and size, plain text."""

from __future__ import annotations

import socket
import threading
import time
from types import SimpleNamespace

from ecomsend_cli.config import Secret
from ecomsend_cli.notify import _blocked_alert, build_message, send
from ecomsend_cli.store import Store
from tests.factory import order, sku


def _trickling_receiver() -> tuple[int, threading.Event]:
    """A loopback HTTP receiver that answers one byte every 0.2 s: each read is quick, the answer never ends."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            conn, _ = server.accept()
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
            while not done.wait(0.2):
                try:
                    conn.sendall(b"x")
                except OSError:
                    break
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    return server.getsockname()[1], done


def test_a_receiver_that_never_finishes_answering_is_given_up_on_and_the_rest_not_tried():
    port, done = _trickling_receiver()
    try:
        urls = [Secret(f"json://127.0.0.1:{port}/hook"), Secret(f"json://127.0.0.1:{port}/other")]
        delivered, warnings = send(urls, "t", "b", deadline=1)
    finally:
        done.set()
    assert not delivered
    assert "notify.urls[0]" in warnings[0] and "no answer within 1 s" in warnings[0]
    assert "notify.urls[1]" in warnings[1] and "not tried" in warnings[1]
    assert all(str(port) not in w for w in warnings)  # the URL itself is never told


def test_ten_thousand_hostile_blocked_skus_make_one_bounded_plain_message(tmp_path):
    title = "\x1b[2J\x1b]0;owned\x07Mug\r\nFAKE: all good\u202e " + "T" * 5000
    with Store.open(tmp_path / "s.db") as store:
        with store.transaction():
            for i in range(10_000):
                store.record_order(order(f"o{i}", [sku(f"t{i}", f"S{i}\x1b[31m", title, "Red\x00")]), state="blocked")
        config = SimpleNamespace(notify=SimpleNamespace(blocked_after_hours=0))
        alert = _blocked_alert(store, config, time.time() + 60)
    assert alert is not None and len(alert.keys) == 10_000
    title_out, body = build_message([alert], shop="shop")
    assert len(body) <= 4000 and "10000 orders blocked" in body and "… and 9995 more" in body
    assert not any(ch in body for ch in "\x1b\x07\x00\r\u202e")
    assert "\nFAKE" not in body  # a title cannot start a line of its own
