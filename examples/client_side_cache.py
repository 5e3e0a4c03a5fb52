#!/usr/bin/env python3
"""Client-side caching with redis-py, checked through the trackinfo module.

A RESP3 client with a client-side cache reads three keys twice; another connection writes one of
them. The client then asks TRACKINFO.GET how the server sees it, and exits 1 when that is not
what it expects.

    .venv/bin/python examples/client_side_cache.py --port 6390

The cache is redis-py's built-in one (`cache_config=CacheConfig()`) where redis-py (7.4.0, pinned
in the Makefile) offers it: Redis 7.4 or later. On Valkey and older Redis it refuses, and the
script uses a small cache of its own: a dict of GET replies on one RESP3 connection with
`CLIENT TRACKING ON`, from which each invalidation push drops the keys it names, as redis-py's
does. `--cache own` uses that one everywhere. The first line says which cache runs.

What it expects from TRACKINFO.GET is what the module documents: exact counters where its command
filter learns who sent each command (Redis 7.2+ and Valkey); on Redis 7.0, `fidelity partial`
with the flags and `delivery` that CLIENT LIST exposes, and -1 for every counter.
"""

import argparse
import sys

import redis
from redis.cache import CacheConfig

KEYS = ["user:1", "user:2", "user:3"]
NAME = "cache-demo"


def text(v):
    return v.decode() if isinstance(v, bytes) else v


class RedisPyCache:
    """redis-py's own cache; the constructor raises ConnectionError where redis-py refuses it."""

    label = "redis-py"

    def __init__(self, host, port):
        # One connection, so that TRACKINFO.GET asks about the connection that caches.
        self.client = redis.Redis(
            host=host,
            port=port,
            protocol=3,
            cache_config=CacheConfig(),
            single_connection_client=True,
            client_name=NAME,
        )
        self.hello = self.client.connection.handshake_metadata

    def get(self, key):
        return self.client.get(key)

    def command(self, *args):
        return self.client.execute_command(*args)


class OwnCache:
    """GET replies in a dict, on one RESP3 connection with CLIENT TRACKING ON; an invalidation
    push drops the keys it names (all of them for FLUSHDB/FLUSHALL's null)."""

    label = "own"

    def __init__(self, host, port):
        self.values = {}
        self.conn = redis.Connection(host=host, port=port, protocol=3, client_name=NAME)
        # Run after HELLO on every (re)connect, as redis-py's cache does (connection.py,
        # CacheProxyConnection._enable_tracking_callback).
        self.conn.register_connect_callback(self._track)
        self.conn.connect()
        self.hello = self.conn.handshake_metadata

    def _track(self, conn):
        self.values.clear()  # a new connection was not told what changed meanwhile
        conn.send_command("CLIENT", "TRACKING", "ON")
        if conn.read_response() != b"OK":
            raise redis.ConnectionError("CLIENT TRACKING ON refused")
        # The RESP3 parser calls this for each `invalidate` push as it reads it, also for one
        # that arrives ahead of a command's reply.
        conn._parser.set_invalidation_push_handler(self._invalidate)

    def _invalidate(self, push):
        if push[1] is None:
            self.values.clear()
        else:
            for key in push[1]:
                self.values.pop(key, None)

    def command(self, *args):
        # Apply the pushes that arrived while the connection was idle.
        while self.conn.can_read():
            self.conn.read_response(push_request=True)
        self.conn.send_command(*args)
        return self.conn.read_response()

    def get(self, key):
        k = key.encode()
        while self.conn.can_read():
            self.conn.read_response(push_request=True)
        if k not in self.values:
            self.values[k] = self.command("GET", key)
        return self.values[k]


def open_cache(host, port, choice):
    """The cache to use, and why it is that one."""
    if choice != "own":
        try:
            return RedisPyCache(host, port), "redis-py's built-in cache (cache_config)"
        except redis.ConnectionError as e:
            if choice == "redis-py":
                raise
            why = f"redis-py refuses its built-in cache here ({e})"
    else:
        why = "--cache own"
    return OwnCache(host, port), f"the script's own cache: {why}"


def module_knows_sender(hello):
    """Whether the module's command filter learns who sent each command: Redis 7.2+ and Valkey
    (README, "Supported servers and fidelity"). HELLO's `server` and `version` say which."""
    fields = {text(k): text(v) for k, v in hello.items()}
    version = tuple(int(p) for p in fields["version"].split(".")[:2])
    return not (fields["server"] == "redis" and version < (7, 2))


def get_calls(conn):
    """How many GETs the server ran (INFO commandstats)."""
    return conn.info("commandstats").get("cmdstat_get", {}).get("calls", 0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=6379)
    ap.add_argument(
        "--cache",
        choices=["auto", "redis-py", "own"],
        default="auto",
        help="auto (default): redis-py's where it offers it, else the script's own",
    )
    args = ap.parse_args()

    writer = redis.Redis(host=args.host, port=args.port)
    writer.mset({k: "v1" for k in KEYS})
    try:
        cache, why = open_cache(args.host, args.port, args.cache)
    except redis.ConnectionError as e:
        print(f"redis-py will not cache on this server: {e}", file=sys.stderr)
        return 2
    print(f"cache: {why}")

    gets_before = get_calls(writer)
    for _ in range(2):  # the second round is served from the local cache
        for k in KEYS:
            cache.get(k)
    writer.set("user:2", "v2")
    # The invalidation was queued before this PING's reply: the cache has applied it on return.
    cache.command("PING")
    fresh = cache.get("user:2")
    gets = get_calls(writer) - gets_before

    entry = {text(k): v for k, v in cache.command("TRACKINFO.GET").items()}
    flags = {text(f) for f in entry["flags"]}

    # 6 reads served, 4 reached the server: 3 misses, and user:2 again after its invalidation.
    if module_knows_sender(cache.hello):
        expected = {
            "fidelity": "exact",
            "counters": "exact",
            "tracked-keys": 3,
            "tracked-reads": 4,
            "invalidated-keys": 1,
            "flush-invalidations": 0,
        }
    else:
        # Redis 7.0: the module shows what CLIENT LIST exposes, and cannot count (README).
        expected = {
            "fidelity": "partial",
            "counters": "approximate",
            "tracked-keys": -1,
            "tracked-reads": -1,
            "invalidated-keys": -1,
            "flush-invalidations": -1,
        }
    expected.update({"delivery": "self", "resp": 3})
    wrong = [
        f"{k}: expected {v!r}, TRACKINFO.GET says {text(entry.get(k))!r}"
        for k, v in expected.items()
        if text(entry.get(k)) != v
    ]
    if "on" not in flags:
        wrong.append(f"flags: expected 'on', TRACKINFO.GET says {sorted(flags)}")
    if fresh != b"v2":
        wrong.append(f"user:2 after the write: expected b'v2', the cache served {fresh!r}")
    if gets != 4:
        wrong.append(f"GETs that reached the server: expected 4, INFO commandstats says {gets}")
    for line in wrong:
        print(f"FAIL {line}", file=sys.stderr)
    if wrong:
        return 1
    print(
        f"ok: cache={cache.label} client {entry['id']} delivery={text(entry['delivery'])} "
        f"fidelity={text(entry['fidelity'])} tracked-keys={entry['tracked-keys']} "
        f"tracked-reads={entry['tracked-reads']} invalidated-keys={entry['invalidated-keys']}; "
        f"6 reads, {gets} reached the server"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
