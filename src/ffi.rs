//! The FFI shim: every call into the raw module API, and every `extern "C"` entry point the
//! server calls. It is the only file with `unsafe`; each block says why it is sound.
//! Entry points catch panics, so none crosses into the server.

use std::alloc::GlobalAlloc;
use std::ffi::{c_char, c_int, c_void, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering};

use redis_module::{raw, Context, RedisString};

use crate::hooks;
use crate::observe::{parse_cmdstat, CallStats};
use crate::reply::Reply;

/// A context with no client, for the module API calls that need one where the server gives
/// none (the command filter). Created at load, freed at unload.
static DETACHED: AtomicPtr<raw::RedisModuleCtx> = AtomicPtr::new(ptr::null_mut());

/// Runs `f`, turning a panic into a logged warning and `None`.
pub fn guard<R>(what: &str, f: impl FnOnce() -> R) -> Option<R> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => Some(r),
        Err(payload) => {
            let msg = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            redis_module::logging::log_warning(format!("trackinfo: panic in {what}: {msg}"));
            None
        }
    }
}

/// True where the command filter can tell who sent a command (Redis 7.2+, Valkey).
pub fn filter_knows_client() -> bool {
    // SAFETY: copies a function pointer the module API filled in at load; no call is made.
    let f = unsafe { raw::RedisModule_CommandFilterGetClientId };
    f.is_some()
}

/// One command as the filter sees it, before the server looks it up.
pub struct FilterCmd {
    fctx: *mut raw::RedisModuleCommandFilterCtx,
}

impl hooks::Command for FilterCmd {
    fn argc(&self) -> usize {
        // SAFETY: fctx is the live filter context the server passed to this callback.
        let n = unsafe { raw::RedisModule_CommandFilterArgsCount.map_or(0, |f| f(self.fctx)) };
        usize::try_from(n).unwrap_or(0)
    }

    fn arg(&self, i: usize) -> &[u8] {
        let Ok(pos) = c_int::try_from(i) else {
            return &[];
        };
        // SAFETY: fctx is live for this callback and pos < argc; the returned string belongs to
        // the server's argv, which outlives the callback, and is neither freed nor changed here.
        unsafe {
            let (Some(get), Some(ptrlen)) = (
                raw::RedisModule_CommandFilterArgGet,
                raw::RedisModule_StringPtrLen,
            ) else {
                return &[];
            };
            let s = get(self.fctx, pos);
            if s.is_null() {
                return &[];
            }
            let mut len = 0usize;
            let p = ptrlen(s, &mut len);
            if p.is_null() {
                return &[];
            }
            std::slice::from_raw_parts(p.cast::<u8>(), len)
        }
    }

    fn client_id(&self) -> u64 {
        // SAFETY: fctx is the live filter context; the API only reads its client's id.
        unsafe { raw::RedisModule_CommandFilterGetClientId.map_or(0, |f| f(self.fctx)) }
    }

    fn key_positions(&self) -> Option<Vec<usize>> {
        let ctx = DETACHED.load(Ordering::Acquire);
        if ctx.is_null() {
            return None;
        }
        let argc = self.argc();
        // SAFETY: fctx is live for this callback; the argv array holds the server's own strings
        // for positions < argc and only lives during this call; the returned array is owned by
        // the caller and freed with RM_Free before returning.
        unsafe {
            let get = raw::RedisModule_CommandFilterArgGet?;
            let keys = raw::RedisModule_GetCommandKeysWithFlags?;
            let free = raw::RedisModule_Free?;
            let mut argv: Vec<*mut raw::RedisModuleString> = (0..argc)
                .map(|i| get(self.fctx, c_int::try_from(i).unwrap_or(0)))
                .collect();
            if argv.iter().any(|a| a.is_null()) {
                return None;
            }
            let mut n: c_int = 0;
            let pos = keys(
                ctx,
                argv.as_mut_ptr(),
                c_int::try_from(argc).ok()?,
                &mut n,
                ptr::null_mut(),
            );
            if pos.is_null() {
                // No keys, or an unknown command / wrong arity (refused before running).
                return (std::io::Error::last_os_error().raw_os_error() == Some(0)).then(Vec::new);
            }
            let out = std::slice::from_raw_parts(pos, usize::try_from(n).unwrap_or(0))
                .iter()
                .filter_map(|&p| usize::try_from(p).ok())
                .collect();
            free(pos.cast());
            Some(out)
        }
    }
}

unsafe extern "C" fn on_filter(fctx: *mut raw::RedisModuleCommandFilterCtx) {
    IN_FILTER.store(true, Ordering::Relaxed);
    guard("command filter", || hooks::on_command(&FilterCmd { fctx }));
    IN_FILTER.store(false, Ordering::Relaxed);
}

unsafe extern "C" fn on_client_change(
    _ctx: *mut raw::RedisModuleCtx,
    _eid: raw::RedisModuleEvent,
    subevent: u64,
    data: *mut c_void,
) {
    if data.is_null() {
        return;
    }
    // SAFETY: for ClientChange events the server passes a RedisModuleClientInfoV1 (dataver 1).
    let id = unsafe { (*data.cast::<raw::RedisModuleClientInfo>()).id };
    if subevent == raw::REDISMODULE_SUBEVENT_CLIENT_CHANGE_DISCONNECTED {
        guard("client event", || hooks::on_disconnect(id));
    } else if subevent == raw::REDISMODULE_SUBEVENT_CLIENT_CHANGE_CONNECTED {
        guard("client event", || hooks::on_connect(id));
    }
}

unsafe extern "C" fn on_keyspace(
    _ctx: *mut raw::RedisModuleCtx,
    _type: c_int,
    event: *const c_char,
    key: *mut raw::RedisModuleString,
) -> c_int {
    if event.is_null() || key.is_null() {
        return raw::REDISMODULE_OK as c_int;
    }
    // SAFETY: the server passes a NUL-terminated event name and the key's string, both alive
    // for the duration of the callback.
    let (event, key) = unsafe {
        let mut len = 0usize;
        let p = raw::RedisModule_StringPtrLen.map_or(ptr::null(), |f| f(key, &mut len));
        if p.is_null() {
            return raw::REDISMODULE_OK as c_int;
        }
        (
            std::ffi::CStr::from_ptr(event).to_bytes(),
            std::slice::from_raw_parts(p.cast::<u8>(), len),
        )
    };
    guard("keyspace event", || hooks::on_keyspace(event, key));
    raw::REDISMODULE_OK as c_int
}

unsafe extern "C" fn on_flushdb(
    _ctx: *mut raw::RedisModuleCtx,
    _eid: raw::RedisModuleEvent,
    subevent: u64,
    _data: *mut c_void,
) {
    if subevent == raw::REDISMODULE_SUBEVENT_FLUSHDB_START {
        guard("flush event", hooks::on_flush);
    }
}

unsafe extern "C" fn on_event_loop(
    _ctx: *mut raw::RedisModuleCtx,
    _eid: raw::RedisModuleEvent,
    subevent: u64,
    _data: *mut c_void,
) {
    if subevent == raw::REDISMODULE_SUBEVENT_EVENTLOOP_BEFORE_SLEEP {
        guard("before-sleep event", hooks::on_before_sleep);
    } else {
        hooks::on_after_sleep();
    }
}

unsafe extern "C" fn on_cron_loop(
    _ctx: *mut raw::RedisModuleCtx,
    _eid: raw::RedisModuleEvent,
    _subevent: u64,
    _data: *mut c_void,
) {
    guard("cron event", hooks::on_cron_loop);
}

/// Registers the command filter and the disconnect event. Both go away with the module.
pub fn register_hooks(ctx: &Context) -> Result<(), &'static str> {
    // SAFETY: ctx is the OnLoad context; the callbacks are 'static functions of this library,
    // and the server unregisters them on MODULE UNLOAD before the library is closed.
    unsafe {
        let reg = raw::RedisModule_RegisterCommandFilter.ok_or("no command filter API")?;
        let filter = reg(
            ctx.ctx,
            Some(on_filter),
            raw::REDISMODULE_CMDFILTER_NOSELF as c_int,
        );
        if filter.is_null() {
            return Err("could not register the command filter");
        }
        let sub = raw::RedisModule_SubscribeToServerEvent.ok_or("no server event API")?;
        let ev = raw::RedisModuleEvent {
            id: raw::REDISMODULE_EVENT_CLIENT_CHANGE,
            dataver: 1,
        };
        if sub(ctx.ctx, ev, Some(on_client_change)) != raw::REDISMODULE_OK as c_int {
            return Err("could not subscribe to client events");
        }
        let flush = raw::RedisModuleEvent {
            id: raw::REDISMODULE_EVENT_FLUSHDB,
            dataver: 1,
        };
        if sub(ctx.ctx, flush, Some(on_flushdb)) != raw::REDISMODULE_OK as c_int {
            return Err("could not subscribe to flush events");
        }
        let event_loop = raw::RedisModuleEvent {
            id: raw::REDISMODULE_EVENT_EVENTLOOP,
            dataver: 1,
        };
        if sub(ctx.ctx, event_loop, Some(on_event_loop)) != raw::REDISMODULE_OK as c_int {
            return Err("could not subscribe to event-loop events");
        }
        let cron = raw::RedisModuleEvent {
            id: raw::REDISMODULE_EVENT_CRON_LOOP,
            dataver: 1,
        };
        if sub(ctx.ctx, cron, Some(on_cron_loop)) != raw::REDISMODULE_OK as c_int {
            return Err("could not subscribe to cron events");
        }
    }
    // Keyspace events are subscribed to only once they matter (hooks::sync_gates), and, where
    // the server can unsubscribe a module (Redis 8), only while they do: the server pays for
    // every subscriber on every write.
    // SAFETY: copies a function pointer the module API filled in at load; no call is made.
    let ksn = unsafe { raw::RedisModule_SubscribeToKeyspaceEvents };
    ksn.map(|_| ()).ok_or("no keyspace event API")
}

/// Whether the module is subscribed to keyspace events now.
static KEYSPACE_ON: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// True where the server can unsubscribe a module from keyspace events (Redis 8.0+).
pub fn keyspace_events_can_stop() -> bool {
    // SAFETY: copies a function pointer the module API filled in at load; no call is made.
    let f = unsafe { raw::RedisModule_UnsubscribeFromKeyspaceEvents };
    f.is_some()
}

/// Subscribes to keyspace events for every class of write (key misses are reads), or
/// unsubscribes. Not to be called to unsubscribe while the server delivers an event (it walks
/// its list of subscribers): hooks.rs does that at the before-sleep event only. False if the
/// server refused or cannot.
pub fn keyspace_events(on: bool) -> bool {
    if KEYSPACE_ON.load(Ordering::Relaxed) == on {
        return true;
    }
    let ctx = DETACHED.load(Ordering::Acquire);
    if ctx.is_null() {
        return false;
    }
    // SAFETY: ctx is the live detached context (its module is this one); on_keyspace is a
    // 'static function of this library, and the server drops the subscription at unload.
    let ok = unsafe {
        let f = if on {
            raw::RedisModule_SubscribeToKeyspaceEvents
        } else {
            raw::RedisModule_UnsubscribeFromKeyspaceEvents
        };
        f.is_some_and(|f| {
            f(ctx, raw::REDISMODULE_NOTIFY_ALL, Some(on_keyspace)) == raw::REDISMODULE_OK as c_int
        })
    };
    if ok {
        KEYSPACE_ON.store(on, Ordering::Relaxed);
    }
    ok
}

pub fn open_detached(ctx: &Context) {
    // SAFETY: ctx is a valid module context; the detached context is freed in close_detached.
    let d = unsafe {
        raw::RedisModule_GetDetachedThreadSafeContext.map_or(ptr::null_mut(), |f| f(ctx.ctx))
    };
    let old = DETACHED.swap(d, Ordering::AcqRel);
    free_ctx(old);
}

/// Set at the first MODULE UNLOAD in this process, and never cleared: the library stays mapped
/// (README), so a later load sees it.
static UNLOADED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether the module was unloaded before in this process (so clients may still point at its
/// old commands: redis/redis#10177).
pub fn reloaded() -> bool {
    UNLOADED.load(Ordering::Relaxed)
}

pub fn close_detached() {
    UNLOADED.store(true, Ordering::Relaxed);
    free_ctx(DETACHED.swap(ptr::null_mut(), Ordering::AcqRel));
    // MODULE UNLOAD drops the module's subscriptions; a later load starts unsubscribed.
    KEYSPACE_ON.store(false, Ordering::Relaxed);
}

fn free_ctx(c: *mut raw::RedisModuleCtx) {
    if c.is_null() {
        return;
    }
    // SAFETY: c came from GetDetachedThreadSafeContext and was just taken out of DETACHED,
    // so nobody else can free or use it.
    unsafe {
        if let Some(free) = raw::RedisModule_FreeThreadSafeContext {
            free(c);
        }
    }
}

/// A connection's flags as RedisModule_GetClientInfoById reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ClientFlags {
    pub tracking: bool,
    pub multi: bool,
    pub blocked: bool,
    pub pubsub: bool,
    /// The database it has selected.
    pub db: i32,
}

/// The flags of a real connection; `None` for ids that are not connected (or fake clients).
pub fn client_flags(id: u64) -> Option<ClientFlags> {
    let mut ci = raw::RedisModuleClientInfo {
        version: 1,
        flags: 0,
        id: 0,
        addr: [0; 46],
        port: 0,
        db: 0,
    };
    // SAFETY: ci is a RedisModuleClientInfoV1 with version 1, which the server fills in.
    let rc = unsafe {
        raw::RedisModule_GetClientInfoById.map_or(raw::REDISMODULE_ERR as c_int, |f| {
            f((&mut ci as *mut raw::RedisModuleClientInfo).cast(), id)
        })
    };
    if rc != raw::REDISMODULE_OK as c_int {
        return None;
    }
    let has = |bit: u32| ci.flags & u64::from(bit) != 0;
    Some(ClientFlags {
        tracking: has(raw::REDISMODULE_CLIENTINFO_FLAG_TRACKING),
        multi: has(raw::REDISMODULE_CLIENTINFO_FLAG_MULTI),
        blocked: has(raw::REDISMODULE_CLIENTINFO_FLAG_BLOCKED),
        pubsub: has(raw::REDISMODULE_CLIENTINFO_FLAG_PUBSUB),
        db: i32::from(ci.db),
    })
}

/// How many keys database `db` holds (DBSIZE), through the detached context.
pub fn db_size(db: i32) -> Option<u64> {
    let ctx = DETACHED.load(Ordering::Acquire);
    if ctx.is_null() {
        return None;
    }
    // SAFETY: ctx is the live detached context; it is switched to `db` for the count and back
    // to 0, the database every other use of it expects.
    unsafe {
        let select = raw::RedisModule_SelectDb?;
        let size = raw::RedisModule_DbSize?;
        if select(ctx, db) != raw::REDISMODULE_OK as c_int {
            return None;
        }
        let n = size(ctx);
        select(ctx, 0);
        Some(n)
    }
}

/// Reads fields of one INFO section through the module API.
/// Returns one entry per requested field, `None` where the server has no such field.
pub fn info_fields(section: &str, fields: &[&str]) -> Option<Vec<Option<Vec<u8>>>> {
    let ctx = DETACHED.load(Ordering::Acquire);
    if ctx.is_null() {
        return None;
    }
    let section = CString::new(section).ok()?;
    let names: Vec<CString> = fields
        .iter()
        .map(|f| CString::new(*f))
        .collect::<Result<_, _>>()
        .ok()?;
    // SAFETY: ctx is the live detached context; the info data is freed before returning, and
    // each field string is copied out and freed before the data is.
    unsafe {
        let get = raw::RedisModule_GetServerInfo?;
        let field = raw::RedisModule_ServerInfoGetField?;
        let free_info = raw::RedisModule_FreeServerInfo?;
        let free_str = raw::RedisModule_FreeString?;
        let ptrlen = raw::RedisModule_StringPtrLen?;
        let data = get(ctx, section.as_ptr());
        if data.is_null() {
            return None;
        }
        let mut out = Vec::with_capacity(names.len());
        for name in &names {
            let s = field(ctx, data, name.as_ptr());
            if s.is_null() {
                out.push(None);
                continue;
            }
            let mut len = 0usize;
            let p = ptrlen(s, &mut len);
            out.push(Some(
                std::slice::from_raw_parts(p.cast::<u8>(), len).to_vec(),
            ));
            free_str(ctx, s);
        }
        free_info(ctx, data);
        Some(out)
    }
}

/// Commands the module itself has run through RM_Call: each adds one to the server's
/// `total_commands_processed` (call() counts it as any other), which `commands_processed`
/// takes back out.
static OWN_CALLS: AtomicU64 = AtomicU64::new(0);

/// Notes one RM_Call of the module's (made by the command layer with the crate's `ctx.call`).
pub fn note_own_call() {
    OWN_CALLS.fetch_add(1, Ordering::Relaxed);
}

/// INFO stats `total_commands_processed`: one more each time a command has run, a command
/// inside EXEC, a script or RM_Call included (server.c call()), less the module's own calls.
pub fn commands_processed() -> Option<u64> {
    let v = info_fields("stats", &["total_commands_processed"])?;
    let v = v.into_iter().next().flatten()?;
    let n = u64::try_from(crate::rules::parse_i64(&v)?).ok()?;
    Some(n.wrapping_sub(OWN_CALLS.load(Ordering::Relaxed)))
}

/// The protocol (2 or 3) of connection `id`, from `CLIENT LIST ID <id>` (`resp=`): the only
/// place the server shows another connection's protocol. `None` when it is gone, or outside a
/// spot where the module may run a command (the command filter runs before the server has
/// even looked the command up).
pub fn client_protocol(id: u64) -> Option<i64> {
    if IN_FILTER.load(Ordering::Relaxed) {
        return None;
    }
    let ctx = DETACHED.load(Ordering::Acquire);
    if ctx.is_null() {
        return None;
    }
    let id = std::os::raw::c_longlong::try_from(id).ok()?;
    // SAFETY: ctx is the live detached context, used on the main thread outside the filter;
    // the format "ccl" matches the three arguments; the reply's string is copied before the
    // reply is freed.
    let line = unsafe {
        let call = raw::RedisModule_Call?;
        let kind = raw::RedisModule_CallReplyType?;
        let text = raw::RedisModule_CallReplyStringPtr?;
        let free = raw::RedisModule_FreeCallReply?;
        let reply = call(
            ctx,
            c"CLIENT".as_ptr(),
            c"ccl".as_ptr(),
            c"LIST".as_ptr(),
            c"ID".as_ptr(),
            id,
        );
        if reply.is_null() {
            return None;
        }
        note_own_call();
        let mut len = 0usize;
        let out = if kind(reply) == raw::REDISMODULE_REPLY_STRING as c_int {
            let p = text(reply, &mut len);
            (!p.is_null()).then(|| std::slice::from_raw_parts(p.cast::<u8>(), len).to_vec())
        } else {
            None
        };
        free(reply);
        out?
    };
    let listed = crate::observe::parse_client_list(&line);
    listed.iter().find(|l| l.id == id as u64).map(|l| l.resp)
}

/// INFO persistence `rdb_changes_since_last_save`: the server's count of changes to the data
/// (server.dirty), reset by a save.
pub fn server_dirty() -> Option<u64> {
    let v = info_fields("persistence", &["rdb_changes_since_last_save"])?;
    let v = v.into_iter().next().flatten()?;
    u64::try_from(crate::rules::parse_i64(&v)?).ok()
}

/// `calls` and `failed_calls` of commands from INFO commandstats; a command never called has none.
pub fn command_stats(names: &[&str]) -> Option<Vec<CallStats>> {
    let fields: Vec<String> = names.iter().map(|n| format!("cmdstat_{n}")).collect();
    let refs: Vec<&str> = fields.iter().map(String::as_str).collect();
    let values = info_fields("commandstats", &refs)?;
    values
        .into_iter()
        .map(|v| match v {
            None => Some(CallStats::default()),
            Some(v) => parse_cmdstat(&v),
        })
        .collect()
}

/// Unix time in milliseconds, from the server's clock.
pub fn now_ms() -> i64 {
    // SAFETY: a plain clock read with no arguments.
    unsafe { raw::RedisModule_Milliseconds.map_or(-1, |f| f()) }
}

/// The id of the connection running the current command.
pub fn caller_id(ctx: &Context) -> u64 {
    // SAFETY: ctx is the live context of the running command.
    unsafe { raw::RedisModule_GetClientId.map_or(0, |f| f(ctx.ctx)) }
}

/// The ACL user of the connection running the current command: which commands it may run and
/// which keys it may read. Freed when dropped.
pub struct CallerAcl {
    user: *mut raw::RedisModuleUser,
    name: Vec<u8>,
}

impl CallerAcl {
    /// The current command's user; `None` if the server cannot say (no such API, user gone, or
    /// no connection behind the command: another module's RM_Call).
    pub fn of(ctx: &Context) -> Option<CallerAcl> {
        // The name is looked up by client id, not with GetCurrentUserName: that one reads
        // ctx->client->user unchecked, and the temporary client of another module's RM_Call has
        // none (module.c). Such a client is in no client table, so the lookup says ENOENT.
        let id = caller_id(ctx);
        // SAFETY: ctx is the live context of the running command. The name string is ours to
        // free (freed right after it is copied); the user handle is freed by Drop.
        unsafe {
            let name_of = raw::RedisModule_GetClientUserNameById?;
            let lookup = raw::RedisModule_GetModuleUserFromUserName?;
            let ptrlen = raw::RedisModule_StringPtrLen?;
            let free_str = raw::RedisModule_FreeString?;
            raw::RedisModule_ACLCheckKeyPermissions?;
            raw::RedisModule_ACLCheckCommandPermissions?;
            raw::RedisModule_FreeModuleUser?;
            let s = name_of(ctx.ctx, id);
            if s.is_null() {
                return None;
            }
            let mut len = 0usize;
            let p = ptrlen(s, &mut len);
            let name = std::slice::from_raw_parts(p.cast::<u8>(), len).to_vec();
            let user = lookup(s);
            free_str(ctx.ctx, s);
            (!user.is_null()).then_some(CallerAcl { user, name })
        }
    }

    /// The user's name, as the server writes it in NOPERM errors and ACL LOG.
    pub fn name(&self) -> &[u8] {
        &self.name
    }

    /// True if the user may run the command `argv` (name, subcommand, arguments), as the server
    /// checks it before running it; false too if the server has no such command.
    pub fn may_run(&self, argv: &[&[u8]]) -> bool {
        let mut strings: Vec<ModuleString> =
            argv.iter().filter_map(|a| ModuleString::new(a)).collect();
        if strings.len() != argv.len() {
            return false;
        }
        let Ok(argc) = c_int::try_from(strings.len()) else {
            return false;
        };
        // SAFETY: self.user is a live user handle (checked in `of`); `strings` is an array of
        // argc live module strings (ModuleString is a transparent pointer), freed after the call.
        unsafe {
            raw::RedisModule_ACLCheckCommandPermissions.is_some_and(|check| {
                check(self.user, strings.as_mut_ptr().cast(), argc) == raw::REDISMODULE_OK as c_int
            })
        }
    }

    /// Adds an ACL LOG entry for a command this user was denied (reason `command`, object the
    /// command's name). The server writes the context as `module`.
    pub fn log_denied_command(&self, ctx: &Context, command: &str) {
        let Some(object) = ModuleString::new(command.as_bytes()) else {
            return;
        };
        // SAFETY: ctx is the live context of the running command, self.user a live user handle
        // and object a live string (the server copies it).
        unsafe {
            if let Some(add) = raw::RedisModule_ACLAddLogEntry {
                let reason = raw::RedisModuleACLLogEntryReason_REDISMODULE_ACL_LOG_CMD;
                add(ctx.ctx, self.user, object.0, reason);
            }
        }
    }

    /// True if the user's key patterns let it read `key` (`%R~`, `~`), as the server checks
    /// a command's read key.
    pub fn may_read(&self, key: &[u8]) -> bool {
        let Some(s) = ModuleString::new(key) else {
            return false;
        };
        // SAFETY: self.user is a live user handle (checked in `of`), s a live string.
        unsafe {
            raw::RedisModule_ACLCheckKeyPermissions.is_some_and(|check| {
                check(self.user, s.0, raw::REDISMODULE_CMD_KEY_ACCESS as c_int)
                    == raw::REDISMODULE_OK as c_int
            })
        }
    }
}

/// A module string made without a context, freed when dropped.
#[repr(transparent)]
struct ModuleString(*mut raw::RedisModuleString);

impl ModuleString {
    fn new(bytes: &[u8]) -> Option<ModuleString> {
        // SAFETY: bytes is a live slice of bytes.len() bytes; the server copies them.
        let s = unsafe {
            let create = raw::RedisModule_CreateString?;
            create(
                ptr::null_mut(),
                bytes.as_ptr().cast::<c_char>(),
                bytes.len(),
            )
        };
        (!s.is_null()).then_some(ModuleString(s))
    }
}

impl Drop for ModuleString {
    fn drop(&mut self) {
        // SAFETY: self.0 was created without a context by `new` and is freed once, here.
        unsafe {
            if let Some(free) = raw::RedisModule_FreeString {
                free(ptr::null_mut(), self.0);
            }
        }
    }
}

impl Drop for CallerAcl {
    fn drop(&mut self) {
        // SAFETY: self.user came from GetModuleUserFromUserName and is freed once, here.
        unsafe {
            if let Some(free) = raw::RedisModule_FreeModuleUser {
                free(self.user);
            }
        }
    }
}

/// Test-only (feature `panic-injection`): reads one byte past an 8-byte block from the server's
/// allocator, the error `make memcheck` must catch (its canary test proves the check can fail).
#[cfg(feature = "panic-injection")]
pub fn memcheck_canary() -> u8 {
    // SAFETY: deliberately out of bounds by one byte, in test builds only. The byte lies inside
    // the allocator's chunk or slab (glibc chunks hold at least 24 bytes; jemalloc's 8-byte
    // regions sit in a slab page), so the read cannot fault; memcheck reports it.
    unsafe {
        let (Some(alloc), Some(free)) = (raw::RedisModule_Alloc, raw::RedisModule_Free) else {
            return 0;
        };
        let p = alloc(8).cast::<u8>();
        if p.is_null() {
            return 0;
        }
        let b = ptr::read_volatile(p.add(8));
        free(p.cast());
        b
    }
}

/// True when the server runs in cluster mode. `cluster-enabled` is fixed at startup, so the
/// answer is kept for the life of the process (0: not asked yet, 1: no, 2: yes).
pub fn cluster_enabled() -> bool {
    static CLUSTER: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);
    match CLUSTER.load(Ordering::Relaxed) {
        0 => {}
        known => return known == 2,
    }
    let ctx = DETACHED.load(Ordering::Acquire);
    if ctx.is_null() {
        return false;
    }
    // SAFETY: ctx is the live detached context; the cluster flag reads only server state.
    let flags = unsafe { raw::RedisModule_GetContextFlags.map_or(0, |f| f(ctx)) };
    let on = flags & raw::REDISMODULE_CTX_FLAGS_CLUSTER as c_int != 0;
    CLUSTER.store(if on { 2 } else { 1 }, Ordering::Relaxed);
    on
}

/// The protocol of the connection running the current command: 3 or 2.
pub fn caller_resp(ctx: &Context) -> i64 {
    // SAFETY: ctx is the live context of the running command.
    let flags = unsafe { raw::RedisModule_GetContextFlags.map_or(0, |f| f(ctx.ctx)) };
    if flags & raw::REDISMODULE_CTX_FLAGS_RESP3 as c_int != 0 {
        3
    } else {
        2
    }
}

/// True while the current command runs inside MULTI/EXEC.
pub fn in_exec(ctx: &Context) -> bool {
    // SAFETY: ctx is the live context of the running command.
    let flags = unsafe { raw::RedisModule_GetContextFlags.map_or(0, |f| f(ctx.ctx)) };
    flags & raw::REDISMODULE_CTX_FLAGS_MULTI as c_int != 0
}

/// Sends `r` as the reply of the current command, with the module API's map/set/array calls,
/// which the server turns into flat arrays for RESP2 clients.
pub fn emit(ctx: &Context, r: &Reply) {
    // SAFETY: ctx is the live context of the running command; every buffer passed outlives the
    // call, which copies it.
    unsafe {
        let c = ctx.ctx;
        let len = |n: usize| std::os::raw::c_long::try_from(n).unwrap_or(0);
        match r {
            Reply::Map(pairs) => {
                if let Some(f) = raw::RedisModule_ReplyWithMap {
                    f(c, len(pairs.len()));
                }
                for (k, v) in pairs {
                    emit(ctx, k);
                    emit(ctx, v);
                }
            }
            Reply::Set(items) => {
                if let Some(f) = raw::RedisModule_ReplyWithSet {
                    f(c, len(items.len()));
                }
                items.iter().for_each(|i| emit(ctx, i));
            }
            Reply::Array(items) => {
                if let Some(f) = raw::RedisModule_ReplyWithArray {
                    f(c, len(items.len()));
                }
                items.iter().for_each(|i| emit(ctx, i));
            }
            Reply::Bulk(b) => {
                if let Some(f) = raw::RedisModule_ReplyWithStringBuffer {
                    f(c, b.as_ptr().cast::<c_char>(), b.len());
                }
            }
            Reply::Int(i) => {
                if let Some(f) = raw::RedisModule_ReplyWithLongLong {
                    f(c, *i);
                }
            }
            // Format `txt` in RESP3, a bulk string in RESP2 (module.c RM_ReplyWithVerbatimString).
            Reply::Verbatim(t) => {
                if let Some(f) = raw::RedisModule_ReplyWithVerbatimString {
                    f(c, t.as_ptr().cast::<c_char>(), t.len());
                }
            }
        }
    }
}

/// Runs a command handler behind the panic guard.
pub fn command(
    ctx: &Context,
    args: Vec<RedisString>,
    handler: fn(&Context, Vec<RedisString>) -> redis_module::RedisResult,
) -> redis_module::RedisResult {
    guard("command", || handler(ctx, args))
        .unwrap_or(Err(redis_module::RedisError::Str(crate::errors::INTERNAL)))
}

/// The module's allocator: the server's (so its memory shows in `used_memory`), counted, so
/// that TRACKINFO.STATS can say how much of it is the module's.
pub struct CountingAlloc;

static ALLOCATED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static ALLOCATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
/// Allocations made inside the command filter, and whether it is running now.
static FILTER_ALLOCATIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static IN_FILTER: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

// SAFETY: every call is forwarded unchanged to RedisAlloc, a correct GlobalAlloc; the counter is
// only arithmetic on the sizes.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        // SAFETY: same contract as this function's.
        let p = unsafe { redis_module::alloc::RedisAlloc.alloc(layout) };
        if !p.is_null() {
            ALLOCATED.fetch_add(layout.size(), Ordering::Relaxed);
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            if IN_FILTER.load(Ordering::Relaxed) {
                FILTER_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            }
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        // SAFETY: ptr was allocated by alloc above with this layout.
        unsafe { redis_module::alloc::RedisAlloc.dealloc(ptr, layout) };
        ALLOCATED.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

/// Bytes the module has allocated and not freed.
pub fn module_memory() -> usize {
    ALLOCATED.load(Ordering::Relaxed)
}

/// How many allocations the module has made since the process started.
pub fn module_allocations() -> u64 {
    ALLOCATIONS.load(Ordering::Relaxed)
}

/// How many of them the command filter made: `make bench` reads it around traffic to prove the
/// filter allocates nothing for clients without tracking.
pub fn filter_allocations() -> u64 {
    FILTER_ALLOCATIONS.load(Ordering::Relaxed)
}

unsafe extern "C" fn on_info(ictx: *mut raw::RedisModuleInfoCtx, _for_crash_report: c_int) {
    let ctx = DETACHED.load(Ordering::Acquire);
    if ctx.is_null() {
        return;
    }
    let Some(fields) = guard("INFO", || {
        crate::commands::stats::info_fields(&Context::new(ctx))
    }) else {
        return;
    };
    // SAFETY: ictx is the live INFO context of this callback; every C string passed lives until
    // the call returns, and the API copies it.
    unsafe {
        let (Some(section), Some(int), Some(text)) = (
            raw::RedisModule_InfoAddSection,
            raw::RedisModule_InfoAddFieldLongLong,
            raw::RedisModule_InfoAddFieldCString,
        ) else {
            return;
        };
        // An empty name gives the module's default section, `trackinfo`.
        section(ictx, c"".as_ptr());
        for (name, value) in fields {
            let Ok(name) = CString::new(name) else {
                continue;
            };
            match value {
                crate::commands::stats::Scalar::Int(i) => {
                    int(ictx, name.as_ptr(), i);
                }
                crate::commands::stats::Scalar::Text(t) => {
                    if let Ok(t) = CString::new(t) {
                        text(ictx, name.as_ptr(), t.as_ptr());
                    }
                }
            }
        }
    }
}

/// Replaces the crate's INFO callback with the module's own section.
pub fn register_info(ctx: &Context) {
    // SAFETY: ctx is the OnLoad context; on_info is a 'static function of this library.
    unsafe {
        if let Some(f) = raw::RedisModule_RegisterInfoFunc {
            f(ctx.ctx, Some(on_info));
        }
    }
}

/// Registers the configs `trackinfo.key-table-max-items` and `trackinfo.key-table` with these
/// defaults, then applies the values the server holds for them (config file, `MODULE LOADEX`).
/// Done here rather than by the redis-module crate, whose registration allocates a private-data
/// box per config that nothing frees: 48 bytes lost at every MODULE LOAD.
pub fn register_configs(
    ctx: &Context,
    max_items: i64,
    key_table: bool,
) -> Result<(), &'static str> {
    let ok = raw::REDISMODULE_OK as c_int;
    let flags = raw::REDISMODULE_CONFIG_DEFAULT as std::ffi::c_uint;
    // SAFETY: ctx is the OnLoad context; the names are 'static C strings, which the server
    // copies; the callbacks are 'static functions of this library that use no private data
    // (null), and the server drops them on MODULE UNLOAD.
    unsafe {
        let numeric = raw::RedisModule_RegisterNumericConfig.ok_or("no config API")?;
        let boolean = raw::RedisModule_RegisterBoolConfig.ok_or("no config API")?;
        let load = raw::RedisModule_LoadConfigs.ok_or("no config API")?;
        let rc = numeric(
            ctx.ctx,
            c"key-table-max-items".as_ptr(),
            max_items,
            flags,
            0,
            i64::MAX,
            Some(get_max_items),
            Some(set_max_items),
            None,
            ptr::null_mut(),
        );
        if rc != ok {
            return Err("could not register trackinfo.key-table-max-items");
        }
        let rc = boolean(
            ctx.ctx,
            c"key-table".as_ptr(),
            c_int::from(key_table),
            flags,
            Some(get_key_table),
            Some(set_key_table),
            None,
            ptr::null_mut(),
        );
        if rc != ok {
            return Err("could not register trackinfo.key-table");
        }
        if load(ctx.ctx) != ok {
            return Err("could not load the configs' values");
        }
    }
    Ok(())
}

extern "C" fn get_max_items(_name: *const c_char, _privdata: *mut c_void) -> i64 {
    crate::config::KEY_TABLE_MAX_ITEMS.load(Ordering::Relaxed)
}

extern "C" fn set_max_items(
    _name: *const c_char,
    val: i64,
    _privdata: *mut c_void,
    _err: *mut *mut raw::RedisModuleString,
) -> c_int {
    crate::config::KEY_TABLE_MAX_ITEMS.store(val, Ordering::Relaxed);
    raw::REDISMODULE_OK as c_int
}

extern "C" fn get_key_table(_name: *const c_char, _privdata: *mut c_void) -> c_int {
    c_int::from(crate::config::key_table())
}

extern "C" fn set_key_table(
    _name: *const c_char,
    val: c_int,
    _privdata: *mut c_void,
    _err: *mut *mut raw::RedisModuleString,
) -> c_int {
    let on = val != 0;
    crate::config::KEY_TABLE.store(on, Ordering::Relaxed);
    guard("config change", || hooks::on_key_table_switched(on));
    raw::REDISMODULE_OK as c_int
}

/// What became of one command's `COMMAND DOCS` / `COMMAND INFO` information.
#[derive(Debug, PartialEq, Eq)]
pub enum DocsOutcome {
    Set,
    /// The module has no such command (yet): nothing to describe.
    NoSuchCommand,
    /// The server refused it; the text says why (its log says more).
    Refused(String),
}

/// The layout of the info structs this module passes, as redismodule.h's
/// REDISMODULE_COMMAND_INFO_VERSION. Version 1 is the only one Redis 7.0 to 8.x and Valkey know.
/// The sizes are strides: the server steps through each array by them (module.c
/// moduleCmdArgAt). They are the sizes of the crate's structs, whose RedisModuleCommandArg ends
/// with `display_text` (Redis 7.2): 7.0 checks no size and reads up to `subargs` within each
/// 72-byte element; 7.2+ read `display_text` of every element whatever the size says, so 7.0's
/// 64 bytes would have them read the next element's name as the display text.
static COMMAND_INFO_VERSION: raw::RedisModuleCommandInfoVersion =
    raw::RedisModuleCommandInfoVersion {
        version: 1,
        sizeof_historyentry: std::mem::size_of::<raw::RedisModuleCommandHistoryEntry>(),
        sizeof_keyspec: std::mem::size_of::<raw::RedisModuleCommandKeySpec>(),
        sizeof_arg: std::mem::size_of::<raw::RedisModuleCommandArg>(),
    };

/// The C strings and argument arrays of one command's info. The server copies all of it
/// (module.c RM_SetCommandInfo: zstrdup, moduleCopyCommandArgs), so it only has to outlive
/// the call. Heap buffers do not move when their owners are moved into these vectors.
#[derive(Default)]
struct CInfo {
    strings: Vec<CString>,
    arrays: Vec<Vec<raw::RedisModuleCommandArg>>,
}

impl CInfo {
    fn string(&mut self, s: &str) -> Result<*const c_char, String> {
        let c = CString::new(s).map_err(|_| format!("NUL byte in {s:?}"))?;
        let p = c.as_ptr();
        self.strings.push(c);
        Ok(p)
    }

    /// `args` as a C array ended by an all-zero element; null for no arguments.
    fn args(
        &mut self,
        args: &[crate::commands::docs::Arg],
    ) -> Result<*mut raw::RedisModuleCommandArg, String> {
        use crate::commands::docs::ArgType;
        if args.is_empty() {
            return Ok(ptr::null_mut());
        }
        let mut array = Vec::with_capacity(args.len() + 1);
        for a in args {
            let kind = match a.kind {
                ArgType::String => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_STRING,
                ArgType::Integer => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_INTEGER,
                ArgType::PureToken => {
                    raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_PURE_TOKEN
                }
                ArgType::OneOf => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_ONEOF,
                ArgType::Block => raw::RedisModuleCommandArgType_REDISMODULE_ARG_TYPE_BLOCK,
            };
            let mut flags = raw::REDISMODULE_CMD_ARG_NONE;
            if a.optional {
                flags |= raw::REDISMODULE_CMD_ARG_OPTIONAL;
            }
            if a.multiple {
                flags |= raw::REDISMODULE_CMD_ARG_MULTIPLE;
            }
            array.push(raw::RedisModuleCommandArg {
                name: self.string(a.name)?,
                type_: kind,
                key_spec_index: -1, // no argument is a key
                token: match a.token {
                    Some(t) => self.string(t)?,
                    None => ptr::null(),
                },
                summary: ptr::null(),
                since: ptr::null(),
                flags: c_int::try_from(flags).map_err(|_| "argument flags".to_string())?,
                deprecated_since: ptr::null(),
                subargs: self.args(a.subargs)?,
                display_text: ptr::null(),
            });
        }
        array.push(raw::RedisModuleCommandArg {
            name: ptr::null(),
            type_: 0,
            key_spec_index: 0,
            token: ptr::null(),
            summary: ptr::null(),
            since: ptr::null(),
            flags: 0,
            deprecated_since: ptr::null(),
            subargs: ptr::null_mut(),
            display_text: ptr::null(),
        });
        let p = array.as_mut_ptr();
        self.arrays.push(array);
        Ok(p)
    }
}

/// Gives the server `doc` for its command: what `COMMAND DOCS` shows (summary, since,
/// complexity, arguments) and the arity the server checks before the command runs.
pub fn set_command_docs(ctx: &Context, doc: &crate::commands::docs::CommandDoc) -> DocsOutcome {
    let mut keep = CInfo::default();
    let built = (|| {
        Ok::<_, String>((
            keep.string(doc.name)?,
            raw::RedisModuleCommandInfo {
                version: &COMMAND_INFO_VERSION,
                summary: keep.string(doc.summary)?,
                complexity: keep.string(doc.complexity)?,
                since: keep.string(doc.since)?,
                history: ptr::null_mut(),
                tips: ptr::null(),
                arity: doc.arity,
                key_specs: ptr::null_mut(),
                args: keep.args(doc.args)?,
            },
        ))
    })();
    let (name, info) = match built {
        Ok(b) => b,
        Err(e) => return DocsOutcome::Refused(e),
    };
    // SAFETY: ctx is the OnLoad context, after the commands were created. `name` and every
    // pointer in `info` point into `keep` (or the static version), alive until this function
    // returns; the server copies what it keeps. GetCommand returns null for a command this
    // module did not create, and the command handle is used only here.
    unsafe {
        let (Some(get), Some(set)) = (raw::RedisModule_GetCommand, raw::RedisModule_SetCommandInfo)
        else {
            return DocsOutcome::Refused("this server has no command info API".to_string());
        };
        let command = get(ctx.ctx, name);
        if command.is_null() {
            return DocsOutcome::NoSuchCommand;
        }
        if set(command, &info) != raw::REDISMODULE_OK as c_int {
            return DocsOutcome::Refused(std::io::Error::last_os_error().to_string());
        }
    }
    drop(keep);
    DocsOutcome::Set
}
