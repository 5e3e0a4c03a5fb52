#!/usr/bin/env python3
"""Client-side caching with redis-py, checked through the trackinfo module.

A RESP3 client with redis-py's built-in cache (`cache_config=CacheConfig()`, which switches
CLIENT TRACKING on and drops a cached key when its invalidation arrives) reads three keys twice;
another connection writes one of them. The client then asks TRACKINFO.GET how the server sees
it, and exits 1 when that is not what it expects.

    .venv/bin/python examples/client_side_cache.py --port 6390

redis-py (7.4.0, pinned in the Makefile) offers its cache only on Redis 7.4 or later: on
Valkey and Redis 7.0 it refuses the connection, and this script exits 2.
"""

import argparse
import sys

import redis
from redis.cache import CacheConfig

KEYS = ["user:1", "user:2", "user:3"]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=6379)
    args = ap.parse_args()

    writer = redis.Redis(host=args.host, port=args.port)
    writer.mset({k: "v1" for k in KEYS})
    # One connection, so that TRACKINFO.GET asks about the connection that caches.
    try:
        cached = redis.Redis(
            host=args.host,
            port=args.port,
            protocol=3,
            cache_config=CacheConfig(),
            single_connection_client=True,
            client_name="cache-demo",
        )
    except redis.ConnectionError as e:
        print(f"redis-py will not cache on this server: {e}", file=sys.stderr)
        return 2

    for _ in range(2):  # the second round is served from the local cache
        for k in KEYS:
            cached.get(k)
    writer.set("user:2", "v2")
    # The invalidation was queued before this PING's reply: redis-py has applied it on return.
    cached.ping()
    fresh = cached.get("user:2")

    entry = cached.execute_command("TRACKINFO.GET")
    entry = {k.decode(): v for k, v in entry.items()}
    text = lambda v: v.decode() if isinstance(v, bytes) else v  # noqa: E731
    flags = {text(f) for f in entry["flags"]}

    # 6 reads served, 4 reached the server: 3 misses, and user:2 again after its invalidation.
    expected = {
        "delivery": "self",
        "resp": 3,
        "fidelity": "exact",
        "counters": "exact",
        "tracked-keys": 3,
        "tracked-reads": 4,
        "invalidated-keys": 1,
    }
    wrong = [
        f"{k}: expected {v!r}, TRACKINFO.GET says {text(entry.get(k))!r}"
        for k, v in expected.items()
        if text(entry.get(k)) != v
    ]
    if "on" not in flags:
        wrong.append(f"flags: expected 'on', TRACKINFO.GET says {sorted(flags)}")
    if fresh != b"v2":
        wrong.append(f"user:2 after the write: expected b'v2', the cache served {fresh!r}")
    for line in wrong:
        print(f"FAIL {line}", file=sys.stderr)
    if wrong:
        return 1
    print(
        f"ok: client {entry['id']} delivery={expected['delivery']} "
        f"tracked-keys={entry['tracked-keys']} tracked-reads={entry['tracked-reads']} "
        f"invalidated-keys={entry['invalidated-keys']}; 6 reads, 4 reached the server"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
