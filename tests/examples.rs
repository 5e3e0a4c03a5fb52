//! examples/ and docs/troubleshooting.md, run against real servers so that they cannot rot:
//! the redis-cli sessions (each command run with the real `redis-cli`, its output compared with
//! the file after masking what varies; the blocks marked `check on Redis 7.0` on Redis 7.0, the
//! others on Redis 7.2+ and Valkey), the client-side caching script, and the Prometheus alert
//! rules (every field they name exists on a running server).
//!
//! `TRACKINFO_BLESS=1` rewrites the sessions' outputs (and the ids comment) from this run: each
//! block from the first server that checks it. For a deliberate change, reviewed with `git diff`.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{servers, Conn, Server};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn redis_cli() -> String {
    std::env::var("TRACKINFO_REDIS_CLI").unwrap_or_else(|_| "redis-cli".into())
}

/// The venv python `make pydeps` made (redis-py, PyYAML), or `TRACKINFO_PYTHON`.
fn python() -> PathBuf {
    let p = std::env::var("TRACKINFO_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| repo(".venv/bin/python"));
    assert!(
        p.is_file(),
        "{} does not exist: run `make pydeps` (or set TRACKINFO_PYTHON)",
        p.display()
    );
    p
}

fn bless() -> bool {
    std::env::var("TRACKINFO_BLESS").is_ok_and(|v| v == "1")
}

// ---- sessions: markdown code blocks of `$ redis-cli ...` lines and their output ----

/// One `$ redis-cli ...` line of a checked block and the output shown under it.
struct Step {
    args: Vec<String>,
    expected: String,
}

/// A code block right after `<!-- check: NAME -->` (checked on Redis 7.2+ and Valkey) or
/// `<!-- check on Redis 7.0: NAME -->` (checked on Redis 7.0 only, where the module cannot tell
/// who sent a command and shows less).
struct Block {
    name: String,
    redis70: bool,
    /// Line range of the block's content in the file (between the fences).
    lines: std::ops::Range<usize>,
    steps: Vec<Step>,
}

const IDS_MARK: &str = "ids of this capture: ";

/// The checked blocks of a markdown file, and the ids of its capture (name -> id).
fn parse_session(text: &str) -> (Vec<Block>, BTreeMap<String, i64>) {
    let lines: Vec<&str> = text.lines().collect();
    let mut ids = BTreeMap::new();
    if let Some(l) = lines.iter().find(|l| l.contains(IDS_MARK)) {
        let list = l.split(IDS_MARK).nth(1).unwrap_or("");
        for pair in list.trim_end_matches("-->").split_whitespace() {
            if let Some((name, id)) = pair.split_once('=') {
                ids.insert(name.to_string(), id.parse().expect("an id"));
            }
        }
    }
    let mut blocks = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let marker = [("<!-- check: ", false), ("<!-- check on Redis 7.0: ", true)]
            .into_iter()
            .find_map(|(prefix, redis70)| {
                let name = lines[i].strip_prefix(prefix)?.strip_suffix(" -->")?;
                Some((name, redis70))
            });
        let Some((name, redis70)) = marker else {
            i += 1;
            continue;
        };
        assert_eq!(lines.get(i + 1), Some(&"```"), "a code block after {name}");
        let start = i + 2;
        let end = start
            + lines[start..]
                .iter()
                .position(|l| *l == "```")
                .expect("the block's closing fence");
        let mut steps: Vec<Step> = Vec::new();
        for l in &lines[start..end] {
            if let Some(cmd) = l.strip_prefix("$ redis-cli ") {
                steps.push(Step {
                    args: cmd.split_whitespace().map(str::to_string).collect(),
                    expected: String::new(),
                });
            } else {
                let step = steps.last_mut().expect("output after a `$ redis-cli` line");
                step.expected.push_str(l);
                step.expected.push('\n');
            }
        }
        blocks.push(Block {
            name: name.to_string(),
            redis70,
            lines: start..end,
            steps,
        });
        i = end + 1;
    }
    (blocks, ids)
}

/// Replaces the integer after each `prefix` in `line` by `f(integer)`.
fn map_int_after(line: &str, prefix: &str, f: &dyn Fn(i64) -> String) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find(prefix) {
        let (head, tail) = rest.split_at(at + prefix.len());
        out.push_str(head);
        let len = tail
            .char_indices()
            .take_while(|&(i, c)| c.is_ascii_digit() || (i == 0 && c == '-'))
            .count();
        match tail[..len].parse::<i64>() {
            Ok(n) => out.push_str(&f(n)),
            Err(_) => out.push_str(&tail[..len]),
        }
        rest = &tail[len..];
    }
    out.push_str(rest);
    out
}

/// Where a client id stands in TRACKINFO output (RESP3 as redis-cli shows it, and LIST lines).
const ID_PLACES: [&str; 5] = [
    " id=",
    " redir=",
    "\"id\" => (integer) ",
    "\"redirect\" => (integer) ",
    "# (integer) ", // a key of redirect-target-sources
];

/// Rewrites the client ids in `output` by `map` (ids it does not know stay).
fn map_ids(output: &str, map: &BTreeMap<i64, i64>) -> String {
    let f = |n: i64| map.get(&n).copied().unwrap_or(n).to_string();
    output
        .lines()
        .map(|l| {
            let l = format!(" {l}"); // so that `id=` at the start matches " id="
            let l = ID_PLACES
                .iter()
                .fold(l, |l, place| map_int_after(&l, place, &f));
            format!("{}\n", &l[1..])
        })
        .collect()
}

/// What varies from run to run, masked in expected and actual output alike (the rule is
/// written in examples/redis-cli.md).
fn mask(output: &str) -> String {
    let masked = |tag: &'static str| move |n: i64| if n == -1 { "-1".into() } else { tag.into() };
    let places: [(&str, &str); 10] = [
        ("addr=127.0.0.1:", "<port>"),
        (" since=", "<ms>"),
        ("\"tracking-since\" => (integer) ", "<ms>"),
        ("\"last-invalidation\" => (integer) ", "<ms>"),
        ("\"memory-bytes\" => (integer) ", "<n>"),
        ("\"memory-allocations\" => (integer) ", "<n>"),
        ("\"filter-allocations\" => (integer) ", "<n>"),
        ("trackinfo_memory_bytes:", "<n>"),
        ("trackinfo_memory_allocations:", "<n>"),
        ("trackinfo_filter_allocations:", "<n>"),
    ];
    output
        .replace("\r\n", "\n")
        .lines()
        .map(|l| {
            let l = places.iter().fold(l.to_string(), |l, (p, tag)| {
                map_int_after(&l, p, &masked(tag))
            });
            format!("{l}\n")
        })
        .collect()
}

/// `redis-cli -p <port> --no-raw <args>`: what a terminal would show.
fn run_cli(port: u16, args: &[String]) -> String {
    let out = Command::new(redis_cli())
        .args(["-p", &port.to_string(), "--no-raw"])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", redis_cli()));
    assert!(out.status.success(), "redis-cli {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).replace("\r\n", "\n")
}

/// The connections a session sets up, by name; kept open until the session ends.
#[derive(Default)]
struct Clients {
    conns: BTreeMap<String, Conn>,
    ids: BTreeMap<String, i64>,
}

impl Clients {
    fn open(&mut self, server: &Server, name: &str, proto: u8) -> &mut Conn {
        let mut c = server.conn_proto(proto);
        c.ok(&["CLIENT", "SETNAME", name]);
        self.ids.insert(name.to_string(), c.client_id());
        self.conns.insert(name.to_string(), c);
        self.get(name)
    }

    fn get(&mut self, name: &str) -> &mut Conn {
        self.conns.get_mut(name).expect("an open client")
    }

    fn id(&self, name: &str) -> String {
        self.ids[name].to_string()
    }

    /// Closes `name` and waits until the server has freed it.
    fn close(&mut self, server: &Server, name: &str) {
        drop(self.conns.remove(name));
        let mut obs = server.conn();
        server.wait_client_gone(&mut obs, self.ids[name]);
    }
}

/// Runs the blocks of `file` checked on `server`'s kind (Redis 7.0 or not), `setup(block name)`
/// before each. Returns the file as this run would write it (for TRACKINFO_BLESS: those blocks
/// rewritten, the others kept), or panics on the first difference.
fn check_session(server: &Server, file: &str, mut setup: impl FnMut(&str, &mut Clients)) -> String {
    let text = std::fs::read_to_string(repo(file)).expect("the session file");
    let (mut blocks, file_ids) = parse_session(&text);
    blocks.retain(|b| b.redis70 == server.info.is_redis70());
    assert!(
        !blocks.is_empty(),
        "{file} has no block checked on {}",
        server.describe()
    );
    let mut clients = Clients::default();
    let mut blessed: Vec<String> = text.lines().map(str::to_string).collect();
    let mut new_blocks = Vec::new();
    for block in &blocks {
        setup(&block.name, &mut clients);
        // The test's ids as the file writes them (all of them, once blessed).
        let to_file: BTreeMap<i64, i64> = clients
            .ids
            .iter()
            .map(|(name, id)| (*id, file_ids.get(name).copied().unwrap_or(*id)))
            .collect();
        let mut out_lines = Vec::new();
        for step in &block.steps {
            let args: Vec<String> = step
                .args
                .iter()
                .map(|a| {
                    if let Some(name) = a.strip_prefix('<').and_then(|a| a.strip_suffix('>')) {
                        return clients.id(name);
                    }
                    // A capture id stands for the test's client of the same name.
                    match file_ids.iter().find(|(_, id)| id.to_string() == *a) {
                        Some((name, _)) => clients.id(name),
                        None => a.clone(),
                    }
                })
                .collect();
            let actual = map_ids(&run_cli(server.port, &args), &to_file);
            let shown: Vec<String> = args
                .iter()
                .map(
                    |a| match a.parse::<i64>().ok().and_then(|n| to_file.get(&n)) {
                        Some(n) => n.to_string(),
                        None => a.clone(),
                    },
                )
                .collect();
            out_lines.push(format!("$ redis-cli {}", shown.join(" ")));
            out_lines.extend(actual.lines().map(str::to_string));
            if !bless() {
                assert_eq!(
                    mask(&actual),
                    mask(&step.expected),
                    "{file}, block `{}`: `redis-cli {}` on {} (masked; left: this run, \
                     right: the file; TRACKINFO_BLESS=1 rewrites the file)",
                    block.name,
                    step.args.join(" "),
                    server.describe()
                );
            }
        }
        new_blocks.push(out_lines);
    }
    // From the last block up, so that the earlier blocks' line numbers stay valid.
    for (block, lines) in blocks.iter().zip(new_blocks).rev() {
        blessed.splice(block.lines.clone(), lines);
    }
    // The file's ids stay (also those of connections only the other kind of server opens);
    // a new connection gets this run's.
    let mut all_ids = file_ids.clone();
    for (name, id) in &clients.ids {
        all_ids.entry(name.clone()).or_insert(*id);
    }
    let ids: Vec<String> = all_ids.iter().map(|(n, id)| format!("{n}={id}")).collect();
    let mut out = blessed.join("\n") + "\n";
    if let Some(at) = out.find(IDS_MARK) {
        let end = at + out[at..].find("-->").expect("the ids comment's end");
        out.replace_range(at + IDS_MARK.len()..end, &format!("{} ", ids.join(" ")));
    }
    out
}

/// Runs the session of `file` on every server: the `check on Redis 7.0` blocks on Redis 7.0,
/// where the module shows `fidelity partial`, the others on Redis 7.2+ and Valkey, whose command
/// filter says who sent a command.
fn run_sessions(file: &str, setup: impl Fn(&Server, &str, &mut Clients)) {
    // For TRACKINFO_BLESS: whether the blocks of each kind (Redis 7.0 or not) were rewritten.
    let mut blessed_kind = [false; 2];
    for bin in servers() {
        let server = Server::with_module(&bin);
        let blessed = check_session(&server, file, |name, c| setup(&server, name, c));
        let kind = usize::from(server.info.is_redis70());
        if bless() && !blessed_kind[kind] {
            std::fs::write(repo(file), blessed).expect("write the blessed file");
            println!("{file}: rewritten from {}", server.describe());
            blessed_kind[kind] = true;
        }
    }
}

#[test]
fn redis_cli_session_shows_what_the_file_shows() {
    run_sessions("examples/redis-cli.md", |server, block, c| {
        // The same connections for both blocks: the Redis 7.0 one shows what 7.0 tells of them.
        assert!(["session", "redis-7.0"].contains(&block), "{block}");
        c.open(server, "writer", 2)
            .ok(&["MSET", "user:1", "v1", "user:2", "v1", "user:3", "v1"]);
        let app = c.open(server, "app-cache", 3);
        app.ok(&["CLIENT", "TRACKING", "ON"]);
        for k in ["user:1", "user:2", "user:3"] {
            app.cmd(&["GET", k]);
        }
        let legacy = c.open(server, "legacy", 2);
        legacy.ok(&["CLIENT", "TRACKING", "ON"]);
        legacy.cmd(&["GET", "user:1"]);
        let listener = c.open(server, "listener", 2);
        listener.send(&["SUBSCRIBE", "__redis__:invalidate"]);
        listener.read_reply();
        let target = c.id("listener");
        c.open(server, "worker", 2).ok(&[
            "CLIENT", "TRACKING", "ON", "REDIRECT", &target, "BCAST", "PREFIX", "user:",
        ]);
        c.get("writer").ok(&["SET", "user:2", "v2"]);
    });
}

// The connections of docs/troubleshooting.md, section by section.

fn dropped(server: &Server, c: &mut Clients) {
    c.open(server, "writer", 2)
        .ok(&["MSET", "user:1", "v1", "user:2", "v1"]);
    let legacy = c.open(server, "legacy", 2);
    legacy.ok(&["CLIENT", "TRACKING", "ON"]);
    legacy.cmd(&["GET", "user:1"]);
}

fn orphaned(server: &Server, c: &mut Clients) {
    let listener = c.open(server, "listener", 2);
    listener.send(&["SUBSCRIBE", "__redis__:invalidate"]);
    listener.read_reply();
    let target = c.id("listener");
    let worker = c.open(server, "worker", 2);
    worker.ok(&["CLIENT", "TRACKING", "ON", "REDIRECT", &target]);
    worker.cmd(&["GET", "user:2"]);
    c.close(server, "listener");
}

fn broken(c: &mut Clients) {
    c.get("writer").ok(&["SET", "user:2", "v2"]);
}

#[test]
fn troubleshooting_outputs_are_what_the_server_answers() {
    run_sessions("docs/troubleshooting.md", |server, block, c| match block {
        "dropped" => dropped(server, c),
        "orphaned" => orphaned(server, c),
        "broken" => broken(c),
        "unreclaimed" => {
            c.get("writer").ok(&[
                "MSET", "report:1", "r", "report:2", "r", "report:3", "r", "report:4", "r",
            ]);
            let batch = c.open(server, "batch", 3);
            batch.ok(&["CLIENT", "TRACKING", "ON"]);
            for k in ["report:1", "report:2", "report:3", "report:4"] {
                batch.cmd(&["GET", k]);
            }
            c.close(server, "batch");
        }
        "reclaimed" => {
            let n = c.get("writer").cmd(&["DEL", "report:1", "report:2"]);
            assert_eq!(n.int(), Some(2));
        }
        // Sections 1 to 3 at once, as Redis 7.0 shows them.
        "redis-7.0" => {
            dropped(server, c);
            orphaned(server, c);
            broken(c);
        }
        other => panic!("no setup for block `{other}`"),
    });
}

// ---- examples/client_side_cache.py ----

/// Runs examples/client_side_cache.py with `--cache <cache>` on a fresh server; its output.
/// Panics when the script fails (it exits 1 when TRACKINFO.GET is not what it expects).
fn run_cache_script(bin: &Path, cache: &str) -> (String, common::ServerInfo) {
    let server = Server::with_module(bin);
    let out = Command::new(python())
        .arg(repo("examples/client_side_cache.py"))
        .args(["--port", &server.port.to_string(), "--cache", cache])
        .output()
        .expect("run the script");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{} --cache {cache}: {text}", server.describe());
    assert!(
        out.status.success(),
        "{} --cache {cache}: {text}",
        server.describe()
    );
    (text, server.info.clone())
}

#[test]
fn client_side_cache_script_checks_itself_on_every_server() {
    for bin in servers() {
        let (text, info) = run_cache_script(&bin, "auto");
        // redis-py caches only on Redis 7.4+ (it checks HELLO's server name and version);
        // elsewhere the script falls back to its own cache.
        let redis_py_caches = info.family == common::Family::Redis && info.version >= (7, 4, 0);
        let cache = if redis_py_caches { "redis-py" } else { "own" };
        // Where the module knows who sent a command the script checked exact counters; on
        // Redis 7.0 what the module can know there.
        let fidelity = if info.module_knows_sender() {
            "exact"
        } else {
            "partial"
        };
        for shown in [
            format!("ok: cache={cache} "),
            "delivery=self".into(),
            format!("fidelity={fidelity}"),
        ] {
            assert!(text.contains(&shown), "{info}: no `{shown}` in {text}");
        }
        if redis_py_caches {
            // The script's own cache meets the same exact expectations.
            let (text, _) = run_cache_script(&bin, "own");
            assert!(text.contains("ok: cache=own "), "{info}: {text}");
            assert!(text.contains("fidelity=exact"), "{info}: {text}");
        }
    }
}

// ---- examples/prometheus-alerts.yml and examples/trackinfo-exporter.lua ----

/// What examples/trackinfo-exporter.lua returns, as redis_exporter's --script runs it.
fn exporter_script_fields(conn: &mut Conn, cmd: &str) -> BTreeMap<String, String> {
    let script = std::fs::read_to_string(repo("examples/trackinfo-exporter.lua")).unwrap();
    let r = conn.cmd(&[cmd, &script, "0"]);
    let items = r
        .items()
        .unwrap_or_else(|| panic!("{cmd} of the script: {r}"));
    items
        .chunks(2)
        .map(|kv| (kv[0].text().unwrap(), kv[1].text().unwrap()))
        .collect()
}

fn check_alerts(fields: &[&String]) -> std::process::Output {
    Command::new(python())
        .arg(repo("tests/check_alerts.py"))
        .arg(repo("examples/prometheus-alerts.yml"))
        .args(fields)
        .output()
        .expect("run tests/check_alerts.py")
}

#[test]
fn alert_rules_name_only_fields_the_exporter_script_returns() {
    // Losing invalidations is what makes caches stale: there is a rule on its rate.
    let rules = std::fs::read_to_string(repo("examples/prometheus-alerts.yml")).unwrap();
    assert!(
        rules.contains(r#"rate(redis_script_values{key="trackinfo_dropped_keys"}"#),
        "examples/prometheus-alerts.yml has no alert on the rate of dropped keys"
    );
    for bin in servers() {
        let server = Server::with_module(&bin);
        let mut conn = server.conn();
        // The script's fields are exactly the numeric fields of `INFO trackinfo`.
        let info = conn.cmd(&["INFO", "trackinfo"]).text().unwrap();
        let numeric: BTreeMap<String, String> = info
            .lines()
            .filter_map(|l| l.trim_end().split_once(':'))
            .filter(|(_, v)| v.parse::<i64>().is_ok())
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        assert!(numeric.keys().all(|k| k.starts_with("trackinfo_")));
        let fields = exporter_script_fields(&mut conn, "EVAL");
        let mut ro = exporter_script_fields(&mut conn, "EVAL_RO");
        assert_eq!(
            fields.keys().collect::<Vec<_>>(),
            numeric.keys().collect::<Vec<_>>(),
            "{}",
            server.describe()
        );
        ro.retain(|k, _| fields.contains_key(k));
        assert_eq!(ro.len(), fields.len(), "EVAL_RO on {}", server.describe());

        let names: Vec<&String> = fields.keys().collect();
        let out = check_alerts(&names);
        assert!(
            out.status.success(),
            "{}: {}",
            server.describe(),
            String::from_utf8_lossy(&out.stderr)
        );
        // The check fails when a field the rules use is gone (renamed, say).
        let without: Vec<&String> = names
            .iter()
            .copied()
            .filter(|n| *n != "trackinfo_clients_broken_redirect")
            .collect();
        let out = check_alerts(&without);
        assert!(!out.status.success(), "a missing field went unnoticed");
        assert!(String::from_utf8_lossy(&out.stderr).contains("trackinfo_clients_broken_redirect"));
    }
}
