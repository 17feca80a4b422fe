//! Scheduling classes and the DSCP to class map.
//!
//! | class | scheduling               | default DSCPs                                        |
//! |-------|--------------------------|------------------------------------------------------|
//! | 0     | strict priority          | EF (46), VOICE-ADMIT (44), CS5 (40), CS6 (48), CS7 (56) |
//! | 1     | DRR                      | AF41..AF43, AF31..AF33, CS4, CS3                      |
//! | 2     | DRR                      | AF21..AF23, AF11..AF13, CS2, CS1                      |
//! | 3     | DRR (best effort)        | everything else (CS0, LE, unassigned)                 |

/// Number of scheduling classes per subscriber.
pub const CLASSES: usize = 4;

/// A scheduling class, `0..CLASSES`; 0 is the strict-priority (expedited) class.
///
/// The scheduler treats any value `>= CLASSES` as the best-effort class `CLASSES - 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct ClassId(pub u8);

impl ClassId {
    /// The expedited, strict-priority class.
    pub const EXPEDITED: ClassId = ClassId(0);
    /// The best-effort class.
    pub const BEST_EFFORT: ClassId = ClassId(CLASSES as u8 - 1);

    /// The class as an index `0..CLASSES` (out-of-range values map to best effort).
    #[inline]
    pub fn index(self) -> usize {
        usize::from(self.0).min(CLASSES - 1)
    }
}

/// Maps the 6-bit DSCP of an IPv4 packet to a [`ClassId`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DscpMap([u8; 64]);

impl DscpMap {
    /// A map from an explicit table (entry `d` is the class of DSCP `d`; values
    /// `>= CLASSES` are clamped to best effort).
    pub fn new(table: [u8; 64]) -> Self {
        DscpMap(table.map(|c| c.min(CLASSES as u8 - 1)))
    }

    /// Sets the class of one DSCP (`dscp` is masked to 6 bits).
    pub fn set(&mut self, dscp: u8, class: ClassId) {
        self.0[usize::from(dscp & 0x3f)] = class.index() as u8;
    }

    /// The class of `dscp` (masked to 6 bits, so the upper DS bits may be passed too).
    #[inline]
    pub fn class_of(&self, dscp: u8) -> ClassId {
        ClassId(self.0[usize::from(dscp & 0x3f)])
    }
}

impl Default for DscpMap {
    /// The table in the module docs (RFC 4594 service classes folded into four).
    fn default() -> Self {
        let mut t = [3u8; 64];
        // Expedited: EF (RFC 3246), VOICE-ADMIT (RFC 5865), CS5, CS6, CS7.
        for d in [46, 44, 40, 48, 56] {
            t[d] = 0;
        }
        // AF4x, AF3x (RFC 2597), CS4, CS3.
        for d in [34, 36, 38, 26, 28, 30, 32, 24] {
            t[d] = 1;
        }
        // AF2x, AF1x, CS2, CS1.
        for d in [18, 20, 22, 10, 12, 14, 16, 8] {
            t[d] = 2;
        }
        DscpMap(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_map() {
        let m = DscpMap::default();
        assert_eq!(m.class_of(46), ClassId(0));
        assert_eq!(m.class_of(44), ClassId(0));
        assert_eq!(m.class_of(56), ClassId(0));
        assert_eq!(m.class_of(34), ClassId(1));
        assert_eq!(m.class_of(24), ClassId(1));
        assert_eq!(m.class_of(10), ClassId(2));
        assert_eq!(m.class_of(8), ClassId(2));
        assert_eq!(m.class_of(0), ClassId(3));
        assert_eq!(m.class_of(1), ClassId(3));
        assert_eq!(m.class_of(46 | 0x40), ClassId(0));
    }

    #[test]
    fn custom_map_clamps() {
        let mut m = DscpMap::new([9; 64]);
        assert_eq!(m.class_of(5), ClassId(3));
        m.set(5, ClassId(0));
        assert_eq!(m.class_of(5), ClassId(0));
        assert_eq!(ClassId(200).index(), 3);
    }
}
