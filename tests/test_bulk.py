"""`paused_gc`: the cyclic collector waits while a batch is built, and comes back as it was;
`prefetched` and `quick_gil_handoff`: one thread produces while another consumes."""

from __future__ import annotations

import gc
import itertools
import sys
import threading
from contextlib import closing

import pytest

from ecomsend_cli.bulk import paused_gc, prefetched, quick_gil_handoff


def test_the_collector_is_paused_inside_and_back_after_even_on_error():
    assert gc.isenabled()
    with pytest.raises(ValueError):
        with paused_gc():
            assert not gc.isenabled()
            with paused_gc():  # nested: the inner block does not turn it back on
                pass
            assert not gc.isenabled()
            raise ValueError
    assert gc.isenabled()


def test_a_collector_turned_off_before_stays_off():
    gc.disable()
    try:
        with paused_gc():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_prefetched_hands_over_every_item_in_order_from_another_thread():
    producers = set()

    def numbers():
        producers.add(threading.get_ident())
        yield from range(100)

    assert list(prefetched(numbers(), depth=3)) == list(range(100))
    assert producers and threading.get_ident() not in producers


def test_prefetched_raises_the_producers_error_after_the_items_before_it():
    def broken():
        yield 1
        yield 2
        raise LookupError("the source broke")

    got = []
    with pytest.raises(LookupError, match="the source broke"):
        for item in prefetched(broken()):
            got.append(item)
    assert got == [1, 2]


def test_a_consumer_that_stops_stops_an_endless_producer_and_closes_it():
    closed = threading.Event()

    def endless():
        try:
            yield from itertools.count()
        finally:
            closed.set()

    with closing(prefetched(endless(), depth=2)) as items:
        assert [next(items) for _ in range(5)] == [0, 1, 2, 3, 4]
    assert closed.wait(10.0)  # a deadline against hanging, not a measure


def test_the_switch_interval_is_shortened_inside_and_restored_after_even_on_error():
    before = sys.getswitchinterval()
    with pytest.raises(ValueError):
        with quick_gil_handoff(0.0002):
            assert sys.getswitchinterval() == pytest.approx(0.0002)
            raise ValueError
    assert sys.getswitchinterval() == before
