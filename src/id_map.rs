//! Maps keyed by ids the library hands out itself (handler registrations, operations, invocation
//! ids): counters, never chosen by a peer, so they need no protection against crafted keys and
//! can skip SipHash, which cost more than the rest of a handler call's bookkeeping.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

pub(crate) type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

/// Fibonacci hashing: one multiplication by 2^64 / φ spreads consecutive ids over the high bits,
/// which the table uses.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

const PHI: u64 = 0x9E37_79B9_7F4A_7C15;

impl Hasher for IdHasher {
    fn write_u64(&mut self, id: u64) {
        self.0 = (self.0 ^ id).wrapping_mul(PHI);
    }

    /// Only `u64` keys are meant; anything else still hashes, a byte at a time.
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(self.0.rotate_left(8) ^ u64::from(b));
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_ids_differ_in_the_high_bits_the_table_uses() {
        let top7 = |id: u64| {
            let mut h = IdHasher::default();
            h.write_u64(id);
            h.finish() >> 57
        };
        let distinct: std::collections::HashSet<u64> = (1..=64).map(top7).collect();
        assert!(distinct.len() > 32, "only {} distinct tags for 64 ids", distinct.len());
    }

    #[test]
    fn an_id_map_finds_what_it_holds() {
        let mut map = IdMap::default();
        for id in 0..10_000u64 {
            map.insert(id, id * 2);
        }
        assert!((0..10_000u64).all(|id| map.get(&id) == Some(&(id * 2))));
        assert_eq!(map.get(&10_000), None);
    }
}
