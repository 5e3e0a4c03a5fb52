//! Who may see other connections: never a caller the server would not let run `CLIENT LIST`,
//! whose addresses, names and ids the views show again. The check is the server's own
//! (ACLCheckCommandPermissions for the caller's user), on every server: Redis 7.0 lets modules
//! set no ACL categories, and a rule such as `-client|list` names no category at all. Where the
//! server sets categories (7.2+), the views' are `@admin @slow @dangerous`: the server denies
//! them first to users without those, and this check adds the rules that name CLIENT LIST.

use redis_module::{Context, RedisError};

use crate::errors;
use crate::ffi::CallerAcl;

/// The caller's ACL user if it may run CLIENT LIST; otherwise the server's NOPERM for `command`
/// (the view's lowercase name), logged in ACL LOG as a denied command.
pub fn may_see_others(ctx: &Context, command: &str) -> Result<CallerAcl, RedisError> {
    let acl = CallerAcl::of(ctx).ok_or(RedisError::Str(errors::NO_CALLER_ACL))?;
    if acl.may_run(&[b"client", b"list"]) {
        return Ok(acl);
    }
    acl.log_denied_command(ctx, command);
    Err(RedisError::String(errors::noperm_command(
        noperm_names_user(ctx),
        acl.name(),
        command,
    )))
}

/// Whether this server's NOPERM names the user: from Redis 7.2 on, and on every Valkey.
fn noperm_names_user(ctx: &Context) -> bool {
    ctx.get_redis_version()
        .map_or(true, |v| (v.major, v.minor) >= (7, 2))
}
