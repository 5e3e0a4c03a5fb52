//! A raw RESP2/RESP3 client over `TcpStream`.
//!
//! The tests compare replies byte for byte, so the parser keeps every wire type apart
//! (a set is not an array, `$-1` is not `_`) and every reply can be read with its raw bytes.

use std::fmt;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// How long one reply may take before the test gives up on the connection.
const READ_TIMEOUT: Duration = Duration::from_secs(15);
/// Under valgrind (`make memcheck`) the server is many times slower.
const READ_TIMEOUT_MEMCHECK: Duration = Duration::from_secs(120);

fn read_timeout() -> Duration {
    if super::under_valgrind() {
        READ_TIMEOUT_MEMCHECK
    } else {
        READ_TIMEOUT
    }
}

const CLOSED: &str = "connection closed by the server";

/// One RESP frame, with its wire type kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resp {
    /// `+`
    Simple(Vec<u8>),
    /// `-`
    Error(Vec<u8>),
    /// `:`
    Int(i64),
    /// `$`
    Bulk(Vec<u8>),
    /// `$-1`
    NilBulk,
    /// `*-1`
    NilArray,
    /// `_`
    Null,
    /// `*`
    Array(Vec<Resp>),
    /// `%`
    Map(Vec<(Resp, Resp)>),
    /// `~`
    Set(Vec<Resp>),
    /// `>`
    Push(Vec<Resp>),
    /// `|`
    Attribute(Vec<(Resp, Resp)>),
    /// `#`
    Bool(bool),
    /// `,`
    Double(Vec<u8>),
    /// `(`
    BigNumber(Vec<u8>),
    /// `=`, with its `txt:` style format prefix left in place
    Verbatim(Vec<u8>),
    /// `!`
    BlobError(Vec<u8>),
}

impl Resp {
    pub fn is_error(&self) -> bool {
        matches!(self, Resp::Error(_) | Resp::BlobError(_))
    }

    pub fn is_ok(&self) -> bool {
        matches!(self, Resp::Simple(s) if s == b"OK")
    }

    /// The text of a simple string, error, bulk or verbatim string (verbatim without its `txt:` prefix).
    pub fn text(&self) -> Option<String> {
        match self {
            Resp::Simple(b) | Resp::Error(b) | Resp::Bulk(b) | Resp::BlobError(b) => {
                Some(String::from_utf8_lossy(b).into_owned())
            }
            Resp::Verbatim(b) => {
                Some(String::from_utf8_lossy(b.get(4..).unwrap_or(b)).into_owned())
            }
            _ => None,
        }
    }

    pub fn int(&self) -> Option<i64> {
        match self {
            Resp::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The elements of an array, set or push.
    pub fn items(&self) -> Option<&[Resp]> {
        match self {
            Resp::Array(v) | Resp::Set(v) | Resp::Push(v) => Some(v),
            _ => None,
        }
    }

    /// The one-character RESP type marker of this frame.
    pub fn marker(&self) -> char {
        match self {
            Resp::Simple(_) => '+',
            Resp::Error(_) => '-',
            Resp::Int(_) => ':',
            Resp::Bulk(_) | Resp::NilBulk => '$',
            Resp::NilArray | Resp::Array(_) => '*',
            Resp::Null => '_',
            Resp::Map(_) => '%',
            Resp::Set(_) => '~',
            Resp::Push(_) => '>',
            Resp::Attribute(_) => '|',
            Resp::Bool(_) => '#',
            Resp::Double(_) => ',',
            Resp::BigNumber(_) => '(',
            Resp::Verbatim(_) => '=',
            Resp::BlobError(_) => '!',
        }
    }
}

/// Compact one-line rendering: `%{flags: ~[on], redirect: 0}`, `-ERR ...`, `"a\x00b"`.
impl fmt::Display for Resp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn list(f: &mut fmt::Formatter<'_>, open: &str, v: &[Resp]) -> fmt::Result {
            write!(f, "{open}")?;
            for (i, r) in v.iter().enumerate() {
                if i > 0 {
                    write!(f, ", ")?;
                }
                write!(f, "{r}")?;
            }
            write!(f, "]")
        }
        fn pairs(f: &mut fmt::Formatter<'_>, open: &str, v: &[(Resp, Resp)]) -> fmt::Result {
            write!(f, "{open}")?;
            for (i, (k, val)) in v.iter().enumerate() {
                if i > 0 {
                    write!(f, ", ")?;
                }
                write!(f, "{k}: {val}")?;
            }
            write!(f, "}}")
        }
        match self {
            Resp::Simple(b) => write!(f, "+{}", escape(b)),
            Resp::Error(b) => write!(f, "-{}", escape(b)),
            Resp::Int(i) => write!(f, ":{i}"),
            Resp::Bulk(b) => write!(f, "\"{}\"", escape(b)),
            Resp::NilBulk => write!(f, "$-1"),
            Resp::NilArray => write!(f, "*-1"),
            Resp::Null => write!(f, "_"),
            Resp::Array(v) => list(f, "[", v),
            Resp::Set(v) => list(f, "~[", v),
            Resp::Push(v) => list(f, ">[", v),
            Resp::Map(v) => pairs(f, "%{", v),
            Resp::Attribute(v) => pairs(f, "|{", v),
            Resp::Bool(b) => write!(f, "#{}", if *b { 't' } else { 'f' }),
            Resp::Double(b) => write!(f, ",{}", escape(b)),
            Resp::BigNumber(b) => write!(f, "({}", escape(b)),
            Resp::Verbatim(b) => write!(f, "={}", escape(b)),
            Resp::BlobError(b) => write!(f, "!{}", escape(b)),
        }
    }
}

/// Printable ASCII as is, everything else as `\r`, `\n` or `\xNN`.
pub fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for &b in bytes {
        match b {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\\' => s.push_str("\\\\"),
            b'"' => s.push_str("\\\""),
            0x20..=0x7e => s.push(b as char),
            _ => s.push_str(&format!("\\x{b:02x}")),
        }
    }
    s
}

/// A command rendered for logs: `CLIENT TRACKING ON PREFIX "a\x00b"`.
pub fn show_command<A: AsRef<[u8]>>(args: &[A]) -> String {
    args.iter()
        .map(|a| {
            let a = a.as_ref();
            let plain = !a.is_empty() && a.iter().all(|b| b.is_ascii_graphic() && *b != b'"');
            if plain {
                escape(a)
            } else {
                format!("\"{}\"", escape(a))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn find_crlf(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\r\n")
}

fn parse_int(line: &[u8]) -> Result<i64, String> {
    std::str::from_utf8(line)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad integer in RESP header: \"{}\"", escape(line)))
}

/// Parses one complete frame at the start of `buf`: `Ok(None)` when more bytes are needed,
/// otherwise the frame and how many bytes it took.
pub fn parse(buf: &[u8]) -> Result<Option<(Resp, usize)>, String> {
    let Some(eol) = find_crlf(buf) else {
        return Ok(None);
    };
    let kind = buf[0];
    let line = &buf[1..eol];
    let mut pos = eol + 2;
    let frame = match kind {
        b'+' => Resp::Simple(line.to_vec()),
        b'-' => Resp::Error(line.to_vec()),
        b':' => Resp::Int(parse_int(line)?),
        b'_' => Resp::Null,
        b'#' => Resp::Bool(line == b"t"),
        b',' => Resp::Double(line.to_vec()),
        b'(' => Resp::BigNumber(line.to_vec()),
        b'$' | b'=' | b'!' => {
            let n = parse_int(line)?;
            if n < 0 {
                if kind != b'$' {
                    return Err(format!("negative length for '{}'", kind as char));
                }
                Resp::NilBulk
            } else {
                let n = n as usize;
                if buf.len() < pos + n + 2 {
                    return Ok(None);
                }
                if &buf[pos + n..pos + n + 2] != b"\r\n" {
                    return Err("bulk string not terminated by CRLF".into());
                }
                let data = buf[pos..pos + n].to_vec();
                pos += n + 2;
                match kind {
                    b'$' => Resp::Bulk(data),
                    b'=' => Resp::Verbatim(data),
                    _ => Resp::BlobError(data),
                }
            }
        }
        b'*' | b'~' | b'>' | b'%' | b'|' => {
            let n = parse_int(line)?;
            if n < 0 {
                if kind != b'*' {
                    return Err(format!("negative length for '{}'", kind as char));
                }
                Resp::NilArray
            } else {
                let count = if kind == b'%' || kind == b'|' {
                    2 * n
                } else {
                    n
                } as usize;
                let mut items = Vec::with_capacity(count);
                while items.len() < count {
                    match parse(&buf[pos..])? {
                        // Redis 7.0 can write a push (a self-invalidation) in the middle of an
                        // EXEC reply; it is not one of the aggregate's elements.
                        Some((Resp::Push(_), used)) => pos += used,
                        Some((r, used)) => {
                            items.push(r);
                            pos += used;
                        }
                        None => return Ok(None),
                    }
                }
                match kind {
                    b'*' => Resp::Array(items),
                    b'~' => Resp::Set(items),
                    b'>' => Resp::Push(items),
                    _ => {
                        let mut pairs = Vec::with_capacity(items.len() / 2);
                        let mut it = items.into_iter();
                        while let (Some(k), Some(v)) = (it.next(), it.next()) {
                            pairs.push((k, v));
                        }
                        if kind == b'%' {
                            Resp::Map(pairs)
                        } else {
                            Resp::Attribute(pairs)
                        }
                    }
                }
            }
        }
        other => return Err(format!("unknown RESP type byte 0x{other:02x}")),
    };
    Ok(Some((frame, pos)))
}

/// The raw bytes of each element of an aggregate frame (a map gives key, value, key, value…),
/// and the header line. `raw` must hold exactly one complete frame.
pub fn split_raw(raw: &[u8]) -> Result<(&[u8], Vec<&[u8]>), String> {
    let eol = find_crlf(raw).ok_or("no CRLF in frame")?;
    let header = &raw[..eol + 2];
    let kind = raw[0];
    if !matches!(kind, b'*' | b'~' | b'>' | b'%' | b'|') {
        return Err(format!("not an aggregate: \"{}\"", escape(raw)));
    }
    let n = parse_int(&raw[1..eol])?;
    let count = if n < 0 {
        0
    } else if kind == b'%' || kind == b'|' {
        2 * n as usize
    } else {
        n as usize
    };
    let mut pos = eol + 2;
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let (child, used) = parse(&raw[pos..])?.ok_or("truncated aggregate")?;
        // A push written inside an aggregate (Redis 7.0) is not one of its elements.
        if !matches!(child, Resp::Push(_)) {
            out.push(&raw[pos..pos + used]);
        }
        pos += used;
    }
    Ok((header, out))
}

/// The push frames written inside the aggregate `raw` (one complete frame), at any depth, in
/// order: `parse` leaves them out of the aggregate's elements (Redis 7.0 can write a
/// self-invalidation in the middle of an EXEC reply), and a test that counts invalidations
/// needs them.
pub fn nested_pushes(raw: &[u8]) -> Result<Vec<Resp>, String> {
    fn walk(raw: &[u8], out: &mut Vec<Resp>) -> Result<usize, String> {
        let eol = find_crlf(raw).ok_or("no CRLF in frame")?;
        let kind = raw[0];
        if !matches!(kind, b'*' | b'~' | b'>' | b'%' | b'|') {
            let (_, used) = parse(raw)?.ok_or("truncated frame")?;
            return Ok(used);
        }
        let n = parse_int(&raw[1..eol])?;
        let count = if n < 0 {
            0
        } else if kind == b'%' || kind == b'|' {
            2 * n as usize
        } else {
            n as usize
        };
        let mut pos = eol + 2;
        let mut seen = 0;
        while seen < count {
            let child = raw.get(pos..).ok_or("truncated aggregate")?;
            if child.first() == Some(&b'>') {
                let (push, used) = parse(child)?.ok_or("truncated aggregate")?;
                out.push(push);
                pos += used;
            } else {
                pos += walk(child, out)?;
                seen += 1;
            }
        }
        Ok(pos)
    }
    let mut out = Vec::new();
    walk(raw, &mut out)?;
    Ok(out)
}

/// RESP encoding of a command: an array of bulk strings.
pub fn encode_command<A: AsRef<[u8]>>(args: &[A]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        let a = a.as_ref();
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// One connection to a server, speaking whatever protocol the server answers in.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// The protocol the test believes this connection uses (2 or 3).
    pub proto: u8,
    /// Push frames (`>`) that arrived while waiting for replies, oldest first.
    pub pushes: Vec<Resp>,
    port: u16,
}

impl Conn {
    pub fn connect(port: u16) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(("127.0.0.1", port))?;
        stream.set_read_timeout(Some(read_timeout()))?;
        stream.set_nodelay(true)?;
        Ok(Conn {
            stream,
            buf: Vec::with_capacity(4096),
            proto: 2,
            pushes: Vec::new(),
            port,
        })
    }

    /// Writes several commands in one write, so that the server reads them together (and runs
    /// them in one event-loop cycle), without waiting for their replies.
    pub fn send_pipeline(&mut self, cmds: &[&[&str]]) {
        let bytes: Vec<u8> = cmds.iter().flat_map(|c| encode_command(c)).collect();
        if let Err(e) = self.stream.write_all(&bytes) {
            panic!("port {}: cannot send a pipeline: {e}", self.port);
        }
    }

    /// Writes one command without waiting for its reply.
    pub fn send<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        let bytes = encode_command(args);
        if let Err(e) = self.stream.write_all(&bytes) {
            panic!(
                "port {}: cannot send {}: {e}",
                self.port,
                show_command(args)
            );
        }
    }

    /// Reads the next frame of any type, pushes included, with its raw bytes.
    /// `Err` on end of stream, timeout or a protocol error.
    pub fn try_read_frame(&mut self) -> Result<(Resp, Vec<u8>), String> {
        loop {
            if !self.buf.is_empty() {
                if let Some((frame, used)) = parse(&self.buf)? {
                    let raw: Vec<u8> = self.buf.drain(..used).collect();
                    return Ok((frame, raw));
                }
            }
            let mut chunk = [0u8; 16384];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err(CLOSED.into()),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err(format!("no reply within {:?}", read_timeout()))
                }
                Err(e) => return Err(format!("read error: {e}")),
            }
        }
    }

    /// Reads the next reply with its raw bytes; push frames are set aside in `pushes`.
    pub fn read_reply_raw(&mut self) -> (Resp, Vec<u8>) {
        loop {
            match self.try_read_frame() {
                Ok((Resp::Push(p), _)) => self.pushes.push(Resp::Push(p)),
                Ok(frame) => return frame,
                Err(e) => panic!("port {}: {e}", self.port),
            }
        }
    }

    pub fn read_reply(&mut self) -> Resp {
        self.read_reply_raw().0
    }

    pub fn cmd_raw<A: AsRef<[u8]>>(&mut self, args: &[A]) -> (Resp, Vec<u8>) {
        self.send(args);
        self.read_reply_raw()
    }

    pub fn cmd<A: AsRef<[u8]>>(&mut self, args: &[A]) -> Resp {
        self.send(args);
        self.read_reply()
    }

    /// Sends a command that must answer `+OK`.
    pub fn ok<A: AsRef<[u8]>>(&mut self, args: &[A]) {
        let r = self.cmd(args);
        assert!(
            r.is_ok(),
            "{} answered {r}, expected +OK",
            show_command(args)
        );
    }

    /// Switches protocol with HELLO, which must succeed.
    pub fn hello(&mut self, proto: u8) -> Resp {
        let r = self.cmd(&["HELLO", &proto.to_string()]);
        assert!(!r.is_error(), "HELLO {proto} failed: {r}");
        self.proto = proto;
        r
    }

    pub fn client_id(&mut self) -> i64 {
        match self.cmd(&["CLIENT", "ID"]) {
            Resp::Int(id) => id,
            other => panic!("CLIENT ID answered {other}"),
        }
    }

    /// Reads until the server closes the connection, discarding what arrives. False if the
    /// connection stayed open (the read timed out) or failed otherwise.
    pub fn wait_closed(&mut self) -> bool {
        loop {
            match self.try_read_frame() {
                Ok(_) => {}
                Err(e) => return e == CLOSED,
            }
        }
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}
