//! trackinfo: CLIENT TRACKINGINFO for any connection, for Redis 7.x/8.x and Valkey.
//!
//! Where things live: `commands/` (the command layer), `cmdtable.rs` (what the filter knows of
//! the server's commands), `rules/` (the server's CLIENT TRACKING
//! and CACHING rules, replayed), `clients.rs` (per-client state), `keys.rs` (the per-key table),
//! `hooks.rs` (the filter and
//! event logic), `hooks/placement.rs` and `transaction.rs` (where EXEC's commands, expiries,
//! evictions and unseen writes fall, by the server's counters), `hooks/route.rs` (where each
//! message goes, and so what is dropped), `doubts.rs` (every cause of
//! approximate counters), `ffi.rs` (all raw module API calls), `reply.rs`, `observe.rs`,
//! `errors.rs`, `version.rs` (the version MODULE LIST shows, from Cargo.toml's).

pub mod clients;
pub mod cmdtable;
pub mod commands;
pub mod config;
pub mod doubts;
pub mod errors;
pub mod fasthash;
pub mod ffi;
pub mod hooks;
pub mod keys;
pub mod observe;
pub mod reply;
pub mod rules;
pub mod transaction;
pub mod version;

// Unit tests run with the system allocator: the module (and its allocator) exists only in the
// built library.
#[cfg(not(test))]
mod module {
    use super::{commands, config, ffi, hooks, observe};
    use redis_module::{Context, RedisResult, RedisString, Status};

    fn init(ctx: &Context, args: &[RedisString]) -> Status {
        // The configs first (as the crate's `configurations:` did): a `key-table no` applied
        // now finds no state to change yet.
        let args: Vec<&[u8]> = args.iter().map(RedisString::as_slice).collect();
        let configured = config::defaults_from_args(&args).and_then(|(max_items, key_table)| {
            ffi::register_configs(ctx, max_items, key_table).map_err(str::to_string)
        });
        if let Err(e) = configured {
            ctx.log_warning(&format!("trackinfo: {e}"));
            return Status::Err;
        }
        commands::describe(ctx);
        ffi::open_detached(ctx);
        let exact = ffi::filter_knows_client();
        let subcommands = commands::client_subcommands(ctx);
        // Clients that switched tracking on before MODULE LOAD.
        let tracking = commands::tracking_ids(ctx).unwrap_or_default();
        ffi::register_info(ctx);
        let command_table = commands::command_table(ctx);
        hooks::install(exact, subcommands, command_table, &tracking);
        if exact {
            if let Err(e) = ffi::register_hooks(ctx) {
                ctx.log_warning(&format!("trackinfo: {e}"));
                hooks::uninstall();
                ffi::close_detached();
                return Status::Err;
            }
        } else {
            ctx.log_notice(
                "trackinfo: this server's command filter cannot tell who sent a command; \
                 tracking clients are reported with fidelity partial (from CLIENT LIST)",
            );
        }
        Status::Ok
    }

    fn deinit(ctx: &Context) -> Status {
        // Once a module is gone, Redis (8.2.3 at least) recomputes every user's ACL and asserts
        // on a rule naming one of its commands: the server crashes. Valkey 8.1 refuses such an
        // unload itself (valkey#2797); refuse it here too, before anything is torn down, so the
        // module keeps working. The server answers "operation not possible"; the log says why.
        let rules = acl_rules_on_own_commands(ctx);
        if !rules.is_empty() {
            ctx.log_warning(&format!(
                "trackinfo: MODULE UNLOAD refused: ACL rules name trackinfo commands ({}); \
                 the server would crash recomputing them. Remove those rules and unload again",
                rules.join("; ")
            ));
            return Status::Err;
        }
        hooks::uninstall();
        ffi::close_detached();
        Status::Ok
    }

    /// `user <name>: <rule>` for each ACL rule that names one of the module's commands.
    fn acl_rules_on_own_commands(ctx: &Context) -> Vec<String> {
        use redis_module::RedisValue;
        let Ok(RedisValue::Array(lines)) = ctx.call("ACL", &["LIST"][..]) else {
            return Vec::new(); // cannot tell: let the server decide
        };
        let mut out = Vec::new();
        for line in lines {
            let line = match line {
                RedisValue::SimpleString(s) | RedisValue::BulkString(s) => s,
                RedisValue::StringBuffer(b) => String::from_utf8_lossy(&b).into_owned(),
                _ => continue,
            };
            let user = line.split(' ').nth(1).unwrap_or("?");
            for rule in observe::acl_command_rules(&line, "trackinfo.") {
                out.push(format!("user {user}: {rule}"));
            }
        }
        out
    }

    fn trackinfo_get(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
        ffi::command(ctx, args, commands::info::get)
    }

    fn trackinfo_client(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
        ffi::command(ctx, args, commands::info::client)
    }

    fn trackinfo_clients(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
        ffi::command(ctx, args, commands::info::clients)
    }

    fn trackinfo_list(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
        ffi::command(ctx, args, commands::list::list)
    }

    fn trackinfo_keys(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
        ffi::command(ctx, args, commands::keys::keys)
    }

    fn trackinfo_stats(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
        ffi::command(ctx, args, commands::stats::stats)
    }

    redis_module::redis_module! {
        name: "trackinfo",
        version: crate::version::MODULE_VERSION,
        allocator: (ffi::CountingAlloc, ffi::CountingAlloc),
        data_types: [],
        init: init,
        deinit: deinit,
        commands: [
            // Flags as CLIENT TRACKINGINFO's. ACL categories are set where the server lets modules
            // set them (7.2+): the views of other connections are @admin @dangerous, and not
            // @connection, so a +@connection user may run TRACKINFO.GET alone. On every server
            // they also answer NOPERM to a caller that may not run CLIENT LIST (commands/access.rs).
            ["trackinfo.get", trackinfo_get, "deny-script allow-loading allow-stale", 0, 0, 0, "", "connection slow"],
            ["trackinfo.client", trackinfo_client, "admin deny-script allow-loading allow-stale", 0, 0, 0, "", "admin slow dangerous"],
            ["trackinfo.clients", trackinfo_clients, "admin deny-script allow-loading allow-stale", 0, 0, 0, "", "admin slow dangerous"],
            ["trackinfo.list", trackinfo_list, "admin deny-script allow-loading allow-stale", 0, 0, 0, "", "admin slow dangerous"],
            ["trackinfo.keys", trackinfo_keys, "admin deny-script allow-loading allow-stale", 0, 0, 0, "", "admin slow dangerous"],
            ["trackinfo.stats", trackinfo_stats, "admin deny-script allow-loading allow-stale", 0, 0, 0, "", "admin slow dangerous"],
        ],
    }
}
