"""The embedded Redis (`make run`'s default): stopping it saves its data for the next start."""
from __future__ import annotations

import redis

from app.redis_server import ensure_embedded_redis, stop_embedded_redis


def test_stopping_saves_the_data_and_the_next_start_finds_it(tmp_path):
    url = ensure_embedded_redis(str(tmp_path))
    client = redis.Redis.from_url(url)
    client.set("studio:test:kept", "yes")
    client.close()
    stop_embedded_redis(str(tmp_path))
    assert not (tmp_path / "redis.sock").exists()
    try:
        again = redis.Redis.from_url(ensure_embedded_redis(str(tmp_path)))
        assert again.get("studio:test:kept") == b"yes"
        again.close()
    finally:
        stop_embedded_redis(str(tmp_path))
