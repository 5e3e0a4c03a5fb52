//! What the seeded randomized tests share: the PRNG and the seed/steps settings.

/// Steps per server when `TRACKINFO_FUZZ_STEPS` is not set.
pub const DEFAULT_STEPS: usize = 5000;

/// splitmix64: small, seedable, good enough to pick actions.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    /// `n` different numbers below `limit`.
    pub fn distinct(&mut self, n: usize, limit: usize) -> Vec<usize> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            let k = self.below(limit);
            if !out.contains(&k) {
                out.push(k);
            }
        }
        out
    }
}

/// `TRACKINFO_FUZZ_SEED`, or one from the clock.
pub fn seed() -> u64 {
    match std::env::var("TRACKINFO_FUZZ_SEED") {
        Ok(s) if !s.is_empty() => s
            .parse()
            .unwrap_or_else(|_| panic!("TRACKINFO_FUZZ_SEED={s} is not a u64")),
        _ => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
    }
}

/// `TRACKINFO_FUZZ_STEPS`, or DEFAULT_STEPS.
pub fn steps() -> usize {
    match std::env::var("TRACKINFO_FUZZ_STEPS") {
        Ok(s) if !s.is_empty() => s
            .parse()
            .unwrap_or_else(|_| panic!("TRACKINFO_FUZZ_STEPS={s} is not a number")),
        _ => DEFAULT_STEPS,
    }
}
