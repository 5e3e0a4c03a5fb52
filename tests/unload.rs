//! MODULE LOAD / MODULE UNLOAD, a hundred times, with tracking clients connected: no crash, no
//! growth in the server's memory, a mirror that is right after every load, and clear refusals.

mod common;

use std::time::Instant;

use common::fuzz::{seed, Rng};
use common::mirror::{assert_client_mirror, assert_get_mirror, Expect, Fields};
use common::resp::split_raw;
use common::{info_int, int_of, module_path, servers, trackinfo_stats, Conn, Resp, Server};

/// 100 rounds; 15 under valgrind (`make memcheck`), still past the warm-up.
fn rounds() -> usize {
    common::sized(100, 15)
}

fn module_load(obs: &mut Conn, round: usize) {
    let path = module_path();
    let r = obs.cmd(&["MODULE", "LOAD", path.to_str().unwrap_or_default()]);
    assert!(
        r.is_ok(),
        "round {round}: MODULE LOAD {}: {r}",
        path.display()
    );
}

fn module_unload(obs: &mut Conn, round: usize) {
    let r = obs.cmd(&["MODULE", "UNLOAD", "trackinfo"]);
    assert!(r.is_ok(), "round {round}: MODULE UNLOAD trackinfo: {r}");
}

/// CONFIG GET of one config, in either protocol.
fn config(obs: &mut Conn, name: &str) -> String {
    let r = obs.cmd(&["CONFIG", "GET", name]);
    let value = match &r {
        Resp::Map(kv) => kv.first().map(|(_, v)| v),
        other => other.items().and_then(|kv| kv.get(1)),
    };
    value
        .and_then(Resp::text)
        .unwrap_or_else(|| panic!("CONFIG GET {name}: {r}"))
}

/// (id, fidelity) of each entry of TRACKINFO.CLIENTS.
fn listed(obs: &mut Conn) -> Vec<(i64, String)> {
    let (reply, raw) = obs.cmd_raw(&["TRACKINFO.CLIENTS"]);
    let (_, entries) = split_raw(&raw).unwrap_or_else(|e| panic!("TRACKINFO.CLIENTS {reply}: {e}"));
    entries
        .into_iter()
        .map(|e| {
            let f = Fields::parse_mirror(e, obs.proto).unwrap_or_else(|err| panic!("{err}"));
            (f.id.unwrap_or(-1), f.fidelity.unwrap_or_default())
        })
        .collect()
}

/// A random CLIENT TRACKING ON, every option drawn (REDIRECT to `target`).
fn tracking_on(rng: &mut Rng, target: i64) -> Vec<String> {
    let mut on: Vec<String> = ["CLIENT", "TRACKING", "ON"].map(String::from).to_vec();
    match rng.below(4) {
        0 => {}
        1 => on.push("OPTIN".into()),
        2 => on.push("OPTOUT".into()),
        _ => {
            on.push("BCAST".into());
            let n = rng.below(3);
            for p in rng.distinct(n, 3) {
                on.extend(["PREFIX".to_string(), ["u:", "v:", "w:"][p].to_string()]);
            }
        }
    }
    if rng.chance(40) {
        on.push("NOLOOP".into());
    }
    if rng.chance(40) {
        on.extend(["REDIRECT".to_string(), target.to_string()]);
    }
    on
}

/// Rounds before the memory baseline: the first loads allocate what the server keeps for good.
const WARM_UP: usize = 10;
/// How much `used_memory` may differ between two settled readings taken in the same state,
/// module unloaded. Measured: 0 to 2.5 KiB, from the layouts that the tracking traffic leaves
/// in the server's rax trees and dicts and from client buffer sizes. 8 KiB is three times that,
/// and what 90 bytes lost per load would add over the 90 measured rounds. The module's own
/// allocations are held to a far tighter bound (`MODULE_NOISE`).
const NOISE: i64 = 8 * 1024;
/// How much the module's own count (`memory-bytes`, to the byte) may differ between loads in the
/// same state: it includes the STATS command's own transient data. Any loss at each load adds up
/// to more than this over the rounds (the redis-module crate's configs lost 48 bytes per load).
const MODULE_NOISE: i64 = 64;
/// How much the server's RSS may grow over the measured rounds. Far above allocator noise, far
/// below what mapping the module's library again at every load would cost (the debug build's
/// text alone is megabytes).
const RSS_NOISE: i64 = 16 * 1024 * 1024;

/// `used_memory` once the server's housekeeping has caught up with the traffic: clientsCron
/// trims client buffers over several of its 100 ms runs, so memory drops in steps for a while.
/// Waits until five readings 100 ms apart agree.
fn settled_used_memory(obs: &mut Conn, d: &str) -> i64 {
    let deadline = Instant::now() + std::time::Duration::from_secs(10);
    let mut seen: Vec<i64> = Vec::new();
    loop {
        let u = info_int(obs, "memory", "used_memory");
        seen.push(u);
        if seen.len() >= 5 && seen[seen.len() - 5..].iter().all(|&x| x == u) {
            return u;
        }
        assert!(
            Instant::now() < deadline,
            "used_memory never settled in 10s on {d}: {seen:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn a_hundred_unload_cycles_with_tracking_clients_keep_the_mirror_right_and_memory_flat() {
    let seed = seed();
    println!("TRACKINFO_FUZZ_SEED={seed}");
    for bin in servers() {
        let started = Instant::now();
        // Without the module: every round starts with MODULE LOAD.
        let server = Server::start(&bin, None);
        let d = server.describe();
        let mut rng = Rng(seed);
        let mut obs2 = server.conn_proto(2);
        let mut obs3 = server.conn_proto(3);
        // The redirect target: a RESP3 client in Pub/Sub mode (its messages arrive as pushes,
        // which the harness sets aside, so its buffers can be drained with a PING).
        let mut sink = server.conn_proto(3);
        let sink_id = sink.client_id();
        sink.send(&["SUBSCRIBE", "__redis__:invalidate"]);
        match sink.try_read_frame() {
            Ok((Resp::Push(_), _)) => {}
            other => panic!("SUBSCRIBE answered {other:?}"),
        }
        // Tracking switched on before any load: partial after every load.
        let mut old = server.conn_proto(3);
        let old_id = old.client_id();
        old.ok(&["CLIENT", "TRACKING", "ON", "OPTIN", "NOLOOP"]);
        let mut bc = server.conn_proto(2);
        let bc_id = bc.client_id();
        let redirect = sink_id.to_string();
        bc.ok(&[
            "CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "u:", "REDIRECT", &redirect,
        ]);
        // Switches tracking off and on again after every load: exact where the server lets the
        // module see who sent a command; still tracking at the next load (then partial).
        let mut fresh = server.conn_proto(2);
        let fresh_id = fresh.client_id();
        let mut fresh_on = false;
        let mut writer = server.conn_proto(2);
        let known = Expect::for_client(&server.info, true);

        let mut baseline = None;
        let mut last = None;
        let mut rss = Vec::new();
        let rounds = rounds();
        let mut used = Vec::with_capacity(rounds);
        // memory-bytes right after each load where the same three clients track.
        let mut module_bytes = Vec::with_capacity(rounds);
        for round in 1..=rounds {
            module_load(&mut obs2, round);
            // Configs come back to their defaults, whatever the last load set them to.
            assert_eq!(
                config(&mut obs2, "trackinfo.key-table"),
                "yes",
                "round {round}"
            );
            assert_eq!(
                config(&mut obs2, "trackinfo.key-table-max-items"),
                "1000000",
                "round {round}"
            );
            let tracking = if fresh_on { 3 } else { 2 };
            let s = trackinfo_stats(&mut obs2);
            if fresh_on {
                module_bytes.push(int_of(&s, "memory-bytes"));
            }
            assert_eq!(
                int_of(&s, "tracking-clients"),
                tracking,
                "round {round} on {d}: {s:?}"
            );
            assert_eq!(
                int_of(&s, "server-tracking-clients"),
                tracking,
                "round {round} on {d}"
            );
            // Tracking switched on before this load: the module cannot know the options.
            let partial = "partial".to_string();
            let mut expect = vec![(old_id, partial.clone()), (bc_id, partial.clone())];
            if fresh_on {
                expect.push((fresh_id, partial.clone()));
            }
            expect.sort();
            assert_eq!(listed(&mut obs2), expect, "round {round} on {d}");
            assert_client_mirror(&server, &mut old, old_id, &mut obs3, Expect::Partial);
            assert_client_mirror(&server, &mut bc, bc_id, &mut obs2, Expect::Partial);

            // Switched on after this load: mirrored exactly (partial on Redis 7.0).
            fresh.ok(&["CLIENT", "TRACKING", "OFF"]);
            let proto = if rng.chance(50) { 3 } else { 2 };
            fresh.hello(proto);
            let on = tracking_on(&mut rng, sink_id);
            fresh.ok(&on);
            fresh_on = true;
            let r = fresh.cmd(&["MGET", "u:1", "v:1", "k"]);
            assert!(!r.is_error(), "round {round}: MGET: {r}");
            let obs = if proto == 3 { &mut obs3 } else { &mut obs2 };
            assert_client_mirror(&server, &mut fresh, fresh_id, obs, known);
            assert_get_mirror(&server, &mut fresh, fresh_id, known);
            writer.ok(&["MSET", "u:1", "x", "v:1", "y", "k", "z"]);
            assert_client_mirror(&server, &mut fresh, fresh_id, obs, known);
            let s = trackinfo_stats(&mut obs2);
            assert_eq!(int_of(&s, "tracking-clients"), 3, "round {round} on {d}");
            assert_eq!(
                int_of(&s, "server-tracking-clients"),
                3,
                "round {round} on {d}"
            );

            // Configs changed before the unload must not survive it.
            obs2.ok(&["CONFIG", "SET", "trackinfo.key-table-max-items", "12345"]);
            obs2.ok(&["CONFIG", "SET", "trackinfo.key-table", "no"]);
            let measure = round == WARM_UP || round == rounds;
            if measure {
                // The same server-side state at both measurements, whatever options were drawn.
                fresh.ok(&["CLIENT", "TRACKING", "OFF"]);
                fresh_on = false;
            }

            module_unload(&mut obs2, round);
            let r = obs2.cmd(&["TRACKINFO.GET"]);
            assert!(
                matches!(&r, Resp::Error(e) if e.starts_with(b"ERR unknown command")),
                "round {round}: TRACKINFO.GET after unload on {d}: {r}"
            );
            // Every connection sends a plain command: a client whose last command belonged to
            // the unloaded module must not be listed before (redis/redis#10177). The PINGs also
            // drain what was pushed to the RESP3 clients.
            for c in [
                &mut obs2,
                &mut obs3,
                &mut sink,
                &mut old,
                &mut bc,
                &mut fresh,
                &mut writer,
            ] {
                let r = c.cmd(&["PING"]);
                assert!(!r.is_error(), "round {round}: PING: {r}");
                c.pushes.clear();
            }
            // Traffic while the module is away: it cannot see it.
            writer.ok(&["SET", "u:1", &round.to_string()]);
            if measure {
                // Nothing left in the server's tracking table (BCAST keeps none).
                writer.ok(&["MSET", "u:1", "x", "v:1", "y", "k", "z"]);
                let m = settled_used_memory(&mut obs2, &d);
                rss.push(info_int(&mut obs2, "memory", "used_memory_rss"));
                if round == WARM_UP {
                    baseline = Some(m);
                } else {
                    last = Some(m);
                }
            }
            used.push(info_int(&mut obs2, "memory", "used_memory"));
        }
        let (baseline, last) = (baseline.unwrap_or(0), last.unwrap_or(0));
        println!(
            "used_memory, module unloaded, settled: {baseline} after round {WARM_UP}, {last} \
             after round {rounds} ({:+}); each round: {used:?} on {d}",
            last - baseline
        );
        println!("memory-bytes after each load: {module_bytes:?} on {d}");
        println!("used_memory_rss after rounds {WARM_UP} and {rounds}: {rss:?} on {d}");
        println!(
            "{rounds} rounds in {:.1}s on {d}",
            started.elapsed().as_secs_f64()
        );
        assert!(
            last - baseline <= NOISE,
            "used_memory grew by {} bytes over {} load/unload rounds on {d}",
            last - baseline,
            rounds - WARM_UP
        );
        let rss_growth = rss.last().copied().unwrap_or(0) - rss.first().copied().unwrap_or(0);
        assert!(
            rss.len() == 2 && rss_growth <= RSS_NOISE,
            "RSS went from {rss:?} over {} load/unload rounds on {d}",
            rounds - WARM_UP
        );
        let (lo, hi) = (
            module_bytes.iter().min().copied().unwrap_or(0),
            module_bytes.iter().max().copied().unwrap_or(0),
        );
        assert!(
            module_bytes.len() > rounds / 2 && hi - lo <= MODULE_NOISE,
            "memory-bytes right after load ranged over {lo}..{hi} on {d}"
        );
    }
}

#[test]
fn refused_unloads_say_why_and_leave_the_module_working() {
    for bin in servers() {
        let server = Server::with_module(&bin);
        let d = server.describe();
        let mut obs = server.conn_proto(3);
        let r = obs.cmd(&["MODULE", "UNLOAD", "no-such-module"]);
        assert_eq!(
            r,
            Resp::Error(b"ERR Error unloading module: no such module with that name".to_vec()),
            "on {d}"
        );
        let mut a = server.conn_proto(3);
        let a_id = a.client_id();
        a.ok(&["CLIENT", "TRACKING", "ON", "OPTIN", "NOLOOP"]);
        let known = Expect::for_client(&server.info, true);
        assert_client_mirror(&server, &mut a, a_id, &mut obs, known);

        // The module never blocks a client nor holds a timer, and exports no type or API: the
        // server's own reasons to refuse do not apply. An ACL rule naming one of its commands
        // (README: how to grant TRACKINFO.GET on Redis 7.0) does: Valkey refuses the unload
        // itself; on Redis the module refuses it, as Redis would crash recomputing the rule.
        obs.ok(&[
            "ACL",
            "SETUSER",
            "app",
            "on",
            "nopass",
            "-@all",
            "+trackinfo.get",
        ]);
        let r = obs.cmd(&["MODULE", "UNLOAD", "trackinfo"]);
        let why = match server.info.family {
            common::Family::Valkey => {
                "one or more ACL users reference commands from this module. Remove those ACL \
                 rules before unloading"
            }
            common::Family::Redis => "operation not possible.",
        };
        assert_eq!(
            r,
            Resp::Error(format!("ERR Error unloading module: {why}").into_bytes()),
            "on {d}"
        );
        if server.info.family == common::Family::Redis {
            let log = std::fs::read_to_string(&server.log).unwrap_or_default();
            assert!(
                log.contains(
                    "trackinfo: MODULE UNLOAD refused: ACL rules name trackinfo commands \
                     (user app: +trackinfo.get)"
                ),
                "the server log does not say why, on {d}:\n{}",
                server.log_tail(10)
            );
        }

        // Still loaded and still watching: the mirror follows what happens next.
        assert_client_mirror(&server, &mut a, a_id, &mut obs, known);
        a.ok(&["CLIENT", "TRACKING", "OFF"]);
        a.ok(&[
            "CLIENT", "TRACKING", "ON", "BCAST", "PREFIX", "x:", "NOLOOP",
        ]);
        assert_client_mirror(&server, &mut a, a_id, &mut obs, known);
        let mut app = server.conn_proto(2);
        app.ok(&["AUTH", "app", "any"]);
        let r = app.cmd(&["TRACKINFO.GET"]);
        assert!(!r.is_error(), "TRACKINFO.GET as app on {d}: {r}");

        // Once the rule is gone the unload goes through, and the module loads again.
        assert_eq!(obs.cmd(&["ACL", "DELUSER", "app"]), Resp::Int(1));
        obs.ok(&["MODULE", "UNLOAD", "trackinfo"]);
        let r = obs.cmd(&["MODULE", "UNLOAD", "trackinfo"]);
        assert_eq!(
            r,
            Resp::Error(b"ERR Error unloading module: no such module with that name".to_vec()),
            "a second unload on {d}"
        );
        // Its last command must not be the unloaded module's (redis/redis#10177).
        a.cmd(&["PING"]);
        // Arguments after the path set the configs; a bad one refuses the load, saying why.
        let path = module_path();
        let path = path.to_str().unwrap_or_default();
        let r = obs.cmd(&["MODULE", "LOAD", path, "key-table", "maybe"]);
        assert!(r.is_error(), "MODULE LOAD with key-table maybe on {d}: {r}");
        let log = std::fs::read_to_string(&server.log).unwrap_or_default();
        assert!(
            log.contains("trackinfo: key-table maybe is neither yes nor no"),
            "on {d}:\n{}",
            server.log_tail(10)
        );
        let r = obs.cmd(&["MODULE", "LOAD", path, "key-table-max-items", "777"]);
        assert!(r.is_ok(), "MODULE LOAD on {d}: {r}");
        assert_eq!(config(&mut obs, "trackinfo.key-table-max-items"), "777");
        assert_eq!(config(&mut obs, "trackinfo.key-table"), "yes");
        assert_client_mirror(&server, &mut a, a_id, &mut obs, Expect::Partial);
    }
}
