"""`ecomsend demo`: the newcomer's first command runs the whole story on the sandbox."""

import re
import subprocess

import pytest

from tests.conftest import python_cmd


@pytest.mark.slow
def test_demo_tells_the_whole_story(tmp_path):
    out = subprocess.run(python_cmd("demo"), capture_output=True, text=True, timeout=120, cwd=tmp_path)
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    for step in ("$ ecomsend sync-orders", "$ ecomsend list-unlinked", "$ ecomsend autolink --yes",
                 "$ ecomsend link STK-1 STK-001", "$ ecomsend orders", "What happened", "Try next"):
        assert step in text
    assert "Blocked by unlinked SKUs" in text  # the first sync blocks orders
    assert "Linked 1729600000001000011" in text  # the hand link
    synced = int(re.search(r"Now: (\d+) synced", text).group(1))
    blocked = int(re.search(r"(\d+) blocked by SKUs", text).group(1))
    assert synced >= 15 and blocked >= 1
    # The second act (DESIGN §6b): tracking to TikTok, a TikTok cancellation into Shopify.
    assert "shipped 9400111899223100000002 (USPS); shipped 1Z999AA10123456784 (UPS)" in text  # the split
    assert "put 3 package(s) with their tracking on TikTok" in text
    assert re.search(r"cancellation of #\d+ on TikTok cancelled its Shopify order, and its 4 unit\(s\) went back", text)
    assert not list(tmp_path.iterdir())  # the throwaway folder is not left in the cwd
