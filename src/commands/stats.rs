//! TRACKINFO.STATS and the `trackinfo` INFO section: server-wide figures, the module's beside
//! the server's own.

use std::collections::BTreeMap;

use redis_module::{Context, RedisError, RedisResult, RedisString};

use super::info::all_views;
use super::respond;
use crate::hooks::with_state;
use crate::reply::{Reply, View};
use crate::rules::delivery::Delivery;
use crate::rules::{parse_i64, Flags};
use crate::{errors, ffi};

/// How many of the most shared keys TRACKINFO.STATS lists.
const TOP_KEYS: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scalar {
    Int(i64),
    Text(String),
}

/// Everything TRACKINFO.STATS reports.
struct Stats {
    scalars: Vec<(&'static str, Scalar)>,
    redirect_targets: BTreeMap<i64, i64>,
    top_keys: Vec<(Vec<u8>, i64)>,
    /// Figures added after `top-keys` (TRACKINFO.STATS) and after `counters` (INFO), so that
    /// no existing key moves.
    later: Vec<(&'static str, Scalar)>,
}

fn int(n: impl TryInto<i64>) -> Scalar {
    Scalar::Int(n.try_into().unwrap_or(i64::MAX))
}

fn mode(v: &View) -> &'static str {
    let f = v.state.flags;
    if f.contains(Flags::BCAST) {
        "bcast"
    } else if f.contains(Flags::OPTIN) {
        "optin"
    } else if f.contains(Flags::OPTOUT) {
        "optout"
    } else if v.fidelity == crate::reply::Fidelity::Partial {
        "unknown" // CLIENT LIST does not show OPTIN/OPTOUT
    } else {
        "default"
    }
}

/// The figures; top keys only when `top_for` names the caller whose ACL key patterns decide
/// which keys it may see (INFO shows no keys).
fn gather(ctx: &Context, top_for: Option<&ffi::CallerAcl>) -> Result<Stats, RedisError> {
    let views = all_views(ctx)?;
    let server = |section: &str, names: &[&str]| -> Vec<Scalar> {
        let v = ffi::info_fields(section, names).unwrap_or_default();
        (0..names.len())
            .map(|i| {
                v.get(i)
                    .cloned()
                    .flatten()
                    .and_then(|f| parse_i64(&f))
                    .map_or(Scalar::Int(-1), Scalar::Int)
            })
            .collect()
    };
    let clients = server("clients", &["tracking_clients"]);
    let totals = server(
        "stats",
        &[
            "tracking_total_keys",
            "tracking_total_items",
            "tracking_total_prefixes",
        ],
    );
    let mut by_mode: BTreeMap<&str, i64> = ["default", "optin", "optout", "bcast", "unknown"]
        .into_iter()
        .map(|m| (m, 0))
        .collect();
    let mut redirect_targets = BTreeMap::new();
    for v in &views {
        *by_mode.entry(mode(v)).or_default() += 1;
        let r = v.state.reported_redirect();
        if r > 0 {
            *redirect_targets.entry(r).or_default() += 1;
        }
    }
    let dropped = views
        .iter()
        .filter(|v| v.delivery == Delivery::Dropped)
        .count();
    let broken = views
        .iter()
        .filter(|v| v.state.flags.contains(Flags::BROKEN_REDIR))
        .count();
    let counters_exact = views
        .iter()
        .all(|v| v.tracked_keys.is_some() && v.acct.as_ref().is_some_and(|a| !a.approximate));
    let with_drops = views
        .iter()
        .filter(|v| {
            v.state.is_on()
                && v.acct
                    .as_ref()
                    .is_some_and(|a| a.dropped_keys + a.dropped_flushes > 0)
        })
        .count();
    let (keys, items, live_items, invalidated, flushes, top_keys, dropped_items, drops) =
        with_state(|st| {
            let live: u64 = views.iter().map(|v| st.table.count_of(v.id)).sum();
            let top = st
                .table
                .top_keys(top_for.map_or(0, |_| TOP_KEYS), |k| {
                    top_for.is_some_and(|acl| acl.may_read(k))
                })
                .into_iter()
                .map(|(k, n)| (k.to_vec(), i64::try_from(n).unwrap_or(i64::MAX)))
                .collect::<Vec<_>>();
            let exact = st.exact && crate::config::key_table();
            (
                exact.then(|| st.table.key_count()),
                exact.then(|| st.table.items()),
                live,
                st.exact.then_some(st.total_invalidated),
                st.exact.then_some(st.total_flushes),
                top,
                st.dropped_items,
                st.exact
                    .then_some((st.total_dropped_keys, st.total_dropped_flushes, with_drops)),
            )
        })
        .ok_or(RedisError::Str(errors::INTERNAL))?;
    let (records, table_clients) = with_state(|st| {
        let table = st.exact && crate::config::key_table();
        (st.client_records(), table.then(|| st.table.client_count()))
    })
    .ok_or(RedisError::Str(errors::INTERNAL))?;
    let known = |n: Option<u64>| n.map_or(Scalar::Int(-1), int);
    // Items the server holds for ids that are gone: its total minus what live clients hold.
    let unreclaimed = match (&totals[1], keys) {
        (Scalar::Int(server_items), Some(_)) if *server_items >= 0 => {
            int(server_items.saturating_sub(i64::try_from(live_items).unwrap_or(i64::MAX)))
        }
        _ => Scalar::Int(-1),
    };
    let mut scalars = vec![
        ("tracking-clients", int(views.len())),
        ("clients-default", int(by_mode["default"])),
        ("clients-optin", int(by_mode["optin"])),
        ("clients-optout", int(by_mode["optout"])),
        ("clients-bcast", int(by_mode["bcast"])),
        ("clients-unknown-mode", int(by_mode["unknown"])),
        ("clients-delivery-dropped", int(dropped)),
        ("clients-broken-redirect", int(broken)),
        ("redirect-targets", int(redirect_targets.len())),
        ("keys", known(keys)),
        ("items", known(items)),
        ("invalidated-keys", known(invalidated)),
        ("flush-invalidations", known(flushes)),
        ("unreclaimed-items", unreclaimed),
        ("client-records", int(records)),
        ("key-table-clients", known(table_clients)),
        ("memory-bytes", int(ffi::module_memory())),
        ("memory-allocations", int(ffi::module_allocations())),
        ("filter-allocations", int(ffi::filter_allocations())),
        (
            "key-table",
            Scalar::Text(
                if crate::config::key_table() {
                    "yes"
                } else {
                    "no"
                }
                .into(),
            ),
        ),
        (
            "key-table-max-items",
            int(crate::config::max_items().unwrap_or(0)),
        ),
        ("key-table-dropped-items", int(dropped_items)),
    ];
    scalars.push(("server-tracking-clients", clients[0].clone()));
    scalars.push(("server-tracking-total-keys", totals[0].clone()));
    scalars.push(("server-tracking-total-items", totals[1].clone()));
    scalars.push(("server-tracking-total-prefixes", totals[2].clone()));
    scalars.push((
        "counters",
        Scalar::Text(
            if counters_exact {
                "exact"
            } else {
                "approximate"
            }
            .into(),
        ),
    ));
    let later = vec![
        ("dropped-keys", known(drops.map(|d| d.0))),
        ("dropped-flushes", known(drops.map(|d| d.1))),
        (
            "clients-with-drops",
            known(drops.map(|d| u64::try_from(d.2).unwrap_or(u64::MAX))),
        ),
    ];
    Ok(Stats {
        scalars,
        redirect_targets,
        top_keys,
        later,
    })
}

/// TRACKINFO.STATS
pub fn stats(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    if args.len() != 1 {
        return Err(RedisError::WrongArity);
    }
    // Top keys are keys: only those the caller may read are shown (as in TRACKINFO.KEYS).
    let acl = super::access::may_see_others(ctx, "trackinfo.stats")?;
    let s = gather(ctx, Some(&acl))?;
    let scalar = |v: &Scalar| match v {
        Scalar::Int(i) => Reply::Int(*i),
        Scalar::Text(t) => Reply::bulk(t),
    };
    let mut pairs: Vec<(Reply, Reply)> = s
        .scalars
        .iter()
        .map(|(k, v)| (Reply::bulk(k), scalar(v)))
        .collect();
    pairs.push((
        Reply::bulk("redirect-target-sources"),
        Reply::Map(
            s.redirect_targets
                .iter()
                .map(|(t, n)| (Reply::Int(*t), Reply::Int(*n)))
                .collect(),
        ),
    ));
    pairs.push((
        Reply::bulk("top-keys"),
        Reply::Array(
            s.top_keys
                .iter()
                .map(|(k, n)| Reply::Array(vec![Reply::bulk(k), Reply::Int(*n)]))
                .collect(),
        ),
    ));
    pairs.extend(s.later.iter().map(|(k, v)| (Reply::bulk(k), scalar(v))));
    respond(ctx, &Reply::Map(pairs))
}

/// The scalar figures as INFO fields: `trackinfo_<name>` with `-` turned into `_`.
pub fn info_fields(ctx: &Context) -> Vec<(String, Scalar)> {
    gather(ctx, None)
        .map(|s| {
            s.scalars
                .into_iter()
                .chain(s.later)
                .map(|(k, v)| (k.replace('-', "_"), v))
                .collect()
        })
        .unwrap_or_default()
}
