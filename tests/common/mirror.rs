//! Comparing the module's reply with `CLIENT TRACKINGINFO`, the server's own truth.
//!
//! The module's reply starts with the pairs `flags`, `redirect`, `prefixes`, `id`, `fidelity`,
//! `tracking-since`; only these six are checked, by position, so later keys may be appended.

use super::resp::{escape, parse, split_raw, Conn, Resp};
use super::{now_ms, Server, ServerInfo};

/// The keys of the module's reply, in order.
pub const KEYS: [&str; 6] = [
    "flags",
    "redirect",
    "prefixes",
    "id",
    "fidelity",
    "tracking-since",
];

/// The flags the module can learn from CLIENT LIST when it cannot see who sent a command.
pub const CLIENT_LIST_FLAGS: [&str; 4] = ["on", "off", "bcast", "broken_redirect"];

/// Which fidelity the module must claim for a client whose tracking is on.
/// A client with tracking off is always `exact`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// All three mirrored fields byte-for-byte equal to CLIENT TRACKINGINFO.
    Exact,
    /// Only what CLIENT LIST shows: on/off, bcast, broken_redirect, redirect; no prefixes.
    Partial,
}

impl Expect {
    /// `known`: the client switched tracking on while the module was loaded.
    pub fn for_client(info: &ServerInfo, known: bool) -> Expect {
        if known && info.module_knows_sender() {
            Expect::Exact
        } else {
            Expect::Partial
        }
    }

    fn name(self) -> &'static str {
        match self {
            Expect::Exact => "exact",
            Expect::Partial => "partial",
        }
    }
}

/// A decoded tracking-info reply: the server's (3 pairs) or the module's (6 pairs or more).
#[derive(Clone, Debug)]
pub struct Fields {
    pub raw: Vec<u8>,
    pub resp: Resp,
    /// Raw bytes of each key and value, in order.
    pub children: Vec<Vec<u8>>,
    pub flags: Vec<String>,
    pub flags_marker: char,
    pub redirect: i64,
    pub prefixes: Vec<Vec<u8>>,
    pub id: Option<i64>,
    pub fidelity: Option<String>,
    pub since: Option<i64>,
}

impl Fields {
    pub fn is_on(&self) -> bool {
        self.flags.first().map(String::as_str) == Some("on")
    }

    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }

    /// `CLIENT TRACKINGINFO`: `%3` (RESP3) or `*6` (RESP2), exactly `flags`, `redirect`, `prefixes`.
    pub fn parse_truth(raw: &[u8], proto: u8) -> Result<Fields, String> {
        let f = Self::parse_pairs(raw, proto, 3)?;
        if f.children.len() != 6 {
            return Err(format!(
                "CLIENT TRACKINGINFO has {} elements, expected 6: \"{}\"",
                f.children.len(),
                escape(raw)
            ));
        }
        Ok(f)
    }

    /// The module's reply: at least the six keys of [`KEYS`], in order.
    pub fn parse_mirror(raw: &[u8], proto: u8) -> Result<Fields, String> {
        let mut f = Self::parse_pairs(raw, proto, 6)?;
        let value = |i: usize| parse(&f.children[2 * i + 1]).ok().flatten().map(|(r, _)| r);
        f.id = match value(3) {
            Some(Resp::Int(i)) => Some(i),
            other => return Err(format!("`id` is not an integer: {other:?}")),
        };
        f.fidelity = match value(4) {
            Some(Resp::Bulk(b)) => Some(String::from_utf8_lossy(&b).into_owned()),
            other => return Err(format!("`fidelity` is not a bulk string: {other:?}")),
        };
        f.since = match value(5) {
            Some(Resp::Int(i)) => Some(i),
            other => return Err(format!("`tracking-since` is not an integer: {other:?}")),
        };
        Ok(f)
    }

    fn parse_pairs(raw: &[u8], proto: u8, min_pairs: usize) -> Result<Fields, String> {
        let (resp, used) = parse(raw)?.ok_or("incomplete reply")?;
        if used != raw.len() {
            return Err("trailing bytes after the reply".into());
        }
        let want = if proto == 3 { '%' } else { '*' };
        if resp.marker() != want {
            return Err(format!(
                "reply type '{}' in RESP{proto}, expected '{want}': {resp}",
                resp.marker()
            ));
        }
        let (_, children) = split_raw(raw)?;
        let children: Vec<Vec<u8>> = children.into_iter().map(<[u8]>::to_vec).collect();
        if children.len() < 2 * min_pairs || !children.len().is_multiple_of(2) {
            return Err(format!(
                "{} elements, expected at least {} name/value pairs: {resp}",
                children.len(),
                min_pairs
            ));
        }
        for (i, key) in KEYS.iter().take(min_pairs).enumerate() {
            let expect = format!("${}\r\n{key}\r\n", key.len());
            if children[2 * i] != expect.as_bytes() {
                return Err(format!(
                    "key {i} is \"{}\", expected bulk \"{key}\": {resp}",
                    escape(&children[2 * i])
                ));
            }
        }
        let value = |i: usize| -> Result<Resp, String> {
            Ok(parse(&children[2 * i + 1])?.ok_or("bad value")?.0)
        };
        let flags_resp = value(0)?;
        let flags_marker = flags_resp.marker();
        let want_flags = if proto == 3 { '~' } else { '*' };
        if flags_marker != want_flags {
            return Err(format!(
                "`flags` has type '{flags_marker}' in RESP{proto}, expected '{want_flags}': {resp}"
            ));
        }
        let flags = flags_resp
            .items()
            .ok_or("`flags` is not a list")?
            .iter()
            .map(|r| match r {
                Resp::Bulk(b) => Ok(String::from_utf8_lossy(b).into_owned()),
                other => Err(format!("flag {other} is not a bulk string")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let redirect = value(1)?.int().ok_or("`redirect` is not an integer")?;
        let prefixes = match value(2)? {
            Resp::Array(v) => v
                .into_iter()
                .map(|r| match r {
                    Resp::Bulk(b) => Ok(b),
                    other => Err(format!("prefix {other} is not a bulk string")),
                })
                .collect::<Result<Vec<_>, _>>()?,
            other => return Err(format!("`prefixes` is not an array: {other}")),
        };
        Ok(Fields {
            raw: raw.to_vec(),
            resp,
            children,
            flags,
            flags_marker,
            redirect,
            prefixes,
            id: None,
            fidelity: None,
            since: None,
        })
    }

    /// The first six pairs, protocol-independent, for comparing two module replies.
    pub fn summary(&self) -> String {
        let prefixes: Vec<String> = self
            .prefixes
            .iter()
            .map(|p| format!("\"{}\"", escape(p)))
            .collect();
        format!(
            "flags=[{}] redirect={} prefixes=[{}] id={:?} fidelity={:?} tracking-since={:?}",
            self.flags.join(","),
            self.redirect,
            prefixes.join(","),
            self.id,
            self.fidelity,
            self.since
        )
    }
}

/// Checks the module's reply `mirror` for client `id` against `truth`, the raw
/// `CLIENT TRACKINGINFO` reply read on that client at the same moment, both in RESP`proto`.
/// `expect` applies when tracking is on; `since_floor` is the oldest plausible `tracking-since`.
/// Returns the decoded mirror, or a readable diff.
pub fn compare(
    truth_raw: &[u8],
    mirror_raw: &[u8],
    proto: u8,
    id: i64,
    expect: Expect,
    since_floor: i64,
) -> Result<Fields, String> {
    let truth = Fields::parse_truth(truth_raw, proto)
        .map_err(|e| format!("the server's CLIENT TRACKINGINFO is not as documented: {e}"))?;
    let expect = if truth.is_on() { expect } else { Expect::Exact };
    let diff = |what: String, mirror: Option<&Fields>| {
        let module = match mirror {
            Some(m) => format!("{}\n  module decoded:  {}", m.resp, m.summary()),
            None => String::new(),
        };
        format!(
            "client {id} (RESP{proto}, expected fidelity {}): {what}\n  server: {}\n  module: {module}\n  server bytes: \"{}\"\n  module bytes: \"{}\"",
            expect.name(),
            truth.resp,
            escape(truth_raw),
            escape(mirror_raw)
        )
    };
    let mirror = Fields::parse_mirror(mirror_raw, proto)
        .map_err(|e| diff(format!("malformed module reply: {e}"), None))?;
    if mirror.id != Some(id) {
        return Err(diff(format!("id is {:?}", mirror.id), Some(&mirror)));
    }
    if mirror.fidelity.as_deref() != Some(expect.name()) {
        return Err(diff(
            format!("fidelity is {:?}", mirror.fidelity),
            Some(&mirror),
        ));
    }
    let since = mirror.since.unwrap_or(-1);
    let plausible = since >= since_floor && since <= now_ms() + 2000;
    let since_ok = match (truth.is_on(), expect) {
        (false, _) => since == -1,
        (true, Expect::Exact) => plausible,
        (true, Expect::Partial) => since == -1 || plausible,
    };
    if !since_ok {
        return Err(diff(
            format!("tracking-since {since} is not plausible (floor {since_floor}, tracking on: {}; -1 only when off or unknown)", truth.is_on()),
            Some(&mirror),
        ));
    }
    match expect {
        Expect::Exact => {
            if mirror.children[..6] != truth.children[..] {
                return Err(diff(
                    format!(
                        "flags/redirect/prefixes differ from CLIENT TRACKINGINFO ({})",
                        what_differs(&truth, &mirror)
                    ),
                    Some(&mirror),
                ));
            }
        }
        Expect::Partial => {
            let visible: Vec<String> = truth
                .flags
                .iter()
                .filter(|f| CLIENT_LIST_FLAGS.contains(&f.as_str()))
                .cloned()
                .collect();
            if mirror.flags != visible {
                return Err(diff(
                    format!("partial flags should be exactly {visible:?} (the CLIENT LIST part)"),
                    Some(&mirror),
                ));
            }
            if mirror.children[3] != truth.children[3] {
                return Err(diff("redirect differs".into(), Some(&mirror)));
            }
            if mirror.children[5] != b"*0\r\n" {
                return Err(diff(
                    "a partial mirror must not claim prefixes".into(),
                    Some(&mirror),
                ));
            }
        }
    }
    Ok(mirror)
}

/// A short account of how two decoded replies differ, for failure messages.
fn what_differs(truth: &Fields, mirror: &Fields) -> String {
    let mut parts = Vec::new();
    let missing: Vec<&str> = truth
        .flags
        .iter()
        .filter(|f| !mirror.flags.contains(f))
        .map(String::as_str)
        .collect();
    let extra: Vec<&str> = mirror
        .flags
        .iter()
        .filter(|f| !truth.flags.contains(f))
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        parts.push(format!("module lacks flags {missing:?}"));
    }
    if !extra.is_empty() {
        parts.push(format!("module adds flags {extra:?}"));
    }
    if missing.is_empty() && extra.is_empty() && truth.children[1] != mirror.children[1] {
        parts.push("flags in another order or encoding".to_string());
    }
    if truth.children[3] != mirror.children[3] {
        parts.push(format!(
            "redirect {} vs {}",
            truth.redirect, mirror.redirect
        ));
    }
    if truth.children[5] != mirror.children[5] {
        parts.push("prefixes differ".to_string());
    }
    parts.join("; ")
}

/// Reads `CLIENT TRACKINGINFO` on `conn` (a CLIENT subcommand, so a CACHING window survives it).
pub fn truth(conn: &mut Conn) -> Fields {
    let (_, raw) = conn.cmd_raw(&["CLIENT", "TRACKINGINFO"]);
    Fields::parse_truth(&raw, conn.proto)
        .unwrap_or_else(|e| panic!("CLIENT TRACKINGINFO not as documented: {e}"))
}

/// Compares `TRACKINFO.CLIENT <id>` sent on `observer` with `CLIENT TRACKINGINFO` read on `conn`
/// just before. Neither command ends a CACHING window on `conn`. Returns the server's truth.
pub fn assert_client_mirror(
    server: &Server,
    conn: &mut Conn,
    id: i64,
    observer: &mut Conn,
    expect: Expect,
) -> Fields {
    assert_eq!(
        conn.proto, observer.proto,
        "the observer must speak the protocol of the observed connection"
    );
    let (_, truth_raw) = conn.cmd_raw(&["CLIENT", "TRACKINGINFO"]);
    let (_, mirror_raw) = observer.cmd_raw(&["TRACKINFO.CLIENT", &id.to_string()]);
    match compare(
        &truth_raw,
        &mirror_raw,
        conn.proto,
        id,
        expect,
        server.started_ms - 1000,
    ) {
        Ok(_) => Fields::parse_truth(&truth_raw, conn.proto).unwrap(),
        Err(e) => panic!("TRACKINFO.CLIENT on {}:\n{e}", server.describe()),
    }
}

/// Compares `TRACKINFO.GET` on `conn` with `CLIENT TRACKINGINFO` read on `conn` just before.
/// TRACKINFO.GET is not a CLIENT subcommand, so it ends a CACHING window: the window is still
/// open while it runs, and closed after. Returns the server's truth.
pub fn assert_get_mirror(server: &Server, conn: &mut Conn, id: i64, expect: Expect) -> Fields {
    let (_, truth_raw) = conn.cmd_raw(&["CLIENT", "TRACKINGINFO"]);
    let (_, mirror_raw) = conn.cmd_raw(&["TRACKINFO.GET"]);
    match compare(
        &truth_raw,
        &mirror_raw,
        conn.proto,
        id,
        expect,
        server.started_ms - 1000,
    ) {
        Ok(_) => Fields::parse_truth(&truth_raw, conn.proto).unwrap(),
        Err(e) => panic!("TRACKINFO.GET on {}:\n{e}", server.describe()),
    }
}

/// Both checks: first TRACKINFO.CLIENT from `observer`, then TRACKINFO.GET on `conn` itself
/// (which ends any CACHING window). For a client that switched tracking on with the module
/// loaded. Returns the server's truth from before TRACKINFO.GET.
pub fn assert_mirrored(server: &Server, conn: &mut Conn, id: i64, observer: &mut Conn) -> Fields {
    let expect = Expect::for_client(&server.info, true);
    let truth = assert_client_mirror(server, conn, id, observer, expect);
    assert_get_mirror(server, conn, id, expect);
    truth
}
