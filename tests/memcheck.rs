//! `make memcheck` runs the integration suite with every server under valgrind's memcheck
//! (`TRACKINFO_VALGRIND=1`); the harness fails a test when a report names the module. These
//! tests prove that check can fail: the report parser on known text, and a real invalid read in
//! the module (the `panic-injection` build's canary) caught on a real server.

mod common;

use std::path::PathBuf;

use common::{servers, under_valgrind, valgrind_module_errors, Server};

const REPORT: &str = "\
==41== Memcheck, a memory error detector
==41== Copyright (C) 2002-2022, and GNU GPL'd, by Julian Seward et al.
==41== Command: valkey-server --port 1
==41== 
==41== Invalid read of size 1
==41==    at 0x4A1B2C3: trackinfo::ffi::memcheck_canary (ffi.rs:420)
==41==    by 0x4A1B000: trackinfo::commands::info::client (info.rs:31)
==41==    by 0x1F0000: call (server.c:3800)
==41==  Address 0x5b8f048 is 0 bytes after a block of size 8 alloc'd
==41== 
==41== Conditional jump or move depends on uninitialised value(s)
==41==    at 0x1E0000: dictFind (dict.c:700)
==41==    by 0x1F0000: call (server.c:3800)
==41== 
==41== HEAP SUMMARY:
==41==     in use at exit: 1,024 bytes in 3 blocks
==41== 
==41== 64 bytes in 1 blocks are possibly lost in loss record 1 of 3
==41==    at 0x48407B4: malloc (vg_replace_malloc.c:381)
==41==    by 0x4A1C000: trackinfo::hooks::install (hooks.rs:200)
==41== 
==41== 16 bytes in 1 blocks are definitely lost in loss record 2 of 3
==41==    at 0x48407B4: malloc (vg_replace_malloc.c:381)
==41==    by 0x4A1C100: <alloc::vec::Vec<T> as Clone>::clone (in /w/target/debug/libtrackinfo.so)
==41== 
==41== 32 bytes in 1 blocks are definitely lost in loss record 3 of 3
==41==    at 0x48407B4: malloc (vg_replace_malloc.c:381)
==41==    by 0x1D0000: sdsnewlen (sds.c:100)
==41== 
==41== ERROR SUMMARY: 4 errors from 4 contexts (suppressed: 0 from 0)
";

#[test]
fn the_report_check_counts_only_errors_whose_stack_names_the_module() {
    let errors = valgrind_module_errors(REPORT);
    assert_eq!(errors.len(), 2, "{errors:#?}");
    assert!(
        errors[0].starts_with("Invalid read of size 1"),
        "{}",
        errors[0]
    );
    assert!(errors[1].starts_with("16 bytes in 1 blocks are definitely lost"));
    assert!(valgrind_module_errors("==1== ERROR SUMMARY: 0 errors from 0 contexts").is_empty());
}

fn canary_module() -> Option<PathBuf> {
    match std::env::var("TRACKINFO_PANIC_MODULE") {
        Ok(p) if !p.is_empty() => Some(PathBuf::from(p)),
        _ => {
            assert!(
                !under_valgrind(),
                "make memcheck must set TRACKINFO_PANIC_MODULE (the canary build)"
            );
            None
        }
    }
}

#[test]
fn memcheck_catches_an_invalid_read_inside_the_module() {
    if !under_valgrind() {
        println!("not under valgrind: this canary runs in `make memcheck`");
        return;
    }
    let Some(module) = canary_module() else {
        return;
    };
    for bin in servers() {
        let server = Server::start(&bin, Some(&module));
        let d = server.describe();
        let mut c = server.conn_proto(2);
        assert_eq!(
            c.cmd(&["TRACKINFO.CLIENT", "test-invalid-read"]).int(),
            Some(0)
        );
        drop(c);
        let m = server
            .stop_for_memcheck()
            .unwrap_or_else(|| panic!("no valgrind report for {d}"));
        assert!(
            m.module_errors
                .iter()
                .any(|e| e.starts_with("Invalid read") && e.contains("memcheck_canary")),
            "valgrind must report the canary's invalid read on {d} ({}): {:#?}",
            m.report.display(),
            m.module_errors
        );
        let _ = std::fs::remove_dir_all(m.report.parent().unwrap_or(&m.report));
    }
}
