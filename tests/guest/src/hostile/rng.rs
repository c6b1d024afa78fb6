//! The attack's only source of choice: Marsaglia's xorshift64 ("Xorshift RNGs", Journal of
//! Statistical Software 8(14), 2003, the 13/7/17 triple), so that a seed printed at the start
//! replays the same run exactly.

/// A xorshift64 generator. Never zero: zero is its only fixed point.
pub struct Rng(u64);

impl Rng {
    /// A generator starting from `seed` (0 becomes a fixed odd constant).
    pub const fn new(seed: u64) -> Self {
        Self(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }

    /// The next 64 random bits.
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// A number in `0..bound` (`bound` > 0; the tiny modulo bias does not matter here).
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }

    /// True with probability `1 / n`.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.below(n) == 0
    }

    /// One element of `items` (not empty).
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}
