"""Who used the prediction API how much: images per caller per hour, in Redis sorted sets (one per hour,
kept a little over a day), for the admin's "top users in the last 24 hours". A caller is an account
("user:<id>") or, for anonymous calls, the client IP ("ip:<address>")."""
from __future__ import annotations

import logging
import time
import uuid

from redis.exceptions import RedisError

from app.extensions import get_redis

log = logging.getLogger(__name__)
PREFIX = "studio:activity:predictions:"
KEEP_S = 26 * 3600
HOURS = 24


def _bucket(at: float) -> str:
    return PREFIX + time.strftime("%Y%m%d%H", time.gmtime(at))


def record_predictions(user_id: int | None, ip: str | None, images: int) -> None:
    """Count `images` predicted for the caller in the current hour. Never fails the request."""
    if images <= 0:
        return
    member = f"user:{user_id}" if user_id is not None else f"ip:{ip or 'unknown'}"
    key = _bucket(time.time())
    try:
        pipe = get_redis().pipeline()
        pipe.zincrby(key, images, member)
        pipe.expire(key, KEEP_S)
        pipe.execute()
    except (RedisError, OSError):
        log.warning("could not record %d predictions for %s", images, member)


def top_predictors(limit: int = 10) -> list[tuple[str, int]]:
    """[(caller, images)] with the most images predicted in the last 24 hours (by whole hours), most first."""
    now = time.time()
    keys = [_bucket(now - 3600 * h) for h in range(HOURS)]
    scratch = f"{PREFIX}sum:{uuid.uuid4().hex}"
    conn = get_redis()
    pipe = conn.pipeline()
    pipe.zunionstore(scratch, keys)
    pipe.zrevrange(scratch, 0, limit - 1, withscores=True)
    pipe.delete(scratch)
    _, rows, _ = pipe.execute()
    return [(member.decode() if isinstance(member, bytes) else member, int(score)) for member, score in rows]
