//! `CLIENT TRACKING on|off [REDIRECT id] [PREFIX p ...] [BCAST] [OPTIN] [OPTOUT] [NOLOOP]`,
//! replayed as networking.c clientCommand and tracking.c enableTracking/disableTracking run it.

use super::{is_word, parse_i64, Flags, ServerReply, TrackingState};
use crate::errors;

/// The options of one CLIENT TRACKING command after the server's parse phase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub switch: Switch,
    pub redirect: i64,
    pub options: Flags,
    pub prefixes: Vec<Vec<u8>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switch {
    On,
    Off,
}

/// The parse phase: options left to right, before ON/OFF is looked at. Option words are
/// compared with strcasecmp (up to a NUL byte); REDIRECT ids and PREFIX values use every byte.
/// `args` is argv from the ON/OFF word on; `client_exists` answers lookupClientByID.
pub fn parse(args: &[&[u8]], client_exists: &dyn Fn(i64) -> bool) -> Result<Parsed, String> {
    let mut redirect: i64 = 0;
    let mut options = Flags::empty();
    let mut prefixes = Vec::new();
    let mut j = 1;
    while j < args.len() {
        let opt = args[j];
        let more = j + 1 < args.len();
        if is_word(opt, b"redirect") && more {
            j += 1;
            if redirect != 0 {
                return Err(errors::REDIRECT_TWICE.into());
            }
            redirect = parse_i64(args[j]).ok_or_else(|| errors::SERVER_NOT_INTEGER.to_string())?;
            if !client_exists(redirect) {
                return Err(errors::REDIRECT_MISSING.into());
            }
        } else if is_word(opt, b"bcast") {
            options |= Flags::BCAST;
        } else if is_word(opt, b"optin") {
            options |= Flags::OPTIN;
        } else if is_word(opt, b"optout") {
            options |= Flags::OPTOUT;
        } else if is_word(opt, b"noloop") {
            options |= Flags::NOLOOP;
        } else if is_word(opt, b"prefix") && more {
            j += 1;
            prefixes.push(args[j].to_vec());
        } else {
            return Err(errors::SERVER_SYNTAX.into());
        }
        j += 1;
    }
    let switch = match args.first() {
        Some(w) if is_word(w, b"on") => Switch::On,
        Some(w) if is_word(w, b"off") => Switch::Off,
        _ => return Err(errors::SERVER_SYNTAX.into()),
    };
    Ok(Parsed {
        switch,
        redirect,
        options,
        prefixes,
    })
}

/// Replays one CLIENT TRACKING on a client whose state is known.
/// Returns the state afterwards and the replies the server sent.
pub fn replay(
    state: &TrackingState,
    args: &[&[u8]],
    client_exists: &dyn Fn(i64) -> bool,
) -> (TrackingState, Vec<ServerReply>) {
    let parsed = match parse(args, client_exists) {
        Ok(p) => p,
        Err(e) => return (state.clone(), vec![ServerReply::Error(e)]),
    };
    let mut next = state.clone();
    if parsed.switch == Switch::Off {
        next.disable();
        return (next, vec![ServerReply::Ok]);
    }
    if let Err(e) = check_on(state, &parsed) {
        return (state.clone(), vec![ServerReply::Error(e)]);
    }
    let mut replies = Vec::with_capacity(2);
    if parsed.options.contains(Flags::BCAST) {
        match prefix_collision(state, &parsed.prefixes) {
            Collision::None => {}
            // checkPrefixCollisionsOrReply returns the index: 0 aborts the command...
            Collision::At(0, e) => return (state.clone(), vec![ServerReply::Error(e)]),
            // ...any other index is truthy: the error is sent and tracking is enabled anyway.
            Collision::At(_, e) => replies.push(ServerReply::Error(e)),
        }
    }
    enable(&mut next, &parsed);
    replies.push(ServerReply::Ok);
    (next, replies)
}

/// The checks clientCommand makes for ON, in its order.
fn check_on(state: &TrackingState, p: &Parsed) -> Result<(), String> {
    let bcast = p.options.contains(Flags::BCAST);
    if !bcast && !p.prefixes.is_empty() {
        return Err(errors::PREFIX_WITHOUT_BCAST.into());
    }
    if state.is_on() && state.flags.contains(Flags::BCAST) != bcast {
        return Err(errors::BCAST_SWITCH.into());
    }
    if bcast && p.options.intersects(Flags::OPTIN | Flags::OPTOUT) {
        return Err(errors::BCAST_WITH_OPT.into());
    }
    if p.options.contains(Flags::OPTIN | Flags::OPTOUT) {
        return Err(errors::OPTIN_AND_OPTOUT.into());
    }
    if (p.options.contains(Flags::OPTIN) && state.flags.contains(Flags::OPTOUT))
        || (p.options.contains(Flags::OPTOUT) && state.flags.contains(Flags::OPTIN))
    {
        return Err(errors::OPT_SWITCH.into());
    }
    Ok(())
}

enum Collision {
    None,
    At(usize, String),
}

/// tracking.c checkPrefixCollisionsOrReply: each new prefix against the existing ones (rax order),
/// then against the new prefixes after it. Prefixes collide when one starts with the other.
fn prefix_collision(state: &TrackingState, new: &[Vec<u8>]) -> Collision {
    let overlaps = |a: &[u8], b: &[u8]| a.starts_with(b) || b.starts_with(a);
    for (i, p) in new.iter().enumerate() {
        if let Some(old) = state.prefixes.iter().find(|old| overlaps(old, p)) {
            let e = format!(
                "Prefix '{}' overlaps with an existing prefix '{}'. Prefixes for a single client must not overlap.",
                c_str(p),
                c_str(old)
            );
            return Collision::At(0, e);
        }
        if let Some(later) = new[i + 1..].iter().find(|q| overlaps(p, q)) {
            let e = format!(
                "Prefix '{}' overlaps with another provided prefix '{}'. Prefixes for a single client must not overlap.",
                c_str(p),
                c_str(later)
            );
            return Collision::At(i, e);
        }
    }
    Collision::None
}

/// The server formats prefixes with `%s`: the text stops at the first NUL byte,
/// and error replies have CR and LF turned into spaces.
fn c_str(p: &[u8]) -> String {
    let end = p.iter().position(|&b| b == 0).unwrap_or(p.len());
    String::from_utf8_lossy(&p[..end]).replace(['\r', '\n'], " ")
}

/// tracking.c enableTracking: options and redirect are replaced, BCAST prefixes accumulate,
/// CACHING is left alone.
fn enable(state: &mut TrackingState, p: &Parsed) {
    state
        .flags
        .remove(Flags::BROKEN_REDIR | Flags::BCAST | Flags::OPTIN | Flags::OPTOUT | Flags::NOLOOP);
    state.flags.insert(Flags::ON);
    state.redirect = p.redirect;
    if p.options.contains(Flags::BCAST) {
        state.flags.insert(Flags::BCAST);
        if p.prefixes.is_empty() {
            state.prefixes.insert(Vec::new());
        }
        state.prefixes.extend(p.prefixes.iter().cloned());
    }
    state
        .flags
        .insert(p.options & (Flags::OPTIN | Flags::OPTOUT | Flags::NOLOOP));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(state: &TrackingState, cmd: &str) -> (TrackingState, Vec<ServerReply>) {
        let args: Vec<&[u8]> = cmd.split(' ').map(str::as_bytes).collect();
        replay(state, &args, &|id| id == 5 || id == 6)
    }

    fn on(cmd: &str) -> TrackingState {
        let (s, r) = run(&TrackingState::default(), cmd);
        assert_eq!(r, [ServerReply::Ok], "{cmd}");
        s
    }

    fn err(state: &TrackingState, cmd: &str) -> String {
        let (s, r) = run(state, cmd);
        assert_eq!(&s, state, "a failed command changes nothing");
        match r.as_slice() {
            [ServerReply::Error(e)] => e.clone(),
            other => panic!("{cmd}: {other:?}"),
        }
    }

    #[test]
    fn on_with_options_sets_flags_and_redirect() {
        let s = on("on REDIRECT 5 NOLOOP");
        assert_eq!(s.flag_names(), ["on", "noloop"]);
        assert_eq!(s.reported_redirect(), 5);
    }

    #[test]
    fn repeated_on_replaces_options_and_redirect() {
        let s = on("on optin redirect 5");
        let (s, _) = run(&s, "on noloop");
        assert_eq!(s.flag_names(), ["on", "noloop"]);
        assert_eq!(s.reported_redirect(), 0);
    }

    #[test]
    fn bcast_prefixes_accumulate_across_on_calls() {
        let s = on("on bcast prefix b prefix a");
        let (s, r) = run(&s, "on bcast prefix c");
        assert_eq!(r, [ServerReply::Ok]);
        let (s, r) = run(&s, "on bcast noloop");
        assert_eq!(
            r,
            [ServerReply::Ok],
            "no collision check without new prefixes"
        );
        let v: Vec<&[u8]> = s.prefixes.iter().map(|p| p.as_slice()).collect();
        assert_eq!(v, [&b""[..], b"a", b"b", b"c"]);
        assert_eq!(s.flag_names(), ["on", "bcast", "noloop"]);
    }

    #[test]
    fn option_words_match_up_to_a_nul_byte_as_strcasecmp_does() {
        let argv: [&[u8]; 4] = [b"On\0junk", b"OPTIN\0", b"noloop\0x", b"PREFIX\0"];
        let p = parse(&argv, &|_| true).map_err(|e| e.to_string());
        assert_eq!(
            p.map(|p| (p.switch, p.options, p.prefixes)),
            Err(errors::SERVER_SYNTAX.to_string()),
            "PREFIX\\0 with no value is a syntax error, as PREFIX is"
        );
        let argv: [&[u8]; 4] = [b"On\0junk", b"OPTIN\0", b"noloop\0x", b"bcast\0"];
        let p = parse(&argv, &|_| true).map(|p| (p.switch, p.options));
        assert_eq!(
            p,
            Ok((Switch::On, Flags::OPTIN | Flags::NOLOOP | Flags::BCAST))
        );
        // Values are not words: a prefix keeps its NUL, a redirect id must be all digits.
        let argv: [&[u8]; 3] = [b"on", b"prefix\0", b"a\0b"];
        let p = parse(&argv, &|_| true).map(|p| p.prefixes);
        assert_eq!(p, Ok(vec![b"a\0b".to_vec()]));
        let argv: [&[u8]; 3] = [b"on", b"redirect", b"5\0"];
        let p = parse(&argv, &|_| true).map(|p| p.redirect);
        assert_eq!(p, Err(errors::SERVER_NOT_INTEGER.to_string()));
        let argv: [&[u8]; 1] = [b"onx\0"];
        assert!(parse(&argv, &|_| true).is_err());
    }

    #[test]
    fn bcast_without_prefix_tracks_the_empty_prefix() {
        let s = on("on bcast");
        assert_eq!(s.prefixes.iter().next().map(Vec::len), Some(0));
    }

    #[test]
    fn off_clears_everything_but_keeps_the_stored_redirect() {
        let s = on("on bcast prefix a redirect 6");
        let (s, r) = run(&s, "off");
        assert_eq!(r, [ServerReply::Ok]);
        assert_eq!(s.flag_names(), ["off"]);
        assert!(s.prefixes.is_empty());
        assert_eq!(s.redirect, 6);
    }

    #[test]
    fn parse_errors_come_before_the_on_off_word() {
        let off = TrackingState::default();
        assert_eq!(err(&off, "off REDIRECT 99999"), errors::REDIRECT_MISSING);
        assert_eq!(err(&off, "maybe REDIRECT 99999"), errors::REDIRECT_MISSING);
        assert_eq!(err(&off, "maybe"), errors::SERVER_SYNTAX);
        assert_eq!(err(&off, "on redirect x"), errors::SERVER_NOT_INTEGER);
        assert_eq!(
            err(&off, "on redirect 5 redirect 6"),
            errors::REDIRECT_TWICE
        );
        assert_eq!(err(&off, "on redirect 0"), errors::REDIRECT_MISSING);
        assert_eq!(err(&off, "on redirect"), errors::SERVER_SYNTAX);
        assert_eq!(err(&off, "on prefix"), errors::SERVER_SYNTAX);
        assert_eq!(err(&off, "on bogus"), errors::SERVER_SYNTAX);
        let (s, r) = run(&off, "off bcast prefix x");
        assert_eq!((s, r), (off, vec![ServerReply::Ok]));
    }

    #[test]
    fn on_checks_run_in_server_order() {
        let off = TrackingState::default();
        assert_eq!(
            err(&off, "on prefix a optin optout"),
            errors::PREFIX_WITHOUT_BCAST
        );
        assert_eq!(err(&off, "on bcast optin optout"), errors::BCAST_WITH_OPT);
        assert_eq!(err(&off, "on optin optout"), errors::OPTIN_AND_OPTOUT);
        let bcast = on("on bcast");
        assert_eq!(err(&bcast, "on optin"), errors::BCAST_SWITCH);
        let plain = on("on");
        assert_eq!(err(&plain, "on bcast optin"), errors::BCAST_SWITCH);
        let optin = on("on optin");
        assert_eq!(err(&optin, "on optout"), errors::OPT_SWITCH);
    }

    #[test]
    fn overlap_with_an_existing_prefix_fails() {
        let s = on("on bcast prefix ab");
        assert_eq!(
            err(&s, "on bcast prefix a"),
            "Prefix 'a' overlaps with an existing prefix 'ab'. Prefixes for a single client must not overlap."
        );
    }

    #[test]
    fn overlap_at_the_first_new_prefix_fails() {
        let off = TrackingState::default();
        assert_eq!(
            err(&off, "on bcast prefix a prefix ab"),
            "Prefix 'a' overlaps with another provided prefix 'ab'. Prefixes for a single client must not overlap."
        );
    }

    #[test]
    fn overlap_after_the_first_new_prefix_errors_and_enables_anyway() {
        let (s, r) = run(
            &TrackingState::default(),
            "on bcast prefix a prefix b prefix bc",
        );
        assert_eq!(
            r,
            [
                ServerReply::Error("Prefix 'b' overlaps with another provided prefix 'bc'. Prefixes for a single client must not overlap.".into()),
                ServerReply::Ok
            ]
        );
        let v: Vec<&[u8]> = s.prefixes.iter().map(|p| p.as_slice()).collect();
        assert_eq!(v, [&b"a"[..], b"b", b"bc"]);
    }

    #[test]
    fn error_text_stops_at_nul() {
        assert_eq!(c_str(b"ab\0cd"), "ab");
        assert_eq!(c_str(b"a\r\nb"), "a  b");
    }

    #[test]
    fn on_after_broken_redirect_clears_it_and_keeps_caching() {
        let mut s = on("on optin redirect 5");
        s.flags |= Flags::BROKEN_REDIR | Flags::CACHING;
        let (s, _) = run(&s, "on optin");
        assert_eq!(s.flag_names(), ["on", "optin", "caching-yes"]);
        assert_eq!(s.reported_redirect(), 0);
    }
}
