"""Run the ecomsend CLI with the wall clock stepped by OFFSET seconds, as an NTP step or a resumed VM does.

Usage: ``python -m tests.clockstep OFFSET [ecomsend arguments...]``

Only the wall clock moves (``time.time``, ``time.time_ns``, ``datetime.now``,
``datetime.utcnow``), as a real step of the system clock does; the monotonic
and boot-time clocks the kernel keeps do not move, exactly as on a real machine.
"""

from __future__ import annotations

import datetime as _datetime
import runpy
import sys
import time

offset = float(sys.argv[1])
_real_time, _real_time_ns = time.time, time.time_ns
time.time = lambda: _real_time() + offset
time.time_ns = lambda: _real_time_ns() + int(offset * 1e9)


class _SteppedDatetime(_datetime.datetime):
    @classmethod
    def now(cls, tz=None):
        return cls.fromtimestamp(time.time(), tz)

    @classmethod
    def utcnow(cls):
        return cls.fromtimestamp(time.time(), _datetime.UTC).replace(tzinfo=None)


_datetime.datetime = _SteppedDatetime  # before ecomsend imports it
sys.argv = ["ecomsend", *sys.argv[2:]]
runpy.run_module("ecomsend_cli", run_name="__main__", alter_sys=True)
