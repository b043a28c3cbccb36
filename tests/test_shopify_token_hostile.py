"""The client-credentials grant answered in a hostile form: no traceback, no token that is not one."""

from __future__ import annotations

import httpx
import pytest

from ecomsend_cli.errors import AuthError
from ecomsend_cli.models import MemoryTokenCache
from tests.test_shopify_client import SHOP_DATA, FakeTime, Script, make_client, ok


def _grant(body: bytes) -> httpx.Response:
    return httpx.Response(200, content=body, headers={"content-type": "application/json"})


@pytest.mark.parametrize("expires_in", [b'"soon"', b"Infinity", b"-100", b"1e300", b"[1]", b"true"])
def test_an_unusable_expires_in_is_taken_as_shopifys_24_hours(expires_in):
    cache = MemoryTokenCache()
    script = Script(_grant(b'{"access_token": "tok-A", "expires_in": ' + expires_in + b"}"), ok(SHOP_DATA))
    make_client(script, client_id="app-1", cache=cache).shop_info()
    assert script.graphql_requests[0].headers["X-Shopify-Access-Token"] == "tok-A"
    assert cache.load_token("shopify")["expires_at"] == int(FakeTime().wall + 86399)


@pytest.mark.parametrize("token", [b"123", b'["a"]', b'{"a": 1}', b'"  "'])
def test_a_token_that_is_not_text_is_refused_not_sent(token):
    script = Script(_grant(b'{"access_token": ' + token + b"}"), ok(SHOP_DATA))
    with pytest.raises(AuthError, match="refused the app credentials"):
        make_client(script, client_id="app-1").shop_info()
    assert script.graphql_requests == []
