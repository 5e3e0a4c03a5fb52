//! trackinfo: CLIENT TRACKINGINFO for any connection, for Redis 7.x/8.x and Valkey.
//!
//! Where things live: `commands/` (the command layer), `rules/` (the server's CLIENT TRACKING
//! and CACHING rules, replayed), `clients.rs` (per-client state), `keys.rs` (the per-key table),
//! `hooks.rs` (the filter and
//! event logic), `ffi.rs` (all raw module API calls), `reply.rs`, `observe.rs`, `errors.rs`.

pub mod clients;
pub mod commands;
pub mod config;
pub mod errors;
pub mod ffi;
pub mod hooks;
pub mod keys;
pub mod observe;
pub mod reply;
pub mod rules;

// Unit tests run with the system allocator: the module (and its allocator) exists only in the
// built library.
#[cfg(not(test))]
mod module {
    use super::{commands, config, ffi, hooks};
    use redis_module::configuration::{ConfigurationContext, ConfigurationFlags};
    use redis_module::{Context, RedisResult, RedisString, Status};
    use std::sync::atomic::AtomicBool;

    fn key_table_changed(_ctx: &ConfigurationContext, _name: &str, v: &'static AtomicBool) {
        let on = v.load(std::sync::atomic::Ordering::Relaxed);
        ffi::guard("config change", || hooks::on_key_table_switched(on));
    }
    fn init(ctx: &Context, _args: &[RedisString]) -> Status {
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

    fn deinit(_ctx: &Context) -> Status {
        hooks::uninstall();
        ffi::close_detached();
        Status::Ok
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

    fn trackinfo_keys(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
        ffi::command(ctx, args, commands::keys::keys)
    }

    fn trackinfo_stats(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
        ffi::command(ctx, args, commands::stats::stats)
    }

    redis_module::redis_module! {
        name: "trackinfo",
        version: 1,
        allocator: (ffi::CountingAlloc, ffi::CountingAlloc),
        data_types: [],
        init: init,
        deinit: deinit,
        commands: [
            // Flags as CLIENT TRACKINGINFO's. ACL categories are set where the server lets modules
            // set them (7.2+); `admin` implies @admin @dangerous everywhere.
            ["trackinfo.get", trackinfo_get, "deny-script allow-loading allow-stale", 0, 0, 0, "", "connection slow"],
            ["trackinfo.client", trackinfo_client, "admin deny-script allow-loading allow-stale", 0, 0, 0, "", "admin slow dangerous"],
            ["trackinfo.clients", trackinfo_clients, "admin deny-script allow-loading allow-stale", 0, 0, 0, "", "admin slow dangerous"],
            ["trackinfo.keys", trackinfo_keys, "admin deny-script allow-loading allow-stale", 0, 0, 0, "", "admin slow dangerous"],
            ["trackinfo.stats", trackinfo_stats, "admin deny-script allow-loading allow-stale", 0, 0, 0, "", "admin slow dangerous"],
        ],
        configurations: [
            i64: [
                ["key-table-max-items", &config::KEY_TABLE_MAX_ITEMS, config::DEFAULT_MAX_ITEMS, 0, i64::MAX, ConfigurationFlags::DEFAULT, None],
            ],
            string: [],
            bool: [
                ["key-table", &config::KEY_TABLE, true, ConfigurationFlags::DEFAULT, Some(Box::new(key_table_changed))],
            ],
            enum: [],
            module_args_as_configuration: true,
        ]
    }
}
