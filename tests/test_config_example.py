"""config.example.yaml documents every key the loader accepts, and loads as it is."""

from pathlib import Path

import yaml

from ecomsend_cli.config import _SCHEMA, _TOP_LEVEL, load_config

EXAMPLE = Path(__file__).resolve().parents[1] / "config.example.yaml"


def test_example_loads_with_its_env_vars(tmp_path):
    env = {k: "x" for k in ("SHOPIFY_ACCESS_TOKEN", "TIKTOK_APP_SECRET", "TIKTOK_ACCESS_TOKEN",
                            "TIKTOK_REFRESH_TOKEN")}
    config = load_config(EXAMPLE, env=env)
    assert config.sync.concurrency == 4
    assert config.shopify.api_version == "2026-07"
    assert config.store_busy_timeout_seconds == 10


def test_example_mentions_every_key():
    text = EXAMPLE.read_text()
    data = yaml.safe_load(text)
    for key in _TOP_LEVEL:
        assert key in data, f"{key} is not documented in config.example.yaml"
    for section, keys in _SCHEMA.items():
        for key in keys:
            assert f"{key}:" in text, f"{section}.{key} is not documented in config.example.yaml"
