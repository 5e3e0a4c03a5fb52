//! TRACKINFO.LIST [ID id [id ...]] [MODE default|optin|optout|bcast]
//! [DELIVERY self|redirect|dropped]: TRACKINFO.CLIENTS' entries as CLIENT LIST lines.

use redis_module::{Context, RedisError, RedisResult, RedisString};

use super::info::all_views;
use super::{client_list_text, respond};
use crate::fasthash::{FastMap, FastSet};
use crate::observe::parse_client_names;
use crate::reply::{list_line, Fidelity, Reply, View};
use crate::rules::delivery::Delivery;
use crate::rules::{parse_i64, Flags};
use crate::{errors, ffi};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Default,
    Optin,
    Optout,
    Bcast,
}

/// A client's mode where the module knows it. A partial client shows only `on` (and `bcast`,
/// from CLIENT LIST's `B`): whether it is OPTIN or OPTOUT is unknown, so it is in no MODE but
/// `bcast`.
pub fn mode_of(v: &View) -> Option<Mode> {
    let f = v.state.flags;
    if f.contains(Flags::BCAST) {
        Some(Mode::Bcast)
    } else if v.fidelity == Fidelity::Partial {
        None
    } else if f.contains(Flags::OPTIN) {
        Some(Mode::Optin)
    } else if f.contains(Flags::OPTOUT) {
        Some(Mode::Optout)
    } else {
        Some(Mode::Default)
    }
}

/// The arguments, as typed. Id tokens are kept raw: which of them are ids is the server's call
/// (see `resolve_ids`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// `None`: no ID filter. Repeated ID filters add up.
    pub id_tokens: Option<Vec<Vec<u8>>>,
    /// A repeated MODE or DELIVERY: the last one counts.
    pub mode: Option<Mode>,
    pub delivery: Option<Delivery>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    Syntax,
    UnknownMode(Vec<u8>),
    UnknownDelivery(Vec<u8>),
}

impl From<ParseError> for RedisError {
    fn from(e: ParseError) -> RedisError {
        let quoted = |what: &str, v: &[u8]| {
            RedisError::String(format!("{what} '{}'", String::from_utf8_lossy(v)))
        };
        match e {
            ParseError::Syntax => RedisError::Str(errors::SYNTAX),
            ParseError::UnknownMode(v) => quoted(errors::UNKNOWN_MODE, &v),
            ParseError::UnknownDelivery(v) => quoted(errors::UNKNOWN_DELIVERY, &v),
        }
    }
}

fn is_keyword(a: &[u8]) -> bool {
    [&b"id"[..], b"mode", b"delivery"]
        .iter()
        .any(|k| a.eq_ignore_ascii_case(k))
}

/// Parses the arguments after the command name. ID takes every token up to the next keyword
/// (at least one), MODE and DELIVERY one value each; keywords and values in any case.
pub fn parse(args: &[&[u8]]) -> Result<Filter, ParseError> {
    let mut f = Filter::default();
    let mut i = 0;
    while i < args.len() {
        let kw = args[i];
        i += 1;
        if kw.eq_ignore_ascii_case(b"id") {
            let start = i;
            while i < args.len() && !is_keyword(args[i]) {
                i += 1;
            }
            if i == start {
                return Err(ParseError::Syntax); // as CLIENT LIST ID with no id
            }
            let tokens = f.id_tokens.get_or_insert_with(Vec::new);
            tokens.extend(args[start..i].iter().map(|t| t.to_vec()));
            continue;
        }
        let Some(&value) = args.get(i) else {
            return Err(ParseError::Syntax);
        };
        i += 1;
        let is = |w: &str| value.eq_ignore_ascii_case(w.as_bytes());
        if kw.eq_ignore_ascii_case(b"mode") {
            f.mode = Some(match () {
                _ if is("default") => Mode::Default,
                _ if is("optin") => Mode::Optin,
                _ if is("optout") => Mode::Optout,
                _ if is("bcast") => Mode::Bcast,
                _ => return Err(ParseError::UnknownMode(value.to_vec())),
            });
        } else if kw.eq_ignore_ascii_case(b"delivery") {
            f.delivery = Some(match () {
                _ if is("self") => Delivery::SelfPush,
                _ if is("redirect") => Delivery::Redirect,
                _ if is("dropped") => Delivery::Dropped,
                _ => return Err(ParseError::UnknownDelivery(value.to_vec())),
            });
        } else {
            return Err(ParseError::Syntax);
        }
    }
    Ok(f)
}

/// The ids among `tokens`. A positive integer (string2ll's syntax) is an id on every server;
/// any other token is refused with the error `refusal` gives for it (the server's own CLIENT
/// LIST ID text, which differs between Redis and Valkey), or matches nothing where the server
/// accepts it (Redis: 0 and negative ids).
pub fn resolve_ids(
    tokens: &[Vec<u8>],
    refusal: impl Fn(&[u8]) -> Option<RedisError>,
) -> Result<FastSet<u64>, RedisError> {
    let mut ids = FastSet::default();
    for t in tokens {
        match parse_i64(t) {
            Some(n @ 1..) => {
                ids.insert(n as u64);
            }
            n => {
                if let Some(e) = refusal(t) {
                    return Err(e);
                }
                if n.is_none() {
                    // The server took a token that is no integer: never seen, but no id.
                    return Err(RedisError::Str(errors::INVALID_CLIENT_ID));
                }
            }
        }
    }
    Ok(ids)
}

impl Filter {
    pub fn matches(&self, v: &View, ids: Option<&FastSet<u64>>) -> bool {
        ids.is_none_or(|ids| ids.contains(&v.id))
            && self.mode.is_none_or(|m| mode_of(v) == Some(m))
            && self.delivery.is_none_or(|d| v.delivery == d)
    }
}

/// The error the server's CLIENT LIST ID gives for `token`, if any.
fn server_refusal(ctx: &Context, token: &[u8]) -> Option<RedisError> {
    crate::ffi::note_own_call();
    ctx.call("CLIENT", &[&b"LIST"[..], b"ID", token][..]).err()
}

/// TRACKINFO.LIST: one CLIENT LIST-style line per tracking client, by id.
pub fn list(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    super::access::may_see_others(ctx, "trackinfo.list")?;
    let argv: Vec<&[u8]> = args.iter().skip(1).map(RedisString::as_slice).collect();
    // Every error is found before anything is asked of the module's state.
    let filter = parse(&argv)?;
    let ids = match &filter.id_tokens {
        Some(tokens) => Some(resolve_ids(tokens, |t| server_refusal(ctx, t))?),
        None => None,
    };
    let views: Vec<View> = all_views(ctx)?
        .into_iter()
        .filter(|v| filter.matches(v, ids.as_ref()))
        .collect();
    // `addr` and `name` are CLIENT LIST's own. Asking it about tracking clients is safe after a
    // reload (redis/redis#10177): a client still pointing at an unloaded command has sent
    // nothing since, so it tracks from before load, and is partial, listed by CLIENTS anyway.
    let shown: Vec<u64> = views.iter().map(|v| v.id).collect();
    let names = parse_client_names(&client_list_text(ctx, Some(&shown))?);
    let by_id: FastMap<u64, usize> = names.iter().enumerate().map(|(i, n)| (n.id, i)).collect();
    let now = ffi::now_ms();
    let mut text = Vec::with_capacity(views.len() * 160);
    for v in &views {
        // Gone since it was planned: nothing to show (as in CLIENTS).
        let Some(n) = by_id.get(&v.id).map(|&i| &names[i]) else {
            continue;
        };
        list_line(v, &n.addr, &n.name, now, &mut text);
    }
    respond(ctx, &Reply::Verbatim(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Filter, ParseError> {
        let a: Vec<&[u8]> = args.iter().map(|s| s.as_bytes()).collect();
        parse(&a)
    }

    fn tokens(t: &[&str]) -> Option<Vec<Vec<u8>>> {
        Some(t.iter().map(|s| s.as_bytes().to_vec()).collect())
    }

    #[test]
    fn filters_combine_in_any_order_and_case() {
        assert_eq!(p(&[]), Ok(Filter::default()));
        let f = p(&[
            "delivery", "Dropped", "id", "3", "x", "Mode", "BCAST", "ID", "4",
        ])
        .unwrap();
        assert_eq!(f.id_tokens, tokens(&["3", "x", "4"]));
        assert_eq!(f.mode, Some(Mode::Bcast));
        assert_eq!(f.delivery, Some(Delivery::Dropped));
        assert_eq!(
            p(&["MODE", "optin", "MODE", "optout"]).unwrap().mode,
            Some(Mode::Optout)
        );
    }

    #[test]
    fn missing_values_and_unknown_words_are_errors() {
        for bad in [
            &["ID"][..],
            &["ID", "MODE", "bcast"],
            &["MODE"],
            &["ID", "1", "DELIVERY"],
            &["TYPE", "normal"],
            &["bcast"],
        ] {
            assert_eq!(p(bad), Err(ParseError::Syntax), "{bad:?}");
        }
        assert_eq!(
            p(&["MODE", "off"]),
            Err(ParseError::UnknownMode(b"off".to_vec()))
        );
        assert_eq!(
            p(&["DELIVERY", "off"]),
            Err(ParseError::UnknownDelivery(b"off".to_vec()))
        );
    }

    #[test]
    fn ids_the_server_refuses_get_its_error_and_ids_it_accepts_match_nothing() {
        let toks = |t: &[&str]| tokens(t).unwrap();
        let refuse_all = |_: &[u8]| Some(RedisError::Str("ERR server says no"));
        let accept_all = |_: &[u8]| None;
        let ids = resolve_ids(&toks(&["5", "9223372036854775807"]), refuse_all).unwrap();
        assert_eq!(ids.len(), 2);
        let e = resolve_ids(&toks(&["5", "abc"]), refuse_all).unwrap_err();
        assert_eq!(format!("{e}"), "ERR server says no");
        let ids = resolve_ids(&toks(&["0", "-3", "7"]), accept_all).unwrap();
        assert_eq!(ids.into_iter().collect::<Vec<_>>(), [7]);
        let e = resolve_ids(&toks(&["007"]), accept_all).unwrap_err();
        assert_eq!(format!("{e}"), errors::INVALID_CLIENT_ID);
    }
}
