//! The module version `MODULE LIST` shows, from Cargo.toml's: the server's integer encoding
//! of `major.minor.patch`, `major * 10000 + minor * 100 + patch` (as Redis's own 7.0.15 is
//! 70015, and RedisJSON's 2.6.1 is 20601).

/// Cargo.toml's version, encoded at compile time.
pub const MODULE_VERSION: i32 = encode(env!("CARGO_PKG_VERSION"));

/// `major * 10000 + minor * 100 + patch` for `major.minor.patch[-pre][+build]`. Fails the
/// build for a version that has no such encoding (a missing part, minor or patch above 99).
pub const fn encode(version: &str) -> i32 {
    let b = version.as_bytes();
    let mut parts = [0i32; 3];
    let mut part = 0;
    let mut digits = 0;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c == b'.' {
            assert!(digits > 0 && part < 2, "version is not major.minor.patch");
            part += 1;
            digits = 0;
        } else if c.is_ascii_digit() {
            parts[part] = parts[part] * 10 + (c - b'0') as i32;
            digits += 1;
            assert!(digits <= 4, "version part too long");
        } else if c == b'-' || c == b'+' {
            break; // pre-release and build metadata have no place in the integer
        } else {
            panic!("version is not major.minor.patch");
        }
        i += 1;
    }
    assert!(part == 2 && digits > 0, "version is not major.minor.patch");
    assert!(
        parts[1] < 100 && parts[2] < 100,
        "minor and patch must be below 100"
    );
    parts[0] * 10000 + parts[1] * 100 + parts[2]
}

#[cfg(test)]
mod tests {
    use super::encode;

    #[test]
    fn versions_encode_as_the_server_shows_them() {
        assert_eq!(encode("0.1.0"), 100);
        assert_eq!(encode("1.0.0"), 10000);
        assert_eq!(encode("2.6.1"), 20601);
        assert_eq!(encode("7.0.15"), 70015);
        assert_eq!(encode("1.2.3-rc.1"), 10203);
        assert_eq!(encode("1.2.3+build.5"), 10203);
    }

    #[test]
    fn the_built_version_is_cargo_tomls() {
        assert_eq!(super::MODULE_VERSION, encode(env!("CARGO_PKG_VERSION")));
    }

    #[test]
    #[should_panic]
    fn a_version_without_patch_has_no_encoding() {
        encode("1.2");
    }

    #[test]
    #[should_panic]
    fn a_minor_of_100_has_no_encoding() {
        encode("1.100.0");
    }
}
