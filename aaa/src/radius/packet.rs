//! RADIUS packet layout (RFC 2865 section 3).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |     Code      |  Identifier   |            Length             |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |                                                               |
//! |                         Authenticator                         |
//! |                                                               |
//! |                                                               |
//! +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//! |  Attributes ...
//! +-+-+-+-+-+-+-+-+-+-+-+-+-
//! ```

use super::{
    AUTHENTICATOR_LEN, AttrType, Code, Error, HEADER_LEN, MAX_ATTR_VALUE_LEN, MAX_PACKET_LEN,
};

mod field {
    use core::ops::{Range, RangeFrom};
    pub const CODE: usize = 0;
    pub const IDENTIFIER: usize = 1;
    pub const LENGTH: Range<usize> = 2..4;
    pub const AUTHENTICATOR: Range<usize> = 4..20;
    pub const ATTRIBUTES: RangeFrom<usize> = 20..;
}

/// A read/write view of a RADIUS packet.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }

    /// Wraps a buffer and checks the header and every attribute length.
    pub fn new_checked(buffer: T) -> Result<Self, Error> {
        let packet = Self::new_unchecked(buffer);
        packet.check_len()?;
        Ok(packet)
    }

    /// Checks that the Length field is within 20..=4096 and the buffer, and
    /// that the attributes tile the packet exactly (RFC 2865 sections 3, 5).
    /// Octets past Length are padding and are ignored (RFC 2865 section 3).
    pub fn check_len(&self) -> Result<(), Error> {
        let data = self.buffer.as_ref();
        if data.len() < HEADER_LEN {
            return Err(Error::Truncated(data.len()));
        }
        let field = u16::from_be_bytes([data[2], data[3]]);
        let len = usize::from(field);
        if !(HEADER_LEN..=MAX_PACKET_LEN).contains(&len) || len > data.len() {
            return Err(Error::BadLength {
                field,
                available: data.len(),
            });
        }
        let mut offset = HEADER_LEN;
        while offset < len {
            if offset + 2 > len {
                return Err(Error::BadAttrLength { offset, len: 0 });
            }
            let alen = data[offset + 1];
            if alen < 2 || offset + usize::from(alen) > len {
                return Err(Error::BadAttrLength { offset, len: alen });
            }
            offset += usize::from(alen);
        }
        Ok(())
    }

    /// Returns the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// The Code field.
    #[inline]
    pub fn code(&self) -> Code {
        Code::from(self.buffer.as_ref()[field::CODE])
    }

    /// The Identifier field.
    #[inline]
    pub fn identifier(&self) -> u8 {
        self.buffer.as_ref()[field::IDENTIFIER]
    }

    /// The Length field.
    #[inline]
    pub fn length(&self) -> u16 {
        let d = &self.buffer.as_ref()[field::LENGTH];
        u16::from_be_bytes([d[0], d[1]])
    }

    /// The Authenticator field.
    #[inline]
    pub fn authenticator(&self) -> [u8; AUTHENTICATOR_LEN] {
        let mut a = [0; AUTHENTICATOR_LEN];
        a.copy_from_slice(&self.buffer.as_ref()[field::AUTHENTICATOR]);
        a
    }

    /// The packet's bytes up to Length (padding excluded).
    #[inline]
    pub fn as_bytes(&self) -> &[u8] {
        &self.buffer.as_ref()[..usize::from(self.length())]
    }

    /// Iterates over `(type, value, offset of the attribute)`.
    pub fn attributes(&self) -> impl Iterator<Item = (AttrType, &[u8], usize)> {
        let data = self.as_bytes();
        let mut offset = field::ATTRIBUTES.start;
        core::iter::from_fn(move || {
            if offset + 2 > data.len() {
                return None;
            }
            let len = usize::from(data[offset + 1]);
            if len < 2 || offset + len > data.len() {
                return None;
            }
            let item = (
                AttrType::from(data[offset]),
                &data[offset + 2..offset + len],
                offset,
            );
            offset += len;
            Some(item)
        })
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the Code field.
    #[inline]
    pub fn set_code(&mut self, code: Code) {
        self.buffer.as_mut()[field::CODE] = code.into();
    }

    /// Sets the Identifier field.
    #[inline]
    pub fn set_identifier(&mut self, id: u8) {
        self.buffer.as_mut()[field::IDENTIFIER] = id;
    }

    /// Sets the Length field.
    #[inline]
    pub fn set_length(&mut self, len: u16) {
        self.buffer.as_mut()[field::LENGTH].copy_from_slice(&len.to_be_bytes());
    }

    /// Sets the Authenticator field.
    #[inline]
    pub fn set_authenticator(&mut self, auth: &[u8; AUTHENTICATOR_LEN]) {
        self.buffer.as_mut()[field::AUTHENTICATOR].copy_from_slice(auth);
    }
}

/// A Vendor-Specific attribute split up: vendor id and each (type, value).
pub type VendorParts<'a> = (u32, Vec<(u8, &'a [u8])>);

/// One attribute: type and raw value (at most 253 octets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    /// Attribute type.
    pub typ: AttrType,
    /// Raw value octets.
    pub value: Vec<u8>,
}

impl Attribute {
    /// An attribute with raw octets.
    pub fn new(typ: AttrType, value: impl Into<Vec<u8>>) -> Self {
        Attribute {
            typ,
            value: value.into(),
        }
    }

    /// An attribute holding a 32-bit integer (RFC 2865 5: "integer").
    pub fn u32(typ: AttrType, value: u32) -> Self {
        Attribute {
            typ,
            value: value.to_be_bytes().to_vec(),
        }
    }

    /// The value as a 32-bit integer, if it is four octets.
    pub fn as_u32(&self) -> Option<u32> {
        <[u8; 4]>::try_from(self.value.as_slice())
            .ok()
            .map(u32::from_be_bytes)
    }

    /// A Vendor-Specific attribute (RFC 2865 5.26) holding one sub-attribute
    /// in the usual format: vendor id, then type, length (value + 2), value.
    /// A value longer than 247 octets is truncated to fit.
    pub fn vendor(vendor_id: u32, vendor_type: u8, value: &[u8]) -> Self {
        let value = &value[..value.len().min(super::MAX_ATTR_VALUE_LEN - 6)];
        let mut v = Vec::with_capacity(6 + value.len());
        v.extend_from_slice(&vendor_id.to_be_bytes());
        v.push(vendor_type);
        // At most 249: fits.
        v.push(u8::try_from(value.len() + 2).unwrap_or(u8::MAX));
        v.extend_from_slice(value);
        Attribute {
            typ: AttrType::VendorSpecific,
            value: v,
        }
    }

    /// A Vendor-Specific attribute holding one 32-bit integer.
    pub fn vendor_u32(vendor_id: u32, vendor_type: u8, value: u32) -> Self {
        Self::vendor(vendor_id, vendor_type, &value.to_be_bytes())
    }

    /// The sub-attributes of a Vendor-Specific attribute: its vendor id and
    /// each (type, value). `None` if this is not a Vendor-Specific
    /// attribute or its sub-attributes do not tile the value exactly.
    pub fn vendor_parts(&self) -> Option<VendorParts<'_>> {
        if self.typ != AttrType::VendorSpecific {
            return None;
        }
        let (id, mut rest) = self.value.split_first_chunk::<4>()?;
        let mut parts = Vec::new();
        while !rest.is_empty() {
            let [typ, len, ..] = *rest else { return None };
            let len = usize::from(len);
            if len < 2 || len > rest.len() {
                return None;
            }
            parts.push((typ, &rest[2..len]));
            rest = &rest[len..];
        }
        Some((u32::from_be_bytes(*id), parts))
    }
}

impl Repr {
    /// Attributes of type `typ`, in order.
    pub fn all(&self, typ: AttrType) -> impl Iterator<Item = &Attribute> {
        self.attributes.iter().filter(move |a| a.typ == typ)
    }

    /// Values of vendor `vendor_id`'s sub-attribute `vendor_type`, in order.
    pub fn vendor_values(&self, vendor_id: u32, vendor_type: u8) -> Vec<&[u8]> {
        self.all(AttrType::VendorSpecific)
            .filter_map(Attribute::vendor_parts)
            .filter(|(id, _)| *id == vendor_id)
            .flat_map(|(_, parts)| parts)
            .filter(|(t, _)| *t == vendor_type)
            .map(|(_, v)| v)
            .collect()
    }
}

/// An owned, high-level RADIUS packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repr {
    /// Packet code.
    pub code: Code,
    /// Identifier.
    pub identifier: u8,
    /// Authenticator field as it is (or will be) on the wire.
    pub authenticator: [u8; AUTHENTICATOR_LEN],
    /// Attributes in wire order.
    pub attributes: Vec<Attribute>,
}

impl Repr {
    /// Parses a checked packet.
    pub fn parse<T: AsRef<[u8]>>(packet: &Packet<T>) -> Result<Self, Error> {
        packet.check_len()?;
        Ok(Repr {
            code: packet.code(),
            identifier: packet.identifier(),
            authenticator: packet.authenticator(),
            attributes: packet
                .attributes()
                .map(|(typ, v, _)| Attribute::new(typ, v))
                .collect(),
        })
    }

    /// Parses bytes (convenience for `parse(&Packet::new_checked(..))`).
    pub fn parse_bytes(bytes: &[u8]) -> Result<Self, Error> {
        Self::parse(&Packet::new_checked(bytes)?)
    }

    /// Encoded length in octets.
    pub fn buffer_len(&self) -> usize {
        HEADER_LEN
            + self
                .attributes
                .iter()
                .map(|a| 2 + a.value.len())
                .sum::<usize>()
    }

    /// Checks that every value fits in an attribute and the packet in 4096.
    pub fn check(&self) -> Result<(), Error> {
        if let Some(a) = self
            .attributes
            .iter()
            .find(|a| a.value.len() > MAX_ATTR_VALUE_LEN)
        {
            return Err(Error::ValueTooLong(a.value.len()));
        }
        let len = self.buffer_len();
        if len > MAX_PACKET_LEN {
            return Err(Error::PacketTooLong(len));
        }
        Ok(())
    }

    /// Emits into a buffer of at least `buffer_len()` octets. Call
    /// [`Repr::check`] first: oversized values are truncated, never a panic.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, packet: &mut Packet<T>) {
        let len = self.buffer_len().min(MAX_PACKET_LEN);
        packet.set_code(self.code);
        packet.set_identifier(self.identifier);
        packet.set_length(len as u16);
        packet.set_authenticator(&self.authenticator);
        let buf = packet.buffer.as_mut();
        let mut offset = HEADER_LEN;
        for a in &self.attributes {
            let vlen = a.value.len().min(MAX_ATTR_VALUE_LEN);
            if offset + 2 + vlen > len {
                break;
            }
            buf[offset] = a.typ.into();
            buf[offset + 1] = (vlen + 2) as u8;
            buf[offset + 2..offset + 2 + vlen].copy_from_slice(&a.value[..vlen]);
            offset += 2 + vlen;
        }
    }

    /// Checks and encodes into a new vector.
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        self.check()?;
        let mut packet = Packet::new_unchecked(vec![0u8; self.buffer_len()]);
        self.emit(&mut packet);
        Ok(packet.into_inner())
    }

    /// The first attribute of a type.
    pub fn find(&self, typ: AttrType) -> Option<&Attribute> {
        self.attributes.iter().find(|a| a.typ == typ)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // An Access-Request: User-Name "nemo", NAS-Port 3.
    const GOLDEN: [u8; 32] = [
        0x01, 0x2a, 0x00, 0x20, // code, id 42, length 32
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, // authenticator
        0x01, 0x06, b'n', b'e', b'm', b'o', // User-Name
        0x05, 0x06, 0x00, 0x00, 0x00, 0x03, // NAS-Port
    ];

    fn golden_repr() -> Repr {
        Repr {
            code: Code::AccessRequest,
            identifier: 42,
            authenticator: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16],
            attributes: vec![
                Attribute::new(AttrType::UserName, *b"nemo"),
                Attribute::u32(AttrType::NasPort, 3),
            ],
        }
    }

    #[test]
    fn deconstruct() {
        let p = Packet::new_checked(&GOLDEN[..]).unwrap();
        assert_eq!(p.code(), Code::AccessRequest);
        assert_eq!(p.identifier(), 42);
        assert_eq!(p.length(), 32);
        let attrs: Vec<_> = p.attributes().map(|(t, v, _)| (t, v.to_vec())).collect();
        assert_eq!(
            attrs,
            vec![
                (AttrType::UserName, b"nemo".to_vec()),
                (AttrType::NasPort, vec![0, 0, 0, 3])
            ]
        );
    }

    #[test]
    fn parse_and_emit() {
        assert_eq!(Repr::parse_bytes(&GOLDEN).unwrap(), golden_repr());
        assert_eq!(golden_repr().to_bytes().unwrap(), GOLDEN);
    }

    #[test]
    fn padding_ignored() {
        let mut padded = GOLDEN.to_vec();
        padded.extend_from_slice(&[0xff; 5]);
        assert_eq!(Repr::parse_bytes(&padded).unwrap(), golden_repr());
    }

    #[test]
    fn unknown_codes() {
        assert_eq!(Code::from(99), Code::Unknown(99));
        assert_eq!(u8::from(AttrType::Unknown(200)), 200);
        assert_eq!(AttrType::from(80), AttrType::MessageAuthenticator);
    }

    #[test]
    fn malformed() {
        assert_eq!(Repr::parse_bytes(&GOLDEN[..19]), Err(Error::Truncated(19)));
        let mut b = GOLDEN;
        b[3] = 33; // length past the datagram
        assert_eq!(
            Repr::parse_bytes(&b),
            Err(Error::BadLength {
                field: 33,
                available: 32
            })
        );
        b[3] = 19; // length below the header
        assert!(matches!(
            Repr::parse_bytes(&b),
            Err(Error::BadLength { .. })
        ));
        let mut b = GOLDEN;
        b[21] = 1; // attribute length below 2
        assert_eq!(
            Repr::parse_bytes(&b),
            Err(Error::BadAttrLength { offset: 20, len: 1 })
        );
        let mut b = GOLDEN;
        b[27] = 7; // last attribute runs past Length
        assert_eq!(
            Repr::parse_bytes(&b),
            Err(Error::BadAttrLength { offset: 26, len: 7 })
        );
        let mut b = GOLDEN.to_vec();
        b.push(0x01);
        b[3] = 33; // a lone type octet
        assert_eq!(
            Repr::parse_bytes(&b),
            Err(Error::BadAttrLength { offset: 32, len: 0 })
        );
        let mut big = golden_repr();
        big.attributes
            .push(Attribute::new(AttrType::Class, vec![0; 254]));
        assert_eq!(big.to_bytes(), Err(Error::ValueTooLong(254)));
        let mut big = golden_repr();
        big.attributes = vec![Attribute::new(AttrType::Class, vec![0; 253]); 17];
        assert_eq!(big.to_bytes(), Err(Error::PacketTooLong(20 + 17 * 255)));
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        fn attr() -> impl Strategy<Value = Attribute> {
            (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..=253))
                .prop_map(|(t, v)| Attribute::new(AttrType::from(t), v))
        }

        proptest! {
            #[test]
            fn round_trip(code: u8, id: u8, auth: [u8; 16],
                          attrs in proptest::collection::vec(attr(), 0..15)) {
                let repr = Repr { code: Code::from(code), identifier: id, authenticator: auth, attributes: attrs };
                let bytes = repr.to_bytes().unwrap();
                prop_assert_eq!(Repr::parse_bytes(&bytes).unwrap(), repr);
            }

            #[test]
            fn parse_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
                let _ = Repr::parse_bytes(&bytes);
            }
        }
    }
}

#[cfg(test)]
mod vendor_tests {
    use super::*;

    #[test]
    fn vendor_attribute_round_trip() {
        let a = Attribute::vendor_u32(32473, 1, 10_000);
        assert_eq!(a.value, [0, 0, 0x7e, 0xd9, 1, 6, 0, 0, 0x27, 0x10]);
        let (id, parts) = a.vendor_parts().unwrap();
        assert_eq!(id, 32473);
        assert_eq!(parts, vec![(1u8, &[0u8, 0, 0x27, 0x10][..])]);
        let repr = Repr {
            code: Code::AccessAccept,
            identifier: 1,
            authenticator: [0; 16],
            attributes: vec![a, Attribute::vendor(3561, 1, b"olt1")],
        };
        assert_eq!(
            repr.vendor_values(32473, 1),
            vec![&[0u8, 0, 0x27, 0x10][..]]
        );
        assert_eq!(repr.vendor_values(3561, 1), vec![&b"olt1"[..]]);
        assert!(repr.vendor_values(3561, 2).is_empty());
    }

    #[test]
    fn malformed_vendor_attribute_is_refused() {
        for value in [
            &[0u8, 0, 0x7e][..],
            &[0, 0, 0x7e, 0xd9, 1, 1],
            &[0, 0, 0x7e, 0xd9, 1, 9, 0],
        ] {
            assert!(
                Attribute::new(AttrType::VendorSpecific, value)
                    .vendor_parts()
                    .is_none()
            );
        }
    }
}
