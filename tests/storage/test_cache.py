"""The local cache of objects read from the bucket stays within its size, least recently used out first."""
from __future__ import annotations

from app.filestore import make_store
from app.filestore.cache import ObjectCache


def _usage(folder) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def test_bucket_reads_are_cached_and_evicted_within_the_size(s3_endpoint, tmp_path):
    from tests.conftest import s3_settings

    settings = s3_settings(s3_endpoint)
    options = {"endpoint_url": settings["S3_ENDPOINT_URL"], "region": settings["S3_REGION"],
               "access_key": settings["S3_ACCESS_KEY_ID"], "secret_key": settings["S3_SECRET_ACCESS_KEY"]}
    store = make_store(settings["STORAGE_URL"], tmp_path / "web", cache_bytes=3500, s3_options=options)
    for i in range(6):
        store.write(f"images/00/{i}", bytes([i]) * 1000)
    cache_dir = tmp_path / "web" / "cache" / "objects"
    for i in range(6):
        assert store.local_path(f"images/00/{i}").read_bytes() == bytes([i]) * 1000
        assert _usage(cache_dir) <= 3500
        store.local_path("images/00/0")  # read again and again: the most recently used one stays
    kept = {p.name for p in cache_dir.rglob("*") if p.is_file()}
    assert "0" in kept and "5" in kept and "1" not in kept and "2" not in kept
    # a cached copy is served without the bucket: even once the object is gone from it
    store.client().delete_object(Bucket=store.bucket, Key=store.name("images/00/5"))
    assert store.local_path("images/00/5").read_bytes() == bytes([5]) * 1000


def test_eviction_keeps_the_copy_just_fetched_and_frees_below_the_limit(tmp_path):
    cache = ObjectCache(tmp_path, max_bytes=1000)
    for name in ("a", "b", "c"):
        cache.get(name, lambda tmp: tmp.write_bytes(b"x" * 400))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b", "c"]  # "a" went first
    big = cache.get("big", lambda tmp: tmp.write_bytes(b"y" * 1500))  # larger than the whole cache
    assert big.exists() and sorted(p.name for p in tmp_path.iterdir()) == ["big"]
    assert cache.lookup("a") is None and cache.lookup("big") == big


def test_a_hit_keeps_the_modification_time_that_readers_key_on(tmp_path):
    cache = ObjectCache(tmp_path, max_bytes=10_000)
    path = cache.get("model_card.json", lambda tmp: tmp.write_bytes(b"{}"))
    fetched = path.stat().st_mtime_ns
    for _ in range(3):
        cache.lookup("model_card.json")
    assert path.stat().st_mtime_ns == fetched  # app.serving reloads a model whose card's mtime changed
