//! The command layer: one file per command family. Handlers parse arguments, ask the hooks'
//! state for views, and answer with `Reply` data the FFI shim emits.

pub mod access;
pub mod docs;
pub mod info;
pub mod keys;
pub mod list;
pub mod stats;

use redis_module::{Context, RedisError, RedisResult, RedisValue};

use crate::observe::{parse_client_list, Listed};
use crate::reply::Reply;
use crate::{errors, ffi};

/// Answers with `r`, built as the server builds its own replies.
fn respond(ctx: &Context, r: &Reply) -> RedisResult {
    ffi::emit(ctx, r);
    Ok(RedisValue::NoReply)
}

/// Gives the server every command's COMMAND DOCS / COMMAND INFO information (`docs.rs`).
/// A refusal only costs the docs: it is logged, and the module loads.
pub fn describe(ctx: &Context) {
    for doc in docs::COMMANDS {
        match ffi::set_command_docs(ctx, doc) {
            ffi::DocsOutcome::Set | ffi::DocsOutcome::NoSuchCommand => {}
            ffi::DocsOutcome::Refused(why) => ctx.log_warning(&format!(
                "trackinfo: COMMAND DOCS of {} not set ({why}); the command works without them",
                doc.name
            )),
        }
    }
}

/// CLIENT LIST (all clients, or the given ids), through RM_Call: the server's own word on the
/// `t`, `B` and `R` flags and `redir=`.
pub fn client_list(ctx: &Context, ids: Option<&[u64]>) -> Result<Vec<Listed>, RedisError> {
    Ok(parse_client_list(&client_list_text(ctx, ids)?))
}

/// CLIENT LIST's text for all clients, or for the given ids (none for an empty list).
pub fn client_list_text(ctx: &Context, ids: Option<&[u64]>) -> Result<Vec<u8>, RedisError> {
    let id_args: Vec<String> = ids.unwrap_or(&[]).iter().map(u64::to_string).collect();
    let mut args: Vec<&str> = vec!["LIST"];
    if ids.is_some() {
        if id_args.is_empty() {
            return Ok(Vec::new());
        }
        args.push("ID");
        args.extend(id_args.iter().map(String::as_str));
    }
    crate::ffi::note_own_call();
    match ctx.call("CLIENT", args.as_slice()) {
        Ok(RedisValue::SimpleString(s)) | Ok(RedisValue::BulkString(s)) => Ok(s.into_bytes()),
        Ok(RedisValue::StringBuffer(b)) => Ok(b),
        _ => Err(RedisError::Str(errors::INTERNAL)),
    }
}

/// The ids of all clients with tracking on, in id order: probed without CLIENT LIST where the
/// time budget allows (see `hooks::server_tracking_ids`), else from CLIENT LIST.
pub fn tracking_ids(ctx: &Context) -> Result<Vec<u64>, RedisError> {
    if let Some(ids) = crate::hooks::server_tracking_ids() {
        return Ok(ids);
    }
    let mut ids: Vec<u64> = client_list(ctx, None)?
        .iter()
        .filter(|l| l.tracking)
        .map(|l| l.id)
        .collect();
    ids.sort_unstable();
    Ok(ids)
}

/// Read-only commands and container commands, from the server's COMMAND reply:
/// `[name, arity, flags, first, last, step, acl, tips, key specs, subcommands]`.
pub fn command_table(ctx: &Context) -> crate::cmdtable::CommandTable {
    let mut t = crate::cmdtable::CommandTable::default();
    if let Ok(RedisValue::Array(all)) = ctx.call("COMMAND", &[] as &[&str]) {
        add_commands(&mut t, &all);
    }
    t.mark_special();
    t
}

fn add_commands(t: &mut crate::cmdtable::CommandTable, list: &[RedisValue]) {
    let text = |v: &RedisValue| match v {
        RedisValue::SimpleString(s) | RedisValue::BulkString(s) => Some(s.to_ascii_lowercase()),
        RedisValue::StringBuffer(b) => Some(String::from_utf8_lossy(b).to_ascii_lowercase()),
        _ => None,
    };
    for cmd in list {
        let RedisValue::Array(info) = cmd else {
            continue;
        };
        let Some(name) = info.first().and_then(text) else {
            continue;
        };
        if let Some(RedisValue::Array(flags)) = info.get(2) {
            let flags: Vec<String> = flags.iter().filter_map(text).collect();
            if flags.iter().any(|f| f == "readonly") {
                t.entry(name.as_bytes()).readonly = true;
                let int = |i: usize| match info.get(i) {
                    Some(RedisValue::Integer(n)) => Some(*n),
                    _ => None,
                };
                let span = (|| {
                    Some(crate::cmdtable::KeySpan {
                        arity: int(1)?,
                        first: int(3)?,
                        last: int(4)?,
                        step: int(5)?,
                    })
                })();
                // Commands whose keys move with their arguments are left to the server
                // (GetCommandKeysWithFlags).
                if let Some(span) = span.filter(|s| s.first > 0 && s.step > 0) {
                    if !flags.iter().any(|f| f == "movablekeys") {
                        t.entry(name.as_bytes()).span = Some(span);
                    }
                }
            }
        }
        if let Some(RedisValue::Array(subs)) = info.get(9) {
            if !subs.is_empty() {
                t.entry(name.as_bytes()).container = true;
                add_commands(t, subs);
            }
        }
    }
}

/// The server's CLIENT subcommand names, lowercase, without the `client|` prefix.
pub fn client_subcommands(ctx: &Context) -> Vec<Vec<u8>> {
    let Ok(RedisValue::Array(names)) =
        ctx.call("COMMAND", &["LIST", "FILTERBY", "PATTERN", "client|*"][..])
    else {
        return Vec::new();
    };
    names
        .into_iter()
        .filter_map(|n| match n {
            RedisValue::SimpleString(s) | RedisValue::BulkString(s) => s
                .to_ascii_lowercase()
                .strip_prefix("client|")
                .map(|s| s.as_bytes().to_vec()),
            _ => None,
        })
        .collect()
}
