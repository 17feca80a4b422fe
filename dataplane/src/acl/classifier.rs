//! First-match classification of packets against one ordered rule list, at a cost that
//! stays nearly flat as the list grows to a thousand rules.
//!
//! The method is the bit-vector search of Lakshman and Stiliadis (SIGCOMM 1998) with the
//! aggregated summaries of Baboescu and Varghese (SIGCOMM 2001):
//!
//! - Each of the five fields (source and destination address, protocol, source and
//!   destination port) is cut into elementary intervals: the boundaries of every rule's
//!   range on that field, sorted, split the key space into intervals inside which every key
//!   matches exactly the same rules.
//! - Each interval maps to a row: a bitmap over the rules, bit `i` set when rule `i` (in
//!   list order) matches keys of that interval. Identical rows are stored once.
//! - A lookup finds the row of each field (a bucket table narrows it to the few intervals
//!   of one slice of the key space, usually one whose row the table holds, and a short
//!   search picks among them; the protocol through a direct 256-entry table), ANDs the
//!   five rows and takes the lowest set bit: the first matching rule.
//! - Up to 256 rules, rows are four words, ANDed whole in a loop of fixed length.
//! - Longer lists' rows carry a summary bitmap, bit `w` set when word `w` of the row is
//!   non-zero. The lookup ANDs the five summaries first and reads only the words where all
//!   five rows have a bit, so a miss or an early hit costs a few words, not all of them.
//!
//! The rows live in one contiguous arena. Compilation allocates; lookup
//! ([`Classifier::classify`]) neither allocates nor panics.
//!
//! Memory grows with rules x intervals (at most 2 x rules + 1 intervals per field, fewer
//! after deduplication); [`Classifier::heap_bytes`] reports it. [`LinearScan`] is the
//! obvious alternative, a walk over the rules in order, kept as the reference the
//! classifier is tested and benchmarked against.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use hashbrown::HashMap;

use super::{AclRule, FlowV4, FlowV6, IpPrefix};

mod sealed {
    /// An unsigned key type whose value space the classifier cuts into intervals.
    pub trait Key: Copy + Ord {
        /// The smallest key.
        const MIN: Self;
        /// The largest key.
        const MAX: Self;
        /// The key after `self`, None for the largest.
        fn successor(self) -> Option<Self>;
        /// `(self - base) >> shift` (0 when `self` is below `base`), saturated to `usize`.
        /// `shift` is below the key's width.
        fn bucket(self, base: Self, shift: u32) -> usize;
        /// `base + (bucket << shift)`, None past the largest key.
        fn bucket_start(base: Self, bucket: usize, shift: u32) -> Option<Self>;
    }

    macro_rules! key {
        ($($t:ty),*) => {$(
            impl Key for $t {
                const MIN: Self = <$t>::MIN;
                const MAX: Self = <$t>::MAX;
                fn successor(self) -> Option<Self> {
                    self.checked_add(1)
                }
                #[inline]
                fn bucket(self, base: Self, shift: u32) -> usize {
                    // The mask states what the bucket table ensures, in place of
                    // checked_shr's test; for 32-bit and wider keys it compiles to
                    // nothing, x86 masking a shift count the same way.
                    let offset = self.saturating_sub(base) >> (shift & (<$t>::BITS - 1));
                    usize::try_from(offset).unwrap_or(usize::MAX)
                }
                fn bucket_start(base: Self, bucket: usize, shift: u32) -> Option<Self> {
                    let bucket = <$t>::try_from(bucket).ok()?;
                    let offset = bucket.checked_mul(<$t>::checked_pow(2, shift)?)?;
                    base.checked_add(offset)
                }
            }
        )*};
    }
    key!(u8, u16, u32, u128);
}

use sealed::Key;

/// An address of one family as an unsigned integer: `u32` for IPv4, `u128` for IPv6.
pub trait Address: Key + fmt::Debug {
    /// The addresses `prefix` covers, as an inclusive range, or None when `prefix` belongs
    /// to the other family. A length above the family's width is taken as a host prefix.
    fn prefix_range(prefix: &IpPrefix) -> Option<(Self, Self)>;
}

impl Address for u32 {
    fn prefix_range(prefix: &IpPrefix) -> Option<(u32, u32)> {
        match *prefix {
            IpPrefix::V4 { addr, len } => {
                let host_bits = u32::MAX.checked_shr(u32::from(len)).unwrap_or(0);
                let first = u32::from(addr) & !host_bits;
                Some((first, first | host_bits))
            }
            IpPrefix::V6 { .. } => None,
        }
    }
}

impl Address for u128 {
    fn prefix_range(prefix: &IpPrefix) -> Option<(u128, u128)> {
        match *prefix {
            IpPrefix::V6 { addr, len } => {
                let host_bits = u128::MAX.checked_shr(u32::from(len)).unwrap_or(0);
                let first = u128::from(addr) & !host_bits;
                Some((first, first | host_bits))
            }
            IpPrefix::V4 { .. } => None,
        }
    }
}

/// One rule reduced to an inclusive range per field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RuleRanges<A> {
    src: (A, A),
    dst: (A, A),
    protocol: (u8, u8),
    src_ports: (u16, u16),
    dst_ports: (u16, u16),
}

impl<A: Address> RuleRanges<A> {
    /// The ranges of `rule`, or None when the rule can never match a packet of family `A`
    /// (a prefix of the other family, or an empty port range).
    fn of(rule: &AclRule) -> Option<Self> {
        let address_range = |prefix: &Option<IpPrefix>| match prefix {
            None => Some((A::MIN, A::MAX)),
            Some(p) => A::prefix_range(p),
        };
        let port_range = |r: super::PortRange| (r.first <= r.last).then_some((r.first, r.last));
        Some(RuleRanges {
            src: address_range(&rule.src)?,
            dst: address_range(&rule.dst)?,
            protocol: rule.protocol.map_or((0, u8::MAX), |p| (p, p)),
            src_ports: port_range(rule.src_ports)?,
            dst_ports: port_range(rule.dst_ports)?,
        })
    }

    #[inline]
    fn matches(&self, src: A, dst: A, protocol: u8, src_port: u16, dst_port: u16) -> bool {
        fn within<K: Ord>(range: &(K, K), key: K) -> bool {
            range.0 <= key && key <= range.1
        }
        within(&self.src, src)
            && within(&self.dst, dst)
            && within(&self.protocol, protocol)
            && within(&self.src_ports, src_port)
            && within(&self.dst_ports, dst_port)
    }
}

/// Most buckets a field's bucket table gets (32 KB).
const MAX_BUCKETS: usize = 4096;

/// Bitmap words of a narrow row.
const NARROW_WORDS: usize = 4;

/// Most rules whose rows are narrow: read whole, without a summary.
const NARROW_RULES: usize = NARROW_WORDS * 64;

/// Most intervals after a bucket's first that a lookup compares one by one; a bucket
/// spanning more is searched by halves.
const LINEAR_SEARCH_MAX: usize = 4;

/// One field's elementary intervals and the row of each.
///
/// A lookup first reads a bucket table that names the intervals one slice of the key space
/// overlaps. Most slices lie inside one interval, which is then the answer; otherwise the
/// few intervals named are compared one by one, or searched by halves when there are many.
/// The slices are equal, and they span the keys from the lowest boundary to the highest,
/// not the whole key space, so rules crowded into one corner of it (10.0.0.0/8, the ports
/// below 1024) still spread over many buckets. With about two buckets per interval a
/// lookup usually has no candidate or one left instead of a few hundred; a slice crowded
/// with boundaries costs no more than a search over the whole list.
#[derive(Clone)]
struct Field<K> {
    /// First key of each interval, ascending; `starts[0]` is the smallest key.
    starts: Vec<K>,
    /// Arena offset of each interval's row.
    rows: Vec<u32>,
    /// The lowest boundary above the smallest key (`starts[1]`), or the smallest key.
    base: K,
    /// Bucket `b` holds the keys from `base + (b << shift)` (bucket 0 also those below
    /// `base`; the last bucket also those above its slice).
    shift: u32,
    /// Per bucket, the first and the last interval its keys can lie in; or, for a bucket
    /// inside one interval, that interval and its row tagged with [`ONE_ROW`], so that the
    /// lookup has its answer without reading `rows`.
    buckets: Vec<[u32; 2]>,
}

/// Tags the second word of a bucket whose keys all lie in one interval: the rest of the
/// word is that interval's row. Rows fit in 31 bits; an arena larger than that (16 GB)
/// leaves its buckets untagged, only slower.
const ONE_ROW: u32 = 1 << 31;

impl<K: Key> Field<K> {
    /// Cuts the key space at the edges of `ranges`.
    fn starts_of(ranges: impl Iterator<Item = (K, K)>) -> Vec<K> {
        let mut starts = vec![K::MIN];
        for (first, last) in ranges {
            starts.push(first);
            starts.extend(last.successor());
        }
        starts.sort_unstable();
        starts.dedup();
        starts
    }

    /// The interval of `starts` holding `key`, by binary search: the last start <= key
    /// (`starts` is not empty and `starts[0]` <= key, so there is one). The standard
    /// library's search runs log2(len) steps whatever the key and selects each step's half
    /// with a conditional move, not a branch, which a random key would mispredict half the
    /// time.
    #[inline]
    fn interval_of(starts: &[K], key: K) -> usize {
        starts
            .partition_point(|start| *start <= key)
            .saturating_sub(1)
    }

    /// Builds the field from the range each rule (in list order) covers on it.
    fn build(ranges: &[(K, K)], arena: &mut ArenaBuilder) -> Field<K> {
        let starts = Self::starts_of(ranges.iter().copied());
        let words = arena.words;
        let mut bitmaps = vec![0u64; starts.len() * words];
        for (rule, &(first, last)) in ranges.iter().enumerate() {
            let (word, bit) = (rule / 64, 1u64 << (rule % 64));
            let first = Self::interval_of(&starts, first);
            let last = Self::interval_of(&starts, last);
            for interval in first..=last {
                bitmaps[interval * words + word] |= bit;
            }
        }
        let rows: Vec<u32> = bitmaps
            .chunks_exact(words)
            .map(|bits| arena.intern(bits))
            .collect();
        let (base, shift, mut buckets) = Self::bucket_table(&starts);
        for bucket in &mut buckets {
            if let [first, last] = *bucket
                && first == last
                && let Some(&row) = rows.get(first as usize)
                && row < ONE_ROW
            {
                bucket[1] = row | ONE_ROW;
            }
        }
        Field {
            starts,
            rows,
            base,
            shift,
            buckets,
        }
    }

    /// `base`, `shift` and `buckets` for `starts` (see [`Field`]).
    fn bucket_table(starts: &[K]) -> (K, u32, Vec<[u32; 2]>) {
        let (base, last) = match starts {
            [_, first, .., last] => (*first, *last),
            [_, only] => (*only, *only),
            _ => (K::MIN, K::MIN),
        };
        let wanted = (starts.len() * 2).next_power_of_two().min(MAX_BUCKETS);
        let mut shift = 0;
        while last.bucket(base, shift) >= wanted {
            shift += 1;
        }
        let count = last.bucket(base, shift) + 1;
        let last_interval = starts.len().saturating_sub(1);
        // The interval holding each bucket's first key; bucket 0 also holds the keys below
        // `base`, and the last bucket those above `last`.
        let firsts: Vec<usize> = (0..count)
            .map(|b| match (b, K::bucket_start(base, b, shift)) {
                (0, _) => 0,
                (_, Some(first_key)) => Self::interval_of(starts, first_key),
                (_, None) => last_interval,
            })
            .collect();
        let as_u32 = |interval: usize| u32::try_from(interval).unwrap_or(u32::MAX);
        let buckets = firsts
            .iter()
            .enumerate()
            .map(|(b, &first)| {
                // The interval of the bucket's last key: the one holding the next bucket's
                // first key, or the one before it when an interval starts right there.
                let last = match (firsts.get(b + 1), K::bucket_start(base, b + 1, shift)) {
                    (Some(&next), Some(next_key)) if next > first && starts[next] == next_key => {
                        next - 1
                    }
                    (Some(&next), _) => next,
                    (None, _) => last_interval,
                };
                [as_u32(first), as_u32(last)]
            })
            .collect();
        (base, shift, buckets)
    }

    /// The bucket entry of `key` (see [`Field::buckets`]); keys above the last slice belong
    /// to the last bucket.
    #[inline(always)]
    fn bucket_of(&self, key: K) -> Option<[u32; 2]> {
        let bucket = key.bucket(self.base, self.shift);
        self.buckets.get(bucket).or(self.buckets.last()).copied()
    }

    /// The interval holding `key`: the bucket table, then, when the key's bucket spans more
    /// than one interval, [`Field::search`].
    #[cfg(test)]
    fn find(&self, key: K) -> usize {
        match self.bucket_of(key) {
            Some([first, tagged]) if tagged & ONE_ROW != 0 => first as usize,
            Some([first, last]) => self.search(first as usize, last as usize, key),
            None => Self::interval_of(&self.starts, key),
        }
    }

    /// The row of the interval holding `key`. Most buckets lie inside one interval (there
    /// are about two buckets per interval) and give the row at once.
    #[inline(always)]
    fn row_of(&self, key: K) -> Option<u32> {
        let interval = match self.bucket_of(key) {
            Some([_, tagged]) if tagged & ONE_ROW != 0 => return Some(tagged & !ONE_ROW),
            Some([first, last]) => self.search(first as usize, last as usize, key),
            None => Self::interval_of(&self.starts, key),
        };
        self.rows.get(interval).copied()
    }

    /// The interval holding `key` among `first..=last`, its bucket's: one by one up to
    /// [`LINEAR_SEARCH_MAX`] of them after the first, by halves beyond.
    #[inline(always)]
    fn search(&self, first: usize, last: usize, key: K) -> usize {
        if first == last {
            return first;
        }
        // starts[first] <= key: the bucket's first interval holds its first key, and bucket
        // 0 the keys below it. So the interval is `first` plus the count of later starts
        // that are <= key: counted one by one when there are a few (a binary search's
        // setup costs more than that), by binary search otherwise.
        match self.starts.get(first + 1..=last) {
            Some(later) if later.len() <= LINEAR_SEARCH_MAX => {
                first + later.iter().take_while(|start| **start <= key).count()
            }
            Some(later) => first + later.partition_point(|start| *start <= key),
            None => Self::interval_of(&self.starts, key),
        }
    }

    fn heap_bytes(&self) -> usize {
        self.starts.capacity() * size_of::<K>()
            + self.rows.capacity() * size_of::<u32>()
            + self.buckets.capacity() * size_of::<[u32; 2]>()
    }
}

/// Collects distinct rows into one arena.
///
/// Lists of up to [`NARROW_RULES`] rules get narrow rows: [`NARROW_WORDS`] bitmap words
/// each, read whole by the lookup, in their own arena. Longer lists get rows of one
/// summary word per 64 bitmap words, then the bitmap words (see the module's comment).
struct ArenaBuilder {
    /// Bitmap words per row: at least one bit per rule.
    words: usize,
    /// Summary words per row: one bit per bitmap word; 0 for narrow rows.
    summary_words: usize,
    /// The rows of a long list.
    arena: Vec<u64>,
    /// The rows of a short list.
    narrow: Vec<[u64; NARROW_WORDS]>,
    by_bits: HashMap<Vec<u64>, u32>,
}

impl ArenaBuilder {
    fn new(rules: usize) -> ArenaBuilder {
        let (words, summary_words) = if rules <= NARROW_RULES {
            (NARROW_WORDS, 0)
        } else {
            let words = rules.div_ceil(64);
            (words, words.div_ceil(64))
        };
        ArenaBuilder {
            words,
            summary_words,
            arena: Vec::new(),
            narrow: Vec::new(),
            by_bits: HashMap::new(),
        }
    }

    /// The row `bits` (`words` long): its arena offset, or its index among the narrow rows.
    /// A row is appended only if no identical one exists.
    fn intern(&mut self, bits: &[u64]) -> u32 {
        if let Some(&offset) = self.by_bits.get(bits) {
            return offset;
        }
        let offset = if let Ok(row) = <[u64; NARROW_WORDS]>::try_from(bits)
            && self.summary_words == 0
        {
            self.narrow.push(row);
            self.narrow.len() - 1
        } else {
            let offset = self.arena.len();
            for group in bits.chunks(64).take(self.summary_words) {
                let summary = group
                    .iter()
                    .enumerate()
                    .filter(|(_, word)| **word != 0)
                    .fold(0u64, |summary, (i, _)| summary | 1 << i);
                self.arena.push(summary);
            }
            self.arena.extend_from_slice(bits);
            offset
        };
        let offset = u32::try_from(offset).unwrap_or(u32::MAX);
        self.by_bits.insert(bits.to_vec(), offset);
        offset
    }
}

/// A compiled rule list for one address family `A` (`u32`: IPv4, `u128`: IPv6).
///
/// Rules whose prefixes belong to the other family, and rules with an empty port range,
/// are left out: they never match a packet of this family.
#[derive(Clone)]
pub struct Classifier<A> {
    src: Field<A>,
    dst: Field<A>,
    /// The row of each protocol number (256 entries).
    protocol: Vec<u32>,
    src_port: Field<u16>,
    dst_port: Field<u16>,
    /// Up to [`NARROW_RULES`] rules: the rows, each indexed by its number. Empty otherwise.
    narrow: Vec<[u64; NARROW_WORDS]>,
    /// More rules: per row, `summary_words` summary words, then `words` bitmap words, each
    /// row named by its offset. Empty otherwise.
    arena: Vec<u64>,
    words: usize,
    summary_words: usize,
    /// Original index of the rule at each bit position.
    rule_index: Vec<u32>,
}

impl<A: Address> Classifier<A> {
    /// Compiles `rules` in the order given (earlier rules win); each rule comes with the
    /// index [`classify`](Classifier::classify) reports for it.
    pub fn compile(rules: &[(u32, AclRule)]) -> Self {
        let (rule_index, ranges): (Vec<u32>, Vec<RuleRanges<A>>) = rules
            .iter()
            .filter_map(|(index, rule)| Some((*index, RuleRanges::of(rule)?)))
            .unzip();
        let mut arena = ArenaBuilder::new(ranges.len());
        let field = |pick: fn(&RuleRanges<A>) -> (A, A), arena: &mut ArenaBuilder| {
            let field_ranges: Vec<(A, A)> = ranges.iter().map(pick).collect();
            Field::build(&field_ranges, arena)
        };
        let src = field(|r| r.src, &mut arena);
        let dst = field(|r| r.dst, &mut arena);
        let protocol_ranges: Vec<(u8, u8)> = ranges.iter().map(|r| r.protocol).collect();
        let protocol_field = Field::build(&protocol_ranges, &mut arena);
        // Without rules every lookup misses anyway: an empty table saves its kilobyte.
        let protocol = if ranges.is_empty() {
            Vec::new()
        } else {
            (0..=u8::MAX)
                .map(|p| protocol_field.row_of(p).unwrap_or(0))
                .collect()
        };
        let src_ports: Vec<(u16, u16)> = ranges.iter().map(|r| r.src_ports).collect();
        let src_port = Field::build(&src_ports, &mut arena);
        let dst_ports: Vec<(u16, u16)> = ranges.iter().map(|r| r.dst_ports).collect();
        let dst_port = Field::build(&dst_ports, &mut arena);

        let mut arena_words = arena.arena;
        arena_words.shrink_to_fit();
        let mut narrow = arena.narrow;
        narrow.shrink_to_fit();
        Classifier {
            src,
            dst,
            protocol,
            src_port,
            dst_port,
            narrow,
            arena: arena_words,
            words: arena.words,
            summary_words: arena.summary_words,
            rule_index,
        }
    }

    /// Number of rules compiled in (those that can match a packet of this family).
    pub fn rules(&self) -> usize {
        self.rule_index.len()
    }

    /// Bytes this classifier holds on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.src.heap_bytes()
            + self.dst.heap_bytes()
            + self.src_port.heap_bytes()
            + self.dst_port.heap_bytes()
            + self.protocol.capacity() * size_of::<u32>()
            + self.narrow.capacity() * size_of::<[u64; NARROW_WORDS]>()
            + self.arena.capacity() * size_of::<u64>()
            + self.rule_index.capacity() * size_of::<u32>()
    }

    /// The original index of the first rule matching the five keys.
    ///
    /// Narrow rows (see [`ArenaBuilder`]) are read whole. Wider ones are `summary_words`
    /// summary words then `words` bitmap words, at the arena offset its field gave;
    /// compilation makes every offset plus that stride fit in the arena, so the reads below
    /// never take their `unwrap_or` (which only keeps a lookup from panicking).
    #[inline]
    fn first_match(
        &self,
        src: A,
        dst: A,
        protocol: u8,
        src_port: u16,
        dst_port: u16,
    ) -> Option<u32> {
        let [a, b, c, d, e] = [
            self.src.row_of(src)?,
            self.dst.row_of(dst)?,
            *self.protocol.get(usize::from(protocol))?,
            self.src_port.row_of(src_port)?,
            self.dst_port.row_of(dst_port)?,
        ]
        .map(|offset| offset as usize);
        if self.summary_words == 0 {
            self.first_match_narrow([a, b, c, d, e])
        } else {
            self.first_match_wide([a, b, c, d, e])
        }
    }

    /// [`Classifier::first_match`] over the wide rows at the arena offsets `rows`, through
    /// their summaries. Out of line: a long list's lookup reads many words anyway, and the
    /// short lists' path keeps its registers.
    #[inline(never)]
    fn first_match_wide(&self, rows: [usize; 5]) -> Option<u32> {
        let [a, b, c, d, e] = rows;
        let arena = self.arena.as_slice();
        let word = |i: usize| arena.get(i).copied().unwrap_or(0);
        // The AND over the five rows of the word `at` words into each row (written out: a
        // fold over an array of the rows compiled to a loop through the stack).
        let all_rows =
            |at: usize| word(a + at) & word(b + at) & word(c + at) & word(d + at) & word(e + at);
        for group in 0..self.summary_words {
            // Bitmap words of this group of 64 in which every field has some rule.
            let mut candidates = all_rows(group);
            while candidates != 0 {
                let word_index = group * 64 + candidates.trailing_zeros() as usize;
                let matching = all_rows(self.summary_words + word_index);
                if matching != 0 {
                    let position = word_index * 64 + matching.trailing_zeros() as usize;
                    return self.rule_index.get(position).copied();
                }
                candidates &= candidates - 1;
            }
        }
        None
    }
}

impl<A> Classifier<A> {
    /// [`Classifier::first_match`] over the narrow rows numbered `rows`: the lowest bit set
    /// in all five. The words are ANDed in order and the search ends at the first with a
    /// bit, which for a list that ends in a catch-all rule is at the latest the word of
    /// that rule.
    #[inline(always)]
    fn first_match_narrow(&self, rows: [usize; 5]) -> Option<u32> {
        let row = |number: usize| self.narrow.get(number);
        let [a, b, c, d, e] = rows;
        let (a, b, c, d, e) = (row(a)?, row(b)?, row(c)?, row(d)?, row(e)?);
        for w in 0..NARROW_WORDS {
            let matching = a[w] & b[w] & c[w] & d[w] & e[w];
            if matching != 0 {
                let position = w * 64 + matching.trailing_zeros() as usize;
                return self.rule_index.get(position).copied();
            }
        }
        None
    }
}

impl Classifier<u32> {
    /// The original index of the first rule matching `flow`, None if no rule matches.
    #[inline]
    pub fn classify(&self, flow: &FlowV4) -> Option<u32> {
        self.first_match(
            flow.src,
            flow.dst,
            flow.protocol,
            flow.src_port,
            flow.dst_port,
        )
    }
}

impl Classifier<u128> {
    /// The original index of the first rule matching `flow`, None if no rule matches.
    #[inline]
    pub fn classify(&self, flow: &FlowV6) -> Option<u32> {
        self.first_match(
            flow.src,
            flow.dst,
            flow.protocol,
            flow.src_port,
            flow.dst_port,
        )
    }
}

impl<A: Address> fmt::Debug for Classifier<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stride = self.summary_words + self.words;
        f.debug_struct("Classifier")
            .field("rules", &self.rules())
            .field("src_intervals", &self.src.starts.len())
            .field("dst_intervals", &self.dst.starts.len())
            .field("src_port_intervals", &self.src_port.starts.len())
            .field("dst_port_intervals", &self.dst_port.starts.len())
            .field(
                "distinct_rows",
                &(self.narrow.len() + self.arena.len() / stride),
            )
            .field("heap_bytes", &self.heap_bytes())
            .finish()
    }
}

/// The same rules checked one after the other: the reference [`Classifier`] is tested and
/// benchmarked against. Cost grows linearly with the position of the first match.
#[derive(Debug, Clone)]
pub struct LinearScan<A> {
    rules: Vec<(u32, RuleRanges<A>)>,
}

impl<A: Address> LinearScan<A> {
    /// Prepares `rules` in the order given, as [`Classifier::compile`] does.
    pub fn compile(rules: &[(u32, AclRule)]) -> Self {
        LinearScan {
            rules: rules
                .iter()
                .filter_map(|(index, rule)| Some((*index, RuleRanges::of(rule)?)))
                .collect(),
        }
    }

    /// Bytes this scan holds on the heap.
    pub fn heap_bytes(&self) -> usize {
        self.rules.capacity() * size_of::<(u32, RuleRanges<A>)>()
    }

    #[inline]
    fn first_match(
        &self,
        src: A,
        dst: A,
        protocol: u8,
        src_port: u16,
        dst_port: u16,
    ) -> Option<u32> {
        self.rules
            .iter()
            .find(|(_, rule)| rule.matches(src, dst, protocol, src_port, dst_port))
            .map(|(index, _)| *index)
    }
}

impl LinearScan<u32> {
    /// The original index of the first rule matching `flow`, None if no rule matches.
    #[inline]
    pub fn classify(&self, flow: &FlowV4) -> Option<u32> {
        self.first_match(
            flow.src,
            flow.dst,
            flow.protocol,
            flow.src_port,
            flow.dst_port,
        )
    }
}

impl LinearScan<u128> {
    /// The original index of the first rule matching `flow`, None if no rule matches.
    #[inline]
    pub fn classify(&self, flow: &FlowV6) -> Option<u32> {
        self.first_match(
            flow.src,
            flow.dst,
            flow.protocol,
            flow.src_port,
            flow.dst_port,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acl::{AclAction, PortRange};
    use core::net::{Ipv4Addr, Ipv6Addr};
    use proptest::prelude::*;

    fn v4(addr: u32, len: u8) -> IpPrefix {
        IpPrefix::V4 {
            addr: Ipv4Addr::from(addr),
            len,
        }
    }

    fn v6(addr: u128, len: u8) -> IpPrefix {
        IpPrefix::V6 {
            addr: Ipv6Addr::from(addr),
            len,
        }
    }

    /// Written straight from the rule's definition, independent of the range decoding the
    /// classifier and [`LinearScan`] share.
    fn prefix_holds(prefix: Option<IpPrefix>, v4_addr: Option<u32>, v6_addr: Option<u128>) -> bool {
        match (prefix, v4_addr, v6_addr) {
            (None, _, _) => true,
            (Some(IpPrefix::V4 { addr, len }), Some(a), _) => {
                len == 0 || (u32::from(addr) ^ a) >> (32 - u32::from(len)) == 0
            }
            (Some(IpPrefix::V6 { addr, len }), _, Some(a)) => {
                len == 0 || (u128::from(addr) ^ a) >> (128 - u32::from(len)) == 0
            }
            _ => false,
        }
    }

    fn rest_holds(rule: &AclRule, protocol: u8, src_port: u16, dst_port: u16) -> bool {
        rule.protocol.is_none_or(|p| p == protocol)
            && rule.src_ports.contains(src_port)
            && rule.dst_ports.contains(dst_port)
    }

    fn reference_v4(rules: &[(u32, AclRule)], flow: &FlowV4) -> Option<u32> {
        rules
            .iter()
            .find(|(_, r)| {
                prefix_holds(r.src, Some(flow.src), None)
                    && prefix_holds(r.dst, Some(flow.dst), None)
                    && rest_holds(r, flow.protocol, flow.src_port, flow.dst_port)
            })
            .map(|(i, _)| *i)
    }

    fn reference_v6(rules: &[(u32, AclRule)], flow: &FlowV6) -> Option<u32> {
        rules
            .iter()
            .find(|(_, r)| {
                prefix_holds(r.src, None, Some(flow.src))
                    && prefix_holds(r.dst, None, Some(flow.dst))
                    && rest_holds(r, flow.protocol, flow.src_port, flow.dst_port)
            })
            .map(|(i, _)| *i)
    }

    fn numbered(rules: &[AclRule]) -> Vec<(u32, AclRule)> {
        rules
            .iter()
            .enumerate()
            .map(|(i, r)| (i as u32, *r))
            .collect()
    }

    fn tcp_flow(src: u32, dst: u32, dst_port: u16) -> FlowV4 {
        FlowV4 {
            src,
            dst,
            protocol: 6,
            src_port: 40000,
            dst_port,
        }
    }

    #[test]
    fn first_matching_rule_wins() {
        let rules = numbered(&[
            AclRule {
                action: AclAction::Deny,
                dst: Some(v4(0x0A00_0000, 8)),
                protocol: Some(6),
                dst_ports: PortRange::single(25),
                ..AclRule::default()
            },
            AclRule {
                dst: Some(v4(0x0A01_0000, 16)),
                ..AclRule::default()
            },
            AclRule {
                action: AclAction::Deny,
                ..AclRule::default()
            },
        ]);
        let c = Classifier::<u32>::compile(&rules);
        assert_eq!(c.rules(), 3);
        assert_eq!(c.classify(&tcp_flow(1, 0x0A01_0203, 25)), Some(0));
        assert_eq!(c.classify(&tcp_flow(1, 0x0A01_0203, 80)), Some(1));
        assert_eq!(c.classify(&tcp_flow(1, 0x0B00_0000, 25)), Some(2));
        let udp = FlowV4 {
            protocol: 17,
            ..tcp_flow(1, 0x0A00_0001, 25)
        };
        assert_eq!(c.classify(&udp), Some(2));
    }

    #[test]
    fn reports_the_original_indexes() {
        let rule = |port| AclRule {
            protocol: Some(17),
            dst_ports: PortRange::single(port),
            ..AclRule::default()
        };
        let c = Classifier::<u32>::compile(&[(7, rule(53)), (3, rule(67)), (9, rule(53))]);
        let flow = |port| FlowV4 {
            protocol: 17,
            dst_port: port,
            ..FlowV4::default()
        };
        assert_eq!(c.classify(&flow(53)), Some(7));
        assert_eq!(c.classify(&flow(67)), Some(3));
        assert_eq!(c.classify(&flow(68)), None);
    }

    #[test]
    fn no_rules_match_nothing() {
        let c = Classifier::<u32>::compile(&[]);
        assert_eq!(c.classify(&FlowV4::default()), None);
        let c = Classifier::<u128>::compile(&[]);
        assert_eq!(c.classify(&FlowV6::default()), None);
        assert!(c.heap_bytes() < 256, "{c:?}");
    }

    #[test]
    fn rules_of_the_other_family_and_empty_port_ranges_are_left_out() {
        let rules = numbered(&[
            AclRule {
                src: Some(v6(0x2001_0db8 << 96, 32)),
                ..AclRule::default()
            },
            AclRule {
                dst_ports: PortRange { first: 9, last: 8 },
                ..AclRule::default()
            },
            AclRule {
                src: Some(v4(0x6440_0000, 10)),
                ..AclRule::default()
            },
            AclRule::default(),
        ]);
        let c4 = Classifier::<u32>::compile(&rules);
        let c6 = Classifier::<u128>::compile(&rules);
        assert_eq!((c4.rules(), c6.rules()), (2, 2));
        assert_eq!(c4.classify(&tcp_flow(0x6440_0001, 1, 9)), Some(2));
        assert_eq!(c4.classify(&tcp_flow(0x0A00_0001, 1, 9)), Some(3));
        let flow6 = |src| FlowV6 {
            src,
            dst_port: 9,
            ..FlowV6::default()
        };
        assert_eq!(c6.classify(&flow6(0x2001_0db8 << 96 | 5)), Some(0));
        assert_eq!(c6.classify(&flow6(0x2001_0db9 << 96)), Some(3));
    }

    #[test]
    fn prefix_edges() {
        let rules = numbered(&[
            AclRule {
                src: Some(v4(0xC0A8_0101, 32)),
                ..AclRule::default()
            },
            AclRule {
                src: Some(v4(0xFFFF_FF00, 24)),
                ..AclRule::default()
            },
            AclRule {
                src: Some(v4(0x1234_5678, 0)),
                protocol: Some(1),
                ..AclRule::default()
            },
            // Longer than 32 bits: taken as a host prefix.
            AclRule {
                src: Some(v4(0x0000_0000, 40)),
                ..AclRule::default()
            },
        ]);
        let c = Classifier::<u32>::compile(&rules);
        let icmp = |src| FlowV4 {
            src,
            protocol: 1,
            ..FlowV4::default()
        };
        assert_eq!(c.classify(&icmp(0xC0A8_0101)), Some(0));
        assert_eq!(c.classify(&icmp(0xC0A8_0102)), Some(2));
        assert_eq!(c.classify(&icmp(0xFFFF_FFFF)), Some(1));
        assert_eq!(c.classify(&icmp(0xFFFF_FEFF)), Some(2));
        assert_eq!(c.classify(&tcp_flow(0, 0, 0)), Some(3));
        assert_eq!(c.classify(&tcp_flow(1, 0, 0)), None);
    }

    /// xorshift64: reproducible pseudo-random numbers without a dependency.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn many_rules_use_several_summary_words() {
        // 5000 rules: 79 bitmap words, 2 summary words per row; the matches sit in both.
        let mut state = 0x9E37_79B9_7F4A_7C15;
        let rules: Vec<AclRule> = (0..5000)
            .map(|_| {
                let r = next(&mut state);
                AclRule {
                    src: Some(v4((r as u32) & 0x0F0F_0000, 16)),
                    protocol: Some([6, 17][(r >> 32) as usize % 2]),
                    dst_ports: PortRange::single((r >> 40) as u16 % 16),
                    ..AclRule::default()
                }
            })
            .collect();
        let rules = numbered(&rules);
        let c = Classifier::<u32>::compile(&rules);
        assert_eq!((c.words, c.summary_words), (79, 2));
        let (mut hits, mut late_hits) = (0, 0);
        for _ in 0..20_000 {
            let r = next(&mut state);
            let flow = FlowV4 {
                src: (r as u32) & 0x0F0F_00FF,
                dst: 0,
                protocol: [6, 17][(r >> 32) as usize % 2],
                src_port: 0,
                dst_port: (r >> 40) as u16 % 16,
            };
            let expected = reference_v4(&rules, &flow);
            assert_eq!(c.classify(&flow), expected, "{flow:?}");
            hits += usize::from(expected.is_some());
            late_hits += usize::from(expected.is_some_and(|i| i >= 4096));
        }
        assert!(
            hits > 1000 && late_hits > 10,
            "{hits} hits, {late_hits} late"
        );
    }

    // Addresses and ports from small pools, so that prefixes nest and overlap and flows
    // land on their edges.
    const V4_BASES: [u32; 5] = [0, 0x0A00_0000, 0x0A01_0000, 0xC0A8_0100, 0xFFFF_FFFF];
    const PORTS: [u16; 7] = [0, 22, 80, 443, 1023, 1024, 65535];

    fn address_v4() -> impl Strategy<Value = u32> {
        prop_oneof![
            prop::sample::select(&V4_BASES[..]),
            (prop::sample::select(&V4_BASES[..]), any::<u16>())
                .prop_map(|(base, low)| base ^ u32::from(low)),
            any::<u32>(),
        ]
    }

    fn address_v6() -> impl Strategy<Value = u128> {
        address_v4().prop_map(|a| 0x2001_0db8 << 96 | u128::from(a) << 40 | u128::from(a))
    }

    fn port() -> impl Strategy<Value = u16> {
        prop_oneof![prop::sample::select(&PORTS[..]), any::<u16>()]
    }

    fn port_range() -> impl Strategy<Value = PortRange> {
        prop_oneof![
            Just(PortRange::ANY),
            port().prop_map(PortRange::single),
            (port(), port()).prop_map(|(a, b)| PortRange {
                first: a.min(b),
                last: a.max(b)
            }),
        ]
    }

    fn protocol() -> impl Strategy<Value = u8> {
        prop::sample::select(&[0u8, 1, 6, 17, 58, 255][..])
    }

    fn prefix() -> impl Strategy<Value = Option<IpPrefix>> {
        prop_oneof![
            2 => Just(None),
            3 => (address_v4(), 0u8..=32).prop_map(|(a, len)| Some(v4(a, len))),
            3 => (address_v6(), 0u8..=128).prop_map(|(a, len)| Some(v6(a, len))),
        ]
    }

    /// [`rule`] with IPv6 prefixes left out, so that every rule is an IPv4 rule.
    fn rule_v4() -> impl Strategy<Value = AclRule> {
        let v4_only =
            |prefix: Option<IpPrefix>| prefix.filter(|p| matches!(p, IpPrefix::V4 { .. }));
        rule().prop_map(move |r| AclRule {
            src: v4_only(r.src),
            dst: v4_only(r.dst),
            ..r
        })
    }

    fn rule() -> impl Strategy<Value = AclRule> {
        (
            prefix(),
            prefix(),
            prop::option::of(protocol()),
            port_range(),
            port_range(),
        )
            .prop_map(|(src, dst, protocol, src_ports, dst_ports)| AclRule {
                action: AclAction::Permit,
                src,
                dst,
                protocol,
                src_ports,
                dst_ports,
            })
    }

    fn flow_v4() -> impl Strategy<Value = FlowV4> {
        (address_v4(), address_v4(), protocol(), port(), port()).prop_map(
            |(src, dst, protocol, src_port, dst_port)| FlowV4 {
                src,
                dst,
                protocol,
                src_port,
                dst_port,
            },
        )
    }

    fn flow_v6() -> impl Strategy<Value = FlowV6> {
        (address_v6(), address_v6(), protocol(), port(), port()).prop_map(
            |(src, dst, protocol, src_port, dst_port)| FlowV6 {
                src,
                dst,
                protocol,
                src_port,
                dst_port,
            },
        )
    }

    /// Builds a field over `ranges` and checks that the bucket table's answer equals the
    /// plain binary search for the smallest and largest keys and around every boundary.
    fn buckets_agree_with_binary_search<K: Key + fmt::Debug>(
        ranges: &[(K, K)],
        neighbours: impl Fn(K) -> [Option<K>; 3],
    ) {
        let mut arena = ArenaBuilder::new(ranges.len());
        let field = Field::build(ranges, &mut arena);
        let mut keys = vec![K::MIN, K::MAX];
        for start in &field.starts {
            keys.extend(neighbours(*start).into_iter().flatten());
        }
        // Each bucket's last interval is the one holding its last key, so that a bucket
        // inside one interval answers without a search.
        for b in 1..field.buckets.len() {
            let Some(first_key) = K::bucket_start(field.base, b, field.shift) else {
                continue;
            };
            keys.extend(neighbours(first_key).into_iter().flatten());
            if let [Some(before), ..] = neighbours(first_key) {
                let last = Field::interval_of(&field.starts, before);
                let [first, second] = field.buckets[b - 1];
                let bucket_last = if second & ONE_ROW != 0 { first } else { second };
                assert_eq!(bucket_last as usize, last, "bucket {}", b - 1);
            }
        }
        for key in keys {
            let expected = Field::interval_of(&field.starts, key);
            assert_eq!(field.find(key), expected, "key {key:?}");
            assert_eq!(
                field.row_of(key),
                field.rows.get(expected).copied(),
                "key {key:?}"
            );
            assert!(field.starts[expected] <= key);
        }
        assert!(field.buckets.len() <= MAX_BUCKETS + 1);
    }

    #[test]
    fn bucket_table_edges() {
        let around_u16 = |k: u16| [k.checked_sub(1), Some(k), k.checked_add(1)];
        let around_u32 = |k: u32| [k.checked_sub(1), Some(k), k.checked_add(1)];
        let around_u128 = |k: u128| [k.checked_sub(1), Some(k), k.checked_add(1)];
        // No rule; one rule covering everything; one single key at each end.
        buckets_agree_with_binary_search::<u16>(&[], around_u16);
        buckets_agree_with_binary_search::<u16>(&[(0, u16::MAX)], around_u16);
        buckets_agree_with_binary_search::<u16>(&[(0, 0), (u16::MAX, u16::MAX)], around_u16);
        buckets_agree_with_binary_search::<u32>(&[(7, 7)], around_u32);
        // Boundaries crowded into 10.0.0.0/24 plus one far away.
        let mut crowded: Vec<(u32, u32)> = (0..200u32)
            .map(|i| (0x0A00_0000 + i, 0x0A00_0000 + i))
            .collect();
        crowded.push((0xC000_0000, 0xC0FF_FFFF));
        buckets_agree_with_binary_search(&crowded, around_u32);
        // Ports below 1024 and an IPv6 /48 split into many /64s.
        let ports: Vec<(u16, u16)> = (0..3000u16).map(|i| (i % 1024, i % 1024 + 3)).collect();
        buckets_agree_with_binary_search(&ports, around_u16);
        let prefix: u128 = 0x2001_0db8_0001 << 80;
        let v6: Vec<(u128, u128)> = (0..500u128)
            .map(|i| (prefix | i << 64, prefix | i << 64 | u128::from(u64::MAX)))
            .collect();
        buckets_agree_with_binary_search(&v6, around_u128);
    }

    proptest! {
        #[test]
        fn bucket_table_agrees_with_binary_search(
            ranges in proptest::collection::vec((any::<u32>(), 0u32..1 << 20), 0..300),
            keys in proptest::collection::vec(any::<u32>(), 64),
        ) {
            let ranges: Vec<(u32, u32)> = ranges
                .iter()
                .map(|&(first, width)| (first, first.saturating_add(width)))
                .collect();
            let mut arena = ArenaBuilder::new(ranges.len());
            let field = Field::build(&ranges, &mut arena);
            for key in keys {
                let expected = Field::interval_of(&field.starts, key);
                prop_assert_eq!(field.find(key), expected);
                prop_assert_eq!(field.row_of(key), field.rows.get(expected).copied());
            }
        }
        #[test]
        fn v4_agrees_with_a_linear_first_match(
            rules in prop::collection::vec(rule(), 0..150),
            flows in prop::collection::vec(flow_v4(), 1..64),
        ) {
            let rules = numbered(&rules);
            let compiled = Classifier::<u32>::compile(&rules);
            let linear = LinearScan::<u32>::compile(&rules);
            for flow in &flows {
                let expected = reference_v4(&rules, flow);
                prop_assert_eq!(compiled.classify(flow), expected, "{:?}", flow);
                prop_assert_eq!(linear.classify(flow), expected, "{:?}", flow);
            }
        }

        #[test]
        fn v6_agrees_with_a_linear_first_match(
            rules in prop::collection::vec(rule(), 0..150),
            flows in prop::collection::vec(flow_v6(), 1..64),
        ) {
            let rules = numbered(&rules);
            let compiled = Classifier::<u128>::compile(&rules);
            let linear = LinearScan::<u128>::compile(&rules);
            for flow in &flows {
                let expected = reference_v6(&rules, flow);
                prop_assert_eq!(compiled.classify(flow), expected, "{:?}", flow);
                prop_assert_eq!(linear.classify(flow), expected, "{:?}", flow);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// Past [`NARROW_RULES`] the rows carry summaries and are read word by word.
        #[test]
        fn long_lists_agree_with_a_linear_first_match(
            rules in prop::collection::vec(rule_v4(), 2 * NARROW_RULES..3 * NARROW_RULES),
            flows in prop::collection::vec(flow_v4(), 1..64),
        ) {
            let rules = numbered(&rules);
            let compiled = Classifier::<u32>::compile(&rules);
            prop_assert!(compiled.summary_words > 0, "{} rules", compiled.rules());
            for flow in &flows {
                prop_assert_eq!(compiled.classify(flow), reference_v4(&rules, flow), "{:?}", flow);
            }
        }
    }
}
