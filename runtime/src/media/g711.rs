//! G.711 µ-law (PCMU) and A-law (PCMA), in the ITU-T G.191 convention.
//!
//! Decoding is a 256-entry table built at compile time from the bit-level
//! G.191 decoder. Encoding is computed with `leading_zeros` (no loop, no
//! table): for negative inputs G.191 takes the one's complement (`!x`, not
//! `-x`), which is where naive Sun-style encoders disagree on 127 inputs.

/// A G.711 companding law, with its static RTP payload type (RFC 3551).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Law {
    /// µ-law, PCMU, payload type 0.
    Ulaw,
    /// A-law, PCMA, payload type 8.
    Alaw,
}

impl Law {
    /// The static RTP payload type.
    pub fn payload_type(self) -> u8 {
        match self {
            Law::Ulaw => 0,
            Law::Alaw => 8,
        }
    }

    /// The SDP encoding name (`a=rtpmap:0 PCMU/8000`).
    pub fn encoding_name(self) -> &'static str {
        match self {
            Law::Ulaw => "PCMU",
            Law::Alaw => "PCMA",
        }
    }

    /// The code of digital silence (linear 0).
    pub fn silence_code(self) -> u8 {
        match self {
            Law::Ulaw => 0xFF,
            Law::Alaw => 0xD5,
        }
    }

    /// Encodes `pcm` into `out`, one byte per sample, up to the shorter length.
    #[inline]
    pub fn encode(self, pcm: &[i16], out: &mut [u8]) {
        match self {
            Law::Ulaw => pcm.iter().zip(out).for_each(|(s, o)| *o = ulaw_encode(*s)),
            Law::Alaw => pcm.iter().zip(out).for_each(|(s, o)| *o = alaw_encode(*s)),
        }
    }

    /// Decodes `codes` into `out`, one sample per byte, up to the shorter length.
    #[inline]
    pub fn decode(self, codes: &[u8], out: &mut [i16]) {
        let table = match self {
            Law::Ulaw => &ULAW_DECODE,
            Law::Alaw => &ALAW_DECODE,
        };
        codes
            .iter()
            .zip(out)
            .for_each(|(c, o)| *o = table[usize::from(*c)]);
    }
}

/// Encodes one linear sample as µ-law (G.191 `ulaw_compress`).
#[inline]
pub fn ulaw_encode(x: i16) -> u8 {
    // One's complement magnitude (0..=32767), reduced to 14 bits, biased by 33.
    let mag = ((x ^ (x >> 15)) as u16 >> 2) as u32 + 33;
    let mag = mag.min(0x1FFF);
    // mag >= 33 has at least 6 significant bits; segment 0..=7.
    let seg = 32 - mag.leading_zeros() - 6;
    let code = ((seg << 4) | ((mag >> (seg + 1)) & 0xF)) as u8 ^ 0x7F;
    if x >= 0 { code | 0x80 } else { code }
}

/// Decodes one µ-law code.
#[inline]
pub fn ulaw_decode(code: u8) -> i16 {
    ULAW_DECODE[usize::from(code)]
}

/// Encodes one linear sample as A-law (G.191 `alaw_compress`).
#[inline]
pub fn alaw_encode(x: i16) -> u8 {
    // One's complement magnitude reduced to 12 bits (0..=2047).
    let m = ((x ^ (x >> 15)) as u16 >> 4) as u32;
    let code = if m > 15 {
        let exp = 32 - m.leading_zeros() - 4; // 1..=7
        ((exp << 4) | ((m >> (exp - 1)) & 0xF)) as u8
    } else {
        m as u8
    };
    let code = if x >= 0 { code | 0x80 } else { code };
    code ^ 0x55
}

/// Decodes one A-law code.
#[inline]
pub fn alaw_decode(code: u8) -> i16 {
    ALAW_DECODE[usize::from(code)]
}

static ULAW_DECODE: [i16; 256] = build_table(Law::Ulaw);
static ALAW_DECODE: [i16; 256] = build_table(Law::Alaw);

const fn build_table(law: Law) -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = match law {
            Law::Ulaw => ulaw_decode_bits(i as u8),
            Law::Alaw => alaw_decode_bits(i as u8),
        };
        i += 1;
    }
    t
}

/// G.191 `ulaw_expand`, bit by bit.
const fn ulaw_decode_bits(code: u8) -> i16 {
    let inv = !code;
    let exponent = ((inv >> 4) & 7) as i32;
    let mantissa = (inv & 0x0F) as i32;
    let step = 4 << (exponent + 1);
    let mag = (0x80 << exponent) + step * mantissa + step / 2 - 4 * 33;
    if code < 0x80 { -mag as i16 } else { mag as i16 }
}

/// G.191 `alaw_expand`, bit by bit.
const fn alaw_decode_bits(code: u8) -> i16 {
    let ix = (code ^ 0x55) & 0x7F;
    let exponent = (ix >> 4) as i32;
    let mut mant = (ix & 0x0F) as i32;
    if exponent > 0 {
        mant += 16;
    }
    mant = (mant << 4) + 8;
    if exponent > 1 {
        mant <<= exponent - 1;
    }
    if code > 127 {
        mant as i16
    } else {
        -mant as i16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// G.191 `ulaw_compress` as written in the reference C, loop and all.
    fn ulaw_reference(x: i16) -> u8 {
        let x = x as i32;
        let mut absno = if x < 0 {
            ((!x) >> 2) + 33
        } else {
            (x >> 2) + 33
        };
        if absno > 0x1FFF {
            absno = 0x1FFF;
        }
        let mut i = absno >> 6;
        let mut segno = 1;
        while i != 0 {
            segno += 1;
            i >>= 1;
        }
        let high = 0x0008 - segno;
        let low = 0x000F - ((absno >> segno) & 0x000F);
        let mut out = (high << 4) | low;
        if x >= 0 {
            out |= 0x0080;
        }
        out as u8
    }

    /// G.191 `alaw_compress` as written in the reference C.
    fn alaw_reference(x: i16) -> u8 {
        let x = x as i32;
        let mut ix = if x < 0 { (!x) >> 4 } else { x >> 4 };
        if ix > 15 {
            let mut iexp = 1;
            while ix > 16 + 15 {
                ix >>= 1;
                iexp += 1;
            }
            ix -= 16;
            ix += iexp << 4;
        }
        if x >= 0 {
            ix |= 0x0080;
        }
        (ix ^ 0x0055) as u8
    }

    #[test]
    fn ulaw_encode_matches_g191_for_every_input() {
        for x in i16::MIN..=i16::MAX {
            assert_eq!(ulaw_encode(x), ulaw_reference(x), "x = {x}");
            assert_eq!(
                ulaw_encode(x),
                audio_codec_algorithms::encode_ulaw(x),
                "oracle, x = {x}"
            );
        }
    }

    #[test]
    fn alaw_encode_matches_g191_for_every_input() {
        for x in i16::MIN..=i16::MAX {
            assert_eq!(alaw_encode(x), alaw_reference(x), "x = {x}");
            assert_eq!(
                alaw_encode(x),
                audio_codec_algorithms::encode_alaw(x),
                "oracle, x = {x}"
            );
        }
    }

    #[test]
    fn decoders_match_the_oracle_for_every_code() {
        for c in 0..=255u8 {
            assert_eq!(
                ulaw_decode(c),
                audio_codec_algorithms::decode_ulaw(c),
                "µ {c:#x}"
            );
            assert_eq!(
                alaw_decode(c),
                audio_codec_algorithms::decode_alaw(c),
                "A {c:#x}"
            );
        }
    }

    #[test]
    fn known_codes() {
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x80), 32124);
        assert_eq!(ulaw_decode(0x00), -32124);
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(alaw_encode(0), 0xD5);
        assert_eq!(alaw_decode(0xD5), 8);
        assert_eq!(Law::Ulaw.silence_code(), ulaw_encode(0));
        assert_eq!(Law::Alaw.silence_code(), alaw_encode(0));
    }

    #[test]
    fn encode_of_decode_is_identity() {
        // Every code's decoded value re-encodes to the same code, except µ-law's
        // negative zero (0x7F), which encodes as positive zero.
        for c in 0..=255u8 {
            let u = ulaw_encode(ulaw_decode(c));
            assert!(u == c || (c == 0x7F && u == 0xFF), "µ {c:#x} -> {u:#x}");
            assert_eq!(alaw_encode(alaw_decode(c)), c, "A {c:#x}");
        }
    }

    #[test]
    fn slice_codecs() {
        let pcm = [0i16, 1000, -1000, 32767, -32768];
        for law in [Law::Ulaw, Law::Alaw] {
            let mut codes = [0u8; 5];
            law.encode(&pcm, &mut codes);
            let mut back = [0i16; 5];
            law.decode(&codes, &mut back);
            for (a, b) in pcm.iter().zip(back) {
                // Quantisation error stays within the segment step (< 3% of full scale).
                assert!((*a as i32 - b as i32).abs() <= 1024, "{law:?} {a} -> {b}");
            }
        }
    }
}
