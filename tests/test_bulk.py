"""`paused_gc`: the cyclic collector waits while a batch is built, and comes back as it was."""

from __future__ import annotations

import gc

import pytest

from ecomsend_cli.bulk import paused_gc


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
