//! The table behind the name and alias index, built for the one look-up every `@alias`
//! mention costs. With 100,000 personalities it holds ~200,000 keys, far more than the
//! core's caches and TLB cover, so what a look-up costs is how many memory accesses it
//! waits for one after the other, and how many cache lines it leaves behind.
//!
//! - A general hash map (hashbrown, under `DashMap`) waits for two accesses: its control
//!   bytes, then the bucket they point to. Here a key's slot is found by linear probing
//!   from the slot its hash names, so the CPU loads the tag and the entry at the same time.
//! - An entry is 32 bytes, aligned to 32: a hit reads one cache line, never two, and the
//!   table takes two thirds of the room of 48-byte buckets (~8 MB for 200,000 keys), which
//!   leaves more of the caches and the TLB to everything else.
//! - The one-byte tags sit apart (256 kB for 200,000 keys, which stays in L2), so a miss —
//!   an '@' before a word that is no alias — usually reads no entry at all.
//! - Keys of up to [`INLINE_KEY_BYTES`] bytes (nearly every name and alias) are kept inside
//!   the entry; longer ones in a side list, compared only when the length says they could
//!   match.

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::BuildHasher;

use super::huge_pages::HugeSlice;

/// How many bytes of a key are kept inside its entry: what is left of 32 bytes after an
/// 18-byte value and the length byte. "aria", "the bard" and most names fit; a longer key
/// costs one more access when its length says it could match.
pub(crate) const INLINE_KEY_BYTES: usize = 13;

/// The length byte of an entry whose key is in the side list; the entry's first four key
/// bytes then hold the key's index there.
const LONG_KEY: u8 = u8::MAX;

/// One slot: a value and a key. `repr(C)` and aligned to its size (for the index's
/// 18-byte value), so that no entry straddles two cache lines.
#[derive(Clone, Copy)]
#[repr(C, align(32))]
struct Entry<V> {
    value: V,
    /// The key's length when it is inline, [`LONG_KEY`] when it is in the side list.
    len: u8,
    key: [u8; INLINE_KEY_BYTES],
}

/// An open-addressing hash table from normalized keys to small `Copy` values: linear
/// probing, a one-byte tag per slot, deletion by shifting the following entries back (no
/// tombstones, so a table that sees many removals never slows down).
pub(crate) struct KeyTable<V, S = RandomState> {
    /// One byte per slot: 0 when the slot is empty, else 8 bits of the key's hash (never 0).
    tags: Box<[u8]>,
    /// The entries, at the same index as their tags; an empty slot's entry is meaningless.
    /// On huge pages once large: every hit reads one at random (see `huge_pages`).
    entries: HugeSlice<Entry<V>>,
    /// Keys longer than [`INLINE_KEY_BYTES`], at the index their entry holds; `None` once
    /// freed, and then listed in `free_long` for reuse.
    long_keys: Vec<Option<Box<str>>>,
    free_long: Vec<u32>,
    len: usize,
    /// SipHash with random keys by default, as `HashMap` uses: users choose aliases, and a
    /// table that anybody could fill with colliding keys would make every message slow.
    hasher: S,
}

/// The table is at most this full (numerator over 8) before it doubles: a hit probes
/// about 2.5 slots, whose tags share a cache line.
const MAX_LOAD_EIGHTHS: usize = 7;

/// The smallest table allocated once something is stored.
const MIN_SLOTS: usize = 8;

impl<V: Copy + Default> Default for KeyTable<V> {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl<V: Copy + Default> KeyTable<V> {
    /// An empty table that holds `keys` keys without growing.
    pub(crate) fn with_capacity(keys: usize) -> Self {
        Self::with_capacity_and_hasher(keys, RandomState::new())
    }
}

impl<V: Copy + Default, S: BuildHasher> KeyTable<V, S> {
    /// An empty table that holds `keys` keys without growing, hashing with `hasher`.
    pub(crate) fn with_capacity_and_hasher(keys: usize, hasher: S) -> Self {
        let slots = if keys == 0 { 0 } else { slots_for(keys) };
        Self {
            tags: vec![0; slots].into_boxed_slice(),
            entries: HugeSlice::new(slots, empty_entry()),
            long_keys: Vec::new(),
            free_long: Vec::new(),
            len: 0,
            hasher,
        }
    }

    /// How many keys the table holds.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// True when the table holds no key.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The value of `key`.
    pub(crate) fn get(&self, key: &str) -> Option<V> {
        self.find(key).map(|at| self.entries[at].value)
    }

    /// The value of `key`, inserted as `V::default()` if the key is new.
    pub(crate) fn get_or_insert_default(&mut self, key: &str) -> &mut V {
        let at = match self.find(key) {
            Some(at) => at,
            None => self.insert_new(key, V::default()),
        };
        &mut self.entries[at].value
    }

    /// Lets `change` update the value of `key`, and removes the key when `change` returns
    /// true. Does nothing when the key is absent.
    pub(crate) fn update_or_remove(&mut self, key: &str, change: impl FnOnce(&mut V) -> bool) {
        if let Some(at) = self.find(key) {
            if change(&mut self.entries[at].value) {
                self.remove_at(at);
            }
        }
    }

    /// Every key with its value, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&str, V)> + '_ {
        self.tags
            .iter()
            .zip(self.entries.iter())
            .filter(|(tag, _)| **tag != 0)
            .map(|(_, entry)| (self.key_of(entry), entry.value))
    }

    /// The slot holding `key`. The addresses of the home slot's tag and entry depend only
    /// on the hash, never on a loaded value, so the CPU fetches both at once.
    fn find(&self, key: &str) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let hash = self.hasher.hash_one(key);
        let mask = self.tags.len() - 1;
        let tag = tag_of(hash);
        let mut at = home_of(hash, mask);
        // The table is never full, so an empty slot ends every probe.
        loop {
            let found = self.tags[at];
            if found == 0 {
                return None;
            }
            if found == tag && self.holds(&self.entries[at], key) {
                return Some(at);
            }
            at = (at + 1) & mask;
        }
    }

    /// Whether `entry` holds `key`: the full key is compared, never only its hash.
    fn holds(&self, entry: &Entry<V>, key: &str) -> bool {
        let key = key.as_bytes();
        if key.len() <= INLINE_KEY_BYTES {
            usize::from(entry.len) == key.len() && entry.key[..key.len()] == *key
        } else {
            entry.len == LONG_KEY && self.long_key(entry).as_bytes() == key
        }
    }

    /// The key an entry holds.
    fn key_of<'a>(&'a self, entry: &'a Entry<V>) -> &'a str {
        if entry.len == LONG_KEY {
            return self.long_key(entry);
        }
        let len = usize::from(entry.len).min(INLINE_KEY_BYTES);
        // The bytes were copied whole from a `str`, so they are valid UTF-8: the fallback
        // is unreachable.
        std::str::from_utf8(&entry.key[..len]).unwrap_or_default()
    }

    /// The key of an entry whose key is in the side list ("" if the index were stale,
    /// which `insert_new` and `remove_at` never leave behind).
    fn long_key(&self, entry: &Entry<V>) -> &str {
        self.long_keys
            .get(long_index(entry))
            .and_then(|key| key.as_deref())
            .unwrap_or_default()
    }

    /// Stores a key that `find` didn't find; returns its slot.
    fn insert_new(&mut self, key: &str, value: V) -> usize {
        if (self.len + 1) * 8 > self.tags.len() * MAX_LOAD_EIGHTHS {
            self.grow();
        }
        let mut entry = Entry {
            value,
            len: 0,
            key: [0; INLINE_KEY_BYTES],
        };
        let bytes = key.as_bytes();
        if bytes.len() <= INLINE_KEY_BYTES {
            entry.key[..bytes.len()].copy_from_slice(bytes);
            // At most `INLINE_KEY_BYTES`, which is below `LONG_KEY`.
            entry.len = bytes.len() as u8;
        } else {
            let index = self.store_long(key);
            entry.len = LONG_KEY;
            entry.key[..4].copy_from_slice(&index.to_le_bytes());
        }
        let hash = self.hasher.hash_one(key);
        let at = self.free_slot_for(hash);
        self.tags[at] = tag_of(hash);
        self.entries[at] = entry;
        self.len += 1;
        at
    }

    /// Keeps a long key in the side list, reusing a freed place; returns its index.
    fn store_long(&mut self, key: &str) -> u32 {
        if let Some(index) = self.free_long.pop() {
            if let Some(place) = self.long_keys.get_mut(index as usize) {
                *place = Some(key.into());
                return index;
            }
        }
        self.long_keys.push(Some(key.into()));
        // More than 4 billion long keys would not fit in memory first.
        u32::try_from(self.long_keys.len() - 1).unwrap_or(u32::MAX)
    }

    /// The first empty slot on `hash`'s probe sequence (the table is never full).
    fn free_slot_for(&self, hash: u64) -> usize {
        let mask = self.tags.len() - 1;
        let mut at = home_of(hash, mask);
        while self.tags[at] != 0 {
            at = (at + 1) & mask;
        }
        at
    }

    /// Doubles the table and puts every entry back (long keys keep their index).
    fn grow(&mut self) {
        let new_len = (self.tags.len() * 2).max(MIN_SLOTS);
        let old_tags = std::mem::replace(&mut self.tags, vec![0; new_len].into_boxed_slice());
        let old_entries =
            std::mem::replace(&mut self.entries, HugeSlice::new(new_len, empty_entry()));
        for (_, entry) in old_tags
            .iter()
            .zip(old_entries.iter())
            .filter(|(t, _)| **t != 0)
        {
            let hash = self.hasher.hash_one(self.key_of(entry));
            let at = self.free_slot_for(hash);
            self.tags[at] = tag_of(hash);
            self.entries[at] = *entry;
        }
    }

    /// Empties slot `hole` and moves later entries of the same run back, so that every
    /// key stays reachable from its home slot without crossing an empty one.
    fn remove_at(&mut self, mut hole: usize) {
        let removed = self.entries[hole];
        if removed.len == LONG_KEY {
            let index = long_index(&removed);
            if let Some(place) = self.long_keys.get_mut(index) {
                *place = None;
                // `index` came from a `u32`.
                self.free_long.push(index as u32);
            }
        }
        let mask = self.tags.len() - 1;
        self.tags[hole] = 0;
        self.len -= 1;
        let mut at = (hole + 1) & mask;
        while self.tags[at] != 0 {
            let home = home_of(self.hasher.hash_one(self.key_of(&self.entries[at])), mask);
            // The entry may fill the hole unless its home lies after the hole on the way
            // to where it is now (it would then sit before its home).
            if (at.wrapping_sub(home) & mask) >= (at.wrapping_sub(hole) & mask) {
                self.tags[hole] = self.tags[at];
                self.entries[hole] = self.entries[at];
                self.tags[at] = 0;
                hole = at;
            }
            at = (at + 1) & mask;
        }
    }
}

impl<V: Copy + Default + fmt::Debug, S: BuildHasher> fmt::Debug for KeyTable<V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

fn empty_entry<V: Default>() -> Entry<V> {
    Entry {
        value: V::default(),
        len: 0,
        key: [0; INLINE_KEY_BYTES],
    }
}

/// Where in the side list the key of a [`LONG_KEY`] entry is.
fn long_index<V>(entry: &Entry<V>) -> usize {
    let [a, b, c, d, ..] = entry.key;
    u32::from_le_bytes([a, b, c, d]) as usize
}

/// The slot count (a power of two) that holds `keys` keys below the maximum load.
fn slots_for(keys: usize) -> usize {
    (keys.saturating_mul(8) / MAX_LOAD_EIGHTHS + 1)
        .next_power_of_two()
        .max(MIN_SLOTS)
}

/// The slot a hash starts probing from: its low bits.
fn home_of(hash: u64, mask: usize) -> usize {
    // Truncating is the point: only the low bits pick the slot.
    hash as usize & mask
}

/// The tag of a hash: its top byte, never 0 (which marks an empty slot).
fn tag_of(hash: u64) -> u8 {
    ((hash >> 56) as u8).max(1)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::hash::{BuildHasherDefault, Hasher};

    use proptest::prelude::*;

    use super::*;

    /// Hashes every key to the same value: every key collides with every other.
    #[derive(Default)]
    struct Colliding;

    impl Hasher for Colliding {
        fn finish(&self) -> u64 {
            0xAB00_0000_0000_0005
        }
        fn write(&mut self, _: &[u8]) {}
    }

    type Collide = BuildHasherDefault<Colliding>;

    fn colliding(keys: usize) -> KeyTable<u32, Collide> {
        KeyTable::with_capacity_and_hasher(keys, Collide::default())
    }

    #[test]
    fn an_entry_is_half_a_cache_line() {
        assert_eq!(
            std::mem::size_of::<Entry<crate::cache::profiles::KeyEntry>>(),
            32
        );
        assert_eq!(
            std::mem::align_of::<Entry<crate::cache::profiles::KeyEntry>>(),
            32
        );
    }

    #[test]
    fn insert_get_update_and_remove() {
        let mut table: KeyTable<u32> = KeyTable::default();
        assert!(table.is_empty());
        assert_eq!(table.get("aria"), None);
        *table.get_or_insert_default("aria") = 7;
        *table.get_or_insert_default("the bard") += 1;
        assert_eq!(table.get("aria"), Some(7));
        assert_eq!(table.get("the bard"), Some(1));
        assert_eq!(table.get("ari"), None);
        assert_eq!(table.get("arias"), None);
        assert_eq!(table.len(), 2);
        table.update_or_remove("aria", |v| {
            *v = 8;
            false
        });
        assert_eq!(table.get("aria"), Some(8));
        table.update_or_remove("aria", |_| true);
        assert_eq!(table.get("aria"), None);
        table.update_or_remove("absent", |_| true);
        assert_eq!(table.len(), 1);
        let mut all: Vec<_> = table.iter().collect();
        all.sort();
        assert_eq!(all, [("the bard", 1)]);
    }

    #[test]
    fn keys_longer_than_an_entry_holds_are_compared_in_full() {
        let mut table: KeyTable<u32> = KeyTable::default();
        let inline = "a".repeat(INLINE_KEY_BYTES);
        let long = "a".repeat(INLINE_KEY_BYTES + 1);
        let longer = format!("{long}b");
        *table.get_or_insert_default(&inline) = 1;
        *table.get_or_insert_default(&long) = 2;
        *table.get_or_insert_default(&longer) = 3;
        assert_eq!(table.get(&inline), Some(1));
        assert_eq!(table.get(&long), Some(2));
        assert_eq!(table.get(&longer), Some(3));
        assert_eq!(table.get(&format!("{long}c")), None);
        // A freed long key's place is reused, and the others are unaffected.
        table.update_or_remove(&long, |_| true);
        assert_eq!(table.get(&long), None);
        *table.get_or_insert_default("the bard of avon") = 4;
        assert_eq!(table.long_keys.len(), 2);
        assert_eq!(table.get("the bard of avon"), Some(4));
        assert_eq!(table.get(&longer), Some(3));
        assert_eq!(table.get(&inline), Some(1));
    }

    #[test]
    fn keys_whose_hashes_all_collide_are_told_apart_and_removed_from_any_place() {
        let mut table = colliding(0);
        let keys: Vec<String> = (0..40)
            .map(|i| format!("key{i}{}", "x".repeat(i % 20)))
            .collect();
        for (i, key) in keys.iter().enumerate() {
            *table.get_or_insert_default(key) = i as u32;
        }
        assert_eq!(table.get("key"), None);
        // Remove from the start, the middle and the end of the one long run.
        for i in [0, 20, 39, 1, 21] {
            table.update_or_remove(&keys[i], |_| true);
        }
        for (i, key) in keys.iter().enumerate() {
            let expected = (![0, 20, 39, 1, 21].contains(&i)).then_some(i as u32);
            assert_eq!(table.get(key), expected, "{key}");
        }
        assert_eq!(table.len(), 35);
    }

    #[test]
    fn the_table_grows_and_keeps_every_key() {
        let mut table: KeyTable<u32> = KeyTable::with_capacity(1);
        let before = table.tags.len();
        for i in 0..10_000u32 {
            *table.get_or_insert_default(&format!("alias number {i}")) = i;
        }
        assert!(table.tags.len() > before);
        assert!(table.len() * 8 <= table.tags.len() * MAX_LOAD_EIGHTHS);
        for i in 0..10_000u32 {
            assert_eq!(table.get(&format!("alias number {i}")), Some(i));
        }
        assert_eq!(table.iter().count(), 10_000);
    }

    #[test]
    fn a_table_sized_up_front_does_not_grow() {
        let mut table: KeyTable<u32> = KeyTable::with_capacity(1_000);
        let slots = table.tags.len();
        for i in 0..1_000u32 {
            *table.get_or_insert_default(&i.to_string()) = i;
        }
        assert_eq!(table.tags.len(), slots);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Put(u8, u32),
        Remove(u8),
    }

    /// A few short and long keys, so that runs, collisions of tags and long keys all occur.
    fn key(k: u8) -> String {
        if k % 3 == 0 {
            format!("a long key number {k}")
        } else {
            format!("k{k}")
        }
    }

    fn ops() -> impl Strategy<Value = Vec<Op>> {
        prop::collection::vec(
            prop_oneof![
                (any::<u8>(), any::<u32>()).prop_map(|(k, v)| Op::Put(k % 64, v)),
                any::<u8>().prop_map(|k| Op::Remove(k % 64)),
            ],
            0..300,
        )
    }

    fn check<S: BuildHasher>(
        mut table: KeyTable<u32, S>,
        ops: Vec<Op>,
    ) -> Result<(), TestCaseError> {
        let mut model = HashMap::new();
        for op in ops {
            match op {
                Op::Put(k, v) => {
                    *table.get_or_insert_default(&key(k)) = v;
                    model.insert(key(k), v);
                }
                Op::Remove(k) => {
                    table.update_or_remove(&key(k), |_| true);
                    model.remove(&key(k));
                }
            }
            prop_assert_eq!(table.len(), model.len());
        }
        for k in 0..64 {
            prop_assert_eq!(table.get(&key(k)), model.get(&key(k)).copied());
        }
        let mut all: Vec<(String, u32)> = table.iter().map(|(k, v)| (k.to_owned(), v)).collect();
        all.sort();
        let mut expected: Vec<(String, u32)> = model.into_iter().collect();
        expected.sort();
        prop_assert_eq!(all, expected);
        Ok(())
    }

    proptest! {
        #[test]
        fn behaves_like_a_hash_map(ops in ops()) {
            check(KeyTable::default(), ops)?;
        }

        #[test]
        fn behaves_like_a_hash_map_when_every_hash_collides(ops in ops()) {
            check(colliding(0), ops)?;
        }
    }
}
