//! Stateless AC-Cookies: a keyed hash over the client's identity and a
//! time bucket, so a PADR proves its sender received our PADO on that line
//! recently without the server storing anything per PADI (RFC 2516 section
//! 8 suggests exactly this use of the AC-Cookie against PADR floods).
//!
//! Cookie layout (12 bytes): `bucket (u32, big endian) | SipHash-2-4(secret,
//! domain | mac | up | port | svlan | cvlan | bucket) (u64, big endian)`
//! where `bucket = now_ms / lifetime_ms`. A cookie verifies in its own
//! bucket and the next, so it lives between one and two lifetimes.

use super::discovery::LineKey;

/// Length of the cookies made by [`make`].
pub const COOKIE_LEN: usize = 12;

/// Separates this use of the secret from any other.
const DOMAIN: &[u8; 8] = b"vbngpoe1";

/// SipHash-2-4 (Aumasson and Bernstein, 2012) of `msg` under the 128-bit
/// `key`: a pseudo-random function on short inputs, used here as a MAC.
pub fn siphash24(key: &[u8; 16], msg: &[u8]) -> u64 {
    let k0 = u64::from_le_bytes(key[..8].try_into().expect("8 bytes"));
    let k1 = u64::from_le_bytes(key[8..].try_into().expect("8 bytes"));
    let mut v = [
        k0 ^ 0x736f_6d65_7073_6575,
        k1 ^ 0x646f_7261_6e64_6f6d,
        k0 ^ 0x6c79_6765_6e65_7261,
        k1 ^ 0x7465_6462_7974_6573,
    ];
    fn round(v: &mut [u64; 4]) {
        v[0] = v[0].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(13) ^ v[0];
        v[0] = v[0].rotate_left(32);
        v[2] = v[2].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(16) ^ v[2];
        v[0] = v[0].wrapping_add(v[3]);
        v[3] = v[3].rotate_left(21) ^ v[0];
        v[2] = v[2].wrapping_add(v[1]);
        v[1] = v[1].rotate_left(17) ^ v[2];
        v[2] = v[2].rotate_left(32);
    }
    let compress = |m: u64, v: &mut [u64; 4]| {
        v[3] ^= m;
        round(v);
        round(v);
        v[0] ^= m;
    };
    let mut chunks = msg.chunks_exact(8);
    for c in &mut chunks {
        compress(u64::from_le_bytes(c.try_into().expect("8 bytes")), &mut v);
    }
    let mut last = [0u8; 8];
    let tail = chunks.remainder();
    last[..tail.len()].copy_from_slice(tail);
    // The length's low byte goes in the last word's top byte (by design).
    last[7] = msg.len() as u8;
    compress(u64::from_le_bytes(last), &mut v);
    v[2] ^= 0xff;
    for _ in 0..4 {
        round(&mut v);
    }
    v[0] ^ v[1] ^ v[2] ^ v[3]
}

fn tag(secret: &[u8; 16], line: &LineKey, mac: &[u8; 6], bucket: u32) -> u64 {
    let mut m = [0u8; 8 + 6 + 4 + 1 + 2 + 2 + 4];
    m[..8].copy_from_slice(DOMAIN);
    m[8..14].copy_from_slice(mac);
    m[14..18].copy_from_slice(&line.up.to_be_bytes());
    m[18] = line.port;
    m[19..21].copy_from_slice(&line.svlan.to_be_bytes());
    m[21..23].copy_from_slice(&line.cvlan.to_be_bytes());
    m[23..27].copy_from_slice(&bucket.to_be_bytes());
    siphash24(secret, &m)
}

fn bucket(now_ms: u64, lifetime_ms: u64) -> u32 {
    // Wraps after 2^32 lifetimes (over 8,000 years at 60 s); harmless.
    (now_ms / lifetime_ms.max(1)) as u32
}

/// The cookie for a client at `now_ms`.
pub fn make(
    secret: &[u8; 16],
    lifetime_ms: u64,
    now_ms: u64,
    line: &LineKey,
    mac: &[u8; 6],
) -> [u8; COOKIE_LEN] {
    let b = bucket(now_ms, lifetime_ms);
    let mut c = [0u8; COOKIE_LEN];
    c[..4].copy_from_slice(&b.to_be_bytes());
    c[4..].copy_from_slice(&tag(secret, line, mac, b).to_be_bytes());
    c
}

/// True if `cookie` was made by [`make`] with this secret for this client
/// in the current or the previous time bucket.
pub fn verify(
    secret: &[u8; 16],
    lifetime_ms: u64,
    now_ms: u64,
    line: &LineKey,
    mac: &[u8; 6],
    cookie: &[u8],
) -> bool {
    let Ok(c) = <&[u8; COOKIE_LEN]>::try_from(cookie) else {
        return false;
    };
    let b = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
    let now = bucket(now_ms, lifetime_ms);
    if b != now && b.wrapping_add(1) != now {
        return false;
    }
    let want = tag(secret, line, mac, b).to_be_bytes();
    // Constant-time comparison: no early exit on the first differing byte.
    want.iter()
        .zip(&c[4..])
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> [u8; 16] {
        core::array::from_fn(|i| i as u8)
    }

    #[test]
    fn siphash_reference_vectors() {
        // The SipHash paper, appendix A: key 00..0f, message 00..0e.
        let msg: Vec<u8> = (0..15).collect();
        assert_eq!(siphash24(&key(), &msg), 0xa129_ca61_49be_45e5);
        // Reference implementation vectors.h, entry 0 (empty message):
        // bytes 31 0e 0e dd 47 db 6f 72, read little-endian.
        assert_eq!(siphash24(&key(), &[]), 0x726f_db47_dd0e_0e31);
    }

    #[test]
    fn cookie_lifetime_and_binding() {
        let line = LineKey {
            up: 1,
            port: 2,
            svlan: 100,
            cvlan: 7,
        };
        let mac = [2, 0, 0, 0, 0, 1];
        let s = [7u8; 16];
        let c = make(&s, 60_000, 10_000, &line, &mac);
        assert!(verify(&s, 60_000, 10_000, &line, &mac, &c));
        assert!(verify(&s, 60_000, 119_999, &line, &mac, &c));
        assert!(!verify(&s, 60_000, 120_000, &line, &mac, &c), "expired");
        assert!(
            !verify(&s, 60_000, 10_000, &line, &[2, 0, 0, 0, 0, 2], &c),
            "other MAC"
        );
        let other_line = LineKey { cvlan: 8, ..line };
        assert!(
            !verify(&s, 60_000, 10_000, &other_line, &mac, &c),
            "other line"
        );
        assert!(
            !verify(&[8u8; 16], 60_000, 10_000, &line, &mac, &c),
            "other secret"
        );
        assert!(!verify(&s, 60_000, 10_000, &line, &mac, &c[..11]), "short");
        let mut forged = c;
        forged[11] ^= 1;
        assert!(
            !verify(&s, 60_000, 10_000, &line, &mac, &forged),
            "tampered"
        );
        // A bucket from the future is refused.
        let future = make(&s, 60_000, 70_000, &line, &mac);
        assert!(!verify(&s, 60_000, 10_000, &line, &mac, &future));
    }
}
