//! TRACKINFO.KEYS <client-id> [COUNT n]: the keys the server's tracking table holds for a client.

use redis_module::{Context, RedisError, RedisResult, RedisString};

use super::respond;
use crate::hooks::with_state;
use crate::reply::Reply;
use crate::rules::parse_i64;
use crate::{errors, ffi};

const DEFAULT_COUNT: usize = 100;

pub fn keys(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    if args.len() < 2 {
        return Err(RedisError::WrongArity);
    }
    // Only keys the caller's ACL key patterns let it read are listed, as the server's own
    // commands would let it see them.
    let acl = super::access::may_see_others(ctx, "trackinfo.keys")?;
    let (id, count) = parse(&args)?;
    // Syntax first, then the client, as CLIENT KILL and CLIENT LIST ID check theirs.
    let id = u64::try_from(id).map_err(|_| RedisError::Str(errors::NO_SUCH_CLIENT))?;
    ffi::client_flags(id).ok_or(RedisError::Str(errors::NO_SUCH_CLIENT))?;
    let caller = ffi::caller_id(ctx);
    let in_exec = ffi::in_exec(ctx);
    let keys = with_state(|st| {
        if !st.exact {
            return Err(RedisError::Str(errors::KEYS_UNKNOWN_SENDER));
        }
        if !crate::config::key_table() {
            return Err(RedisError::Str(errors::KEYS_TABLE_OFF));
        }
        st.prepare(id, caller, in_exec);
        if st.acct(id).is_none() {
            return Err(RedisError::Str(errors::KEYS_UNKNOWN_PARTIAL));
        }
        // Never a key list the module itself doubts.
        if st.keys_doubted(id) {
            return Err(RedisError::Str(errors::KEYS_UNSURE));
        }
        Ok(st
            .table
            .keys_of(id, count, |k| acl.may_read(k))
            .into_iter()
            .map(Reply::bulk)
            .collect::<Vec<_>>())
    })
    .ok_or(RedisError::Str(errors::INTERNAL))??;
    respond(ctx, &Reply::Array(keys))
}

/// `<client-id> [COUNT n]`; COUNT 0 means all. The arity is checked already.
fn parse(args: &[RedisString]) -> Result<(i64, usize), RedisError> {
    let id = parse_i64(args[1].as_slice()).ok_or(RedisError::Str(errors::NOT_AN_INTEGER))?;
    let count = match &args[2..] {
        [] => DEFAULT_COUNT,
        [opt, n] if opt.as_slice().eq_ignore_ascii_case(b"count") => {
            let n = parse_i64(n.as_slice()).ok_or(RedisError::Str(errors::NOT_AN_INTEGER))?;
            // As LPOP's and SPOP's count: a negative one is out of range.
            usize::try_from(n).map_err(|_| RedisError::Str(errors::MUST_BE_POSITIVE))?
        }
        _ => return Err(RedisError::Str(errors::SYNTAX)),
    };
    Ok((id, count))
}
