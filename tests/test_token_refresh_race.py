"""Two commands refreshing an expired TikTok token at once both succeed (issue 15 item 5).

TikTok rotates the refresh token on every refresh, and so does the simulator:
the refresh token a refresh used is refused afterwards (36004005). The two
commands here are two processes sharing one store: a subprocess whose refresh
the simulator holds for a while, and the CLI in this process, whose refresh
overtakes it.
"""

from __future__ import annotations

import json
import subprocess
import time

from ecomsend_cli.store import Store
from tests.conftest import python_cmd


def test_two_commands_refreshing_at_once_both_succeed(sandbox, sb_cli):
    Store.open(sandbox.store_path).close()
    sim = sandbox.tiktok
    sim.expire_access_token()
    # The first refresh to arrive is held 2 s before TikTok handles it.
    sim.set_faults(fail_next=[{"op": "token.refresh", "kind": "latency", "latency_ms": 2000}])
    first = subprocess.Popen(python_cmd("--config", str(sandbox.config_file), "doctor", "--json"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # Wait until its refresh is being held (the one-shot fault is taken): both commands
        # have now read the same refresh token from the store.
        give_up = time.monotonic() + 60
        while sim.faults.snapshot()["fail_next"] and first.poll() is None and time.monotonic() < give_up:
            time.sleep(0.02)
        assert not sim.faults.snapshot()["fail_next"], "the first command never refreshed"
        second = sb_cli("doctor", "--json")
        out, err = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()

    refreshes = sim.ops("token.refresh")
    # The race happened: the held refresh presented a refresh token the other one had used up.
    assert [r["code"] for r in refreshes] == [0, 36004005], refreshes
    for code, stdout, stderr in ((second.exit_code, second.stdout, second.stderr),
                                 (first.returncode, out, err)):
        checks = {c["check"]: c for c in json.loads(stdout)["checks"]}
        assert checks["tiktok"]["ok"], checks["tiktok"]
        assert code == 0, stderr
        assert "re-authorise" not in stdout + stderr
    with Store.open(sandbox.store_path) as store:
        saved = store.load_token("tiktok")
    assert saved is not None
    current = sim.credentials
    assert (saved["access_token"], saved["refresh_token"]) == (current["access_token"],
                                                               current["refresh_token"])
