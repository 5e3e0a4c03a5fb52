//! TRACKINFO.GET, TRACKINFO.CLIENT and TRACKINFO.CLIENTS: CLIENT TRACKINGINFO for any client.

use std::sync::atomic::{AtomicI64, Ordering::Relaxed};

use redis_module::{Context, RedisError, RedisResult, RedisString, RedisValue};

use super::{access, client_list, respond, tracking_ids};
use crate::fasthash::{FastMap, FastSet};
use crate::hooks::{self, with_state};
use crate::reply::{entry, Fidelity, Reply, View};
use crate::rules::delivery::{route, Receiver};
use crate::rules::{parse_i64, Flags};
use crate::{errors, ffi};

/// TRACKINFO.GET: the caller's own entry.
pub fn get(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    if args.len() != 1 {
        return Err(RedisError::WrongArity);
    }
    let v = view_of(ctx, ffi::caller_id(ctx))?;
    respond(ctx, &entry(&v))
}

/// TRACKINFO.CLIENT <client-id>: any connected client's entry.
pub fn client(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    if args.len() != 2 {
        return Err(RedisError::WrongArity);
    }
    access::may_see_others(ctx, "trackinfo.client")?;
    #[cfg(feature = "panic-injection")]
    if args[1].as_slice() == b"test-panic" {
        panic!("injected panic in a command");
    }
    #[cfg(feature = "panic-injection")]
    if args[1].as_slice() == b"test-invalid-read" {
        std::hint::black_box(ffi::memcheck_canary());
        return Ok(redis_module::RedisValue::Integer(0));
    }
    let id = parse_i64(args[1].as_slice()).ok_or(RedisError::Str(errors::NOT_AN_INTEGER))?;
    let id = u64::try_from(id).map_err(|_| RedisError::Str(errors::NO_SUCH_CLIENT))?;
    let v = view_of(ctx, id)?;
    respond(ctx, &entry(&v))
}

/// TRACKINFO.CLIENTS: the entries of every client with tracking on, by id.
pub fn clients(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    if args.len() != 1 {
        return Err(RedisError::WrongArity);
    }
    access::may_see_others(ctx, "trackinfo.clients")?;
    let views = all_views(ctx)?;
    respond(ctx, &Reply::Array(views.iter().map(entry).collect()))
}

fn state_missing() -> RedisError {
    RedisError::Str(errors::INTERNAL)
}

/// What one client's entry needs before it can be shown.
enum Plan {
    Ready(View),
    /// The module's view, but its redirect target is gone: CLIENT LIST says whether the server
    /// has marked the redirect broken yet.
    CheckBroken(View),
    /// Only CLIENT LIST's view is available; `partial` when the module's own knowledge is
    /// partial (else CLIENT LIST's off state is exact).
    Listed {
        id: u64,
        partial: bool,
    },
}

fn plan(st: &hooks::State, id: u64, in_exec: bool) -> Plan {
    let view = if in_exec && st.is_pending(id) {
        // Inside the caller's own EXEC: some of its queued CLIENT commands have run.
        st.exec_view(id)
    } else {
        st.exact_view(id)
    };
    match view {
        None => Plan::Listed { id, partial: true },
        Some(v) => {
            let s = &v.state;
            let target_gone = s.is_on()
                && !s.flags.contains(Flags::BROKEN_REDIR)
                && u64::try_from(s.redirect).is_ok_and(|r| r > 0 && ffi::client_flags(r).is_none());
            if target_gone {
                Plan::CheckBroken(v)
            } else {
                Plan::Ready(v)
            }
        }
    }
}

fn view_of(ctx: &Context, id: u64) -> Result<View, RedisError> {
    let exact = with_state(|st| st.exact).ok_or_else(state_missing)?;
    if !exact {
        // Redis 7.0: the filter cannot tell who sent a command; CLIENT LIST is all there is.
        let plan = Plan::Listed { id, partial: false };
        let mut views = finish(ctx, vec![plan])?;
        return views.pop().ok_or(RedisError::Str(errors::NO_SUCH_CLIENT));
    }
    let caller = ffi::caller_id(ctx);
    let in_exec = ffi::in_exec(ctx);
    let plan = with_state(|st| {
        if id == caller {
            st.prepare_own(in_exec);
        } else {
            st.prepare(id, caller, in_exec)?;
        }
        Some(plan(st, id, in_exec))
    })
    .ok_or_else(state_missing)?
    .ok_or(RedisError::Str(errors::NO_SUCH_CLIENT))?;
    let mut views = finish(ctx, vec![plan])?;
    views.pop().ok_or(RedisError::Str(errors::NO_SUCH_CLIENT))
}

pub fn all_views(ctx: &Context) -> Result<Vec<View>, RedisError> {
    let exact = with_state(|st| st.exact).ok_or_else(state_missing)?;
    if !exact {
        let plans = tracking_ids(ctx)?
            .into_iter()
            .map(|id| Plan::Listed { id, partial: false })
            .collect();
        let views = finish(ctx, plans)?;
        return Ok(views.into_iter().filter(|v| v.state.is_on()).collect());
    }
    let caller = ffi::caller_id(ctx);
    let in_exec = ffi::in_exec(ctx);
    // Settle every known client, and count those the server says track.
    let on = with_state(|st| {
        st.tracking_ids()
            .into_iter()
            .filter(|&id| st.prepare(id, caller, in_exec).is_some_and(|f| f.tracking))
            .count()
    })
    .ok_or_else(state_missing)?;
    let server = ffi::info_fields("clients", &["tracking_clients"])
        .and_then(|v| v.into_iter().next().flatten())
        .and_then(|v| parse_i64(&v));
    if server.is_some_and(|n| usize::try_from(n).ok() != Some(on)) {
        adopt_unseen(ctx)?;
    }
    let plans = with_state(|st| {
        st.tracking_ids()
            .into_iter()
            .map(|id| plan(st, id, in_exec))
            .collect::<Vec<_>>()
    })
    .ok_or_else(state_missing)?;
    let views = finish(ctx, plans)?;
    Ok(views.into_iter().filter(|v| v.state.is_on()).collect())
}

/// The server counts more tracking clients than the module knows: take the missing ones from
/// CLIENT LIST as partial.
fn adopt_unseen(ctx: &Context) -> Result<(), RedisError> {
    let tracking = tracking_ids(ctx)?;
    with_state(|st| {
        let known = st.tracking_ids();
        for id in tracking.into_iter().filter(|id| !known.contains(id)) {
            redis_module::logging::log_warning(format!(
                "trackinfo: client {id} tracks but the module did not see it start; marking it partial"
            ));
            st.mark_partial(id);
        }
    })
    .ok_or_else(state_missing)
}

/// Completes the plans with one CLIENT LIST for the clients and their redirect targets: the
/// server's word on `R`, on each protocol and on Pub/Sub mode.
fn finish(ctx: &Context, plans: Vec<Plan>) -> Result<Vec<View>, RedisError> {
    // A client whose view is ready, with no redirect, needs only its protocol: the caller's own
    // context says it, and the module keeps the others' (10,000 such CLIENT LIST lines cost
    // milliseconds); CLIENT LIST is not asked about them. Redirect targets are always asked
    // (their Pub/Sub mode matters).
    let caller = ffi::caller_id(ctx);
    let targets: FastSet<u64> = plans
        .iter()
        .filter_map(|p| match p {
            Plan::Ready(v) | Plan::CheckBroken(v) => u64::try_from(v.state.reported_redirect())
                .ok()
                .filter(|&t| t > 0),
            Plan::Listed { .. } => None,
        })
        .collect();
    let kept: FastMap<u64, i64> = with_state(|st| {
        plans
            .iter()
            .filter_map(|p| match p {
                Plan::Ready(v) if v.state.reported_redirect() <= 0 && !targets.contains(&v.id) => {
                    let resp = if v.id == caller {
                        Some(ffi::caller_resp(ctx))
                    } else {
                        st.protocol(v.id)
                    };
                    resp.map(|r| (v.id, r))
                }
                _ => None,
            })
            .collect()
    })
    .unwrap_or_default();
    let mut ask: Vec<u64> = Vec::with_capacity(plans.len() * 2);
    for p in &plans {
        match p {
            Plan::Ready(v) | Plan::CheckBroken(v) => {
                if !kept.contains_key(&v.id) {
                    ask.push(v.id);
                }
                if let Ok(target @ 1..) = u64::try_from(v.state.reported_redirect()) {
                    ask.push(target);
                }
            }
            Plan::Listed { id, .. } => ask.push(*id),
        }
    }
    let mut listed = Vec::new();
    if !ask.is_empty() {
        listed = client_list(ctx, Some(&ask))?;
        // Targets of partial entries are known only now.
        let asked: FastSet<u64> = ask.iter().copied().collect();
        let mut more: Vec<u64> = listed
            .iter()
            .filter(|l| l.tracking && l.redir > 0 && !asked.contains(&(l.redir as u64)))
            .map(|l| l.redir as u64)
            .collect();
        more.sort_unstable();
        more.dedup();
        listed.extend(client_list(ctx, Some(&more))?);
        let protocols: Vec<(u64, i64)> = listed.iter().map(|l| (l.id, l.resp)).collect();
        with_state(|st| st.note_protocols(&protocols));
    }
    // By id: 10,000 clients must not cost 10,000 scans of 10,000 lines.
    let by_id: FastMap<u64, usize> = listed.iter().enumerate().map(|(i, l)| (l.id, i)).collect();
    let find = |id: u64| by_id.get(&id).map(|&i| &listed[i]);
    let receiver = |id: u64| {
        find(id)
            .map(|l| Receiver {
                resp: l.resp,
                pubsub: l.pubsub,
            })
            // Not a redirect target (see `kept`): Pub/Sub mode does not matter.
            .or_else(|| {
                kept.get(&id).map(|&resp| Receiver {
                    resp,
                    pubsub: false,
                })
            })
    };
    let mut out = Vec::with_capacity(plans.len());
    let mut broken = Vec::new();
    for p in plans {
        let mut v = match p {
            Plan::Ready(v) => v,
            Plan::CheckBroken(mut v) => {
                if find(v.id).is_some_and(|l| l.broken_redirect) {
                    v.state.flags.insert(Flags::BROKEN_REDIR);
                    broken.push(v.id);
                }
                v
            }
            Plan::Listed { id, partial } => {
                // Gone since it was planned: nothing to show.
                let Some(l) = find(id) else { continue };
                let mut v = hooks::listed_view(l);
                if partial {
                    v.fidelity = Fidelity::Partial;
                }
                v
            }
        };
        // Gone since it was planned: nothing to show.
        let Some(own) = receiver(v.id) else { continue };
        v.resp = own.resp;
        let redirect = v.state.reported_redirect().max(0);
        let target = u64::try_from(redirect)
            .ok()
            .filter(|&t| t > 0)
            .and_then(receiver);
        v.delivery = route(v.state.is_on(), redirect, own, target);
        out.push(v);
    }
    if !broken.is_empty() {
        with_state(|st| broken.iter().for_each(|&id| st.mark_broken(id)));
    }
    add_accounting(ctx, &mut out);
    Ok(out)
}

/// Fills in the counters, after checking the mirrored table against the server's totals (once
/// per event-loop cycle while nothing changes: INFO stats is the costly part of a query; and
/// only when some view has counters to show: a client with tracking off has none).
fn add_accounting(ctx: &Context, views: &mut [View]) {
    let counted = views
        .iter()
        .any(|v| v.fidelity == Fidelity::Exact && v.state.is_on());
    let check = counted
        && with_state(|st| st.exact && !st.table_at_risk()).unwrap_or(false)
        && !hooks::table_check_holds();
    let totals = if check {
        ffi::info_fields("stats", &["tracking_total_keys", "tracking_total_items"]).map(|v| {
            v.into_iter()
                .map(|f| f.and_then(|f| parse_i64(&f)))
                .collect::<Vec<_>>()
        })
    } else {
        None
    };
    let max_keys = if check {
        tracking_table_max_keys(ctx)
    } else {
        -1
    };
    with_state(|st| {
        if !st.exact {
            return;
        }
        if let Some(totals) = totals.as_deref().filter(|_| !st.table_at_risk()) {
            let mine = [st.table.key_count(), st.table.items()].map(|n| i64::try_from(n).ok());
            if totals == mine {
                let keys = i64::try_from(st.table.key_count()).unwrap_or(i64::MAX);
                hooks::note_table_checked(max_keys == 0 || (max_keys > 0 && keys <= max_keys));
            } else {
                // Something changed the server's table where the module could not see it (the
                // tracking-table-max-keys limit, another module's writes...).
                redis_module::logging::log_warning(
                    "trackinfo: the server's tracking table differs from the module's; counters are approximate",
                );
                st.mark_all_approximate();
            }
        }
        for v in views.iter_mut().filter(|v| v.fidelity == Fidelity::Exact) {
            v.acct = st.acct(v.id);
            // BCAST remembers no keys (old entries may linger in the table, but are skipped).
            let bcast = v.state.flags.contains(Flags::BCAST);
            let table = crate::config::key_table();
            v.tracked_keys = v.acct.as_ref().and_then(|_| match (bcast, table) {
                (true, _) => Some(0),
                (false, true) => Some(st.table.count_of(v.id)),
                (false, false) => None, // no table, no way to know
            });
        }
    });
}

/// The server's `tracking-table-max-keys` (0: no limit; -1: unknown). Read again after the
/// filter saw a CONFIG command (and after load).
fn tracking_table_max_keys(ctx: &Context) -> i64 {
    static MAX_KEYS: AtomicI64 = AtomicI64::new(-1);
    if hooks::take_config_seen() {
        let number = |v: &RedisValue| match v {
            RedisValue::BulkString(s) | RedisValue::SimpleString(s) => s.parse().ok(),
            RedisValue::StringBuffer(b) => parse_i64(b),
            RedisValue::BulkRedisString(s) => parse_i64(s.as_slice()),
            RedisValue::Integer(n) => Some(*n),
            _ => None,
        };
        // `[name, value]`, or a map where the call speaks RESP3.
        crate::ffi::note_own_call();
        let max = match ctx.call("CONFIG", &["GET", "tracking-table-max-keys"][..]) {
            Ok(RedisValue::Array(v)) => v.get(1).and_then(number),
            Ok(RedisValue::Map(m)) => m.values().next().and_then(number),
            Ok(RedisValue::OrderedMap(m)) => m.values().next().and_then(number),
            _ => None,
        };
        MAX_KEYS.store(max.filter(|&n| n >= 0).unwrap_or(-1), Relaxed);
    }
    MAX_KEYS.load(Relaxed)
}
