//! Prompts from WAV bytes, and recordings to WAV.
//!
//! Accepted prompts: 8 kHz mono, either 16-bit PCM (read with hound) or
//! G.711 µ-law / A-law (format tags 7 / 6, which hound cannot read, so this
//! module walks the RIFF chunks itself). Anything else is a [`WavError`] that
//! names the file's actual format. Decoded prompts are `Arc<[i16]>`: loaded
//! once, shared by every call that plays them.
//!
//! Recordings are written as 8 kHz mono PCM16, either at once
//! ([`pcm16_wav`], with hound) or streamed: [`wav_header`] for a known total
//! length, written first with a placeholder and rewritten at the end.

use super::SAMPLE_RATE;
use super::g711::Law;
use std::fmt;
use std::io::Cursor;
use std::sync::Arc;

/// Decoded audio shared between calls.
pub type Samples = Arc<[i16]>;

const FORMAT_PCM: u16 = 1;
const FORMAT_ALAW: u16 = 6;
const FORMAT_ULAW: u16 = 7;
const FORMAT_EXTENSIBLE: u16 = 0xFFFE;

/// Why a prompt could not be loaded. Every variant names the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WavError {
    /// Not a RIFF/WAVE file, or its chunks are cut short.
    Malformed { file: String, reason: &'static str },
    /// A well-formed WAV in a format we do not play.
    Unsupported { file: String, format: WavFormat },
    /// hound rejected the PCM data.
    Pcm { file: String, reason: String },
}

impl fmt::Display for WavError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WavError::Malformed { file, reason } => {
                write!(f, "{file}: not a usable WAV file: {reason}")
            }
            WavError::Unsupported { file, format } => write!(
                f,
                "{file}: unsupported audio format {format}; prompts must be 8000 Hz mono, \
                 16-bit PCM or G.711 µ-law/A-law"
            ),
            WavError::Pcm { file, reason } => write!(f, "{file}: cannot read PCM data: {reason}"),
        }
    }
}

impl std::error::Error for WavError {}

/// The `fmt ` chunk fields that decide whether we can play a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WavFormat {
    /// The format tag (the sub-format's for WAVE_FORMAT_EXTENSIBLE).
    pub tag: u16,
    pub channels: u16,
    pub sample_rate: u32,
    pub bits_per_sample: u16,
}

impl fmt::Display for WavFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.tag {
            FORMAT_PCM => "PCM".to_string(),
            3 => "IEEE float".to_string(),
            2 => "MS ADPCM".to_string(),
            0x11 => "IMA ADPCM".to_string(),
            0x55 => "MP3".to_string(),
            FORMAT_ALAW => "A-law".to_string(),
            FORMAT_ULAW => "µ-law".to_string(),
            t => format!("format tag {t:#06x}"),
        };
        let ch = match self.channels {
            1 => "mono".to_string(),
            2 => "stereo".to_string(),
            n => format!("{n} channels"),
        };
        write!(
            f,
            "{name} {} Hz {ch} {}-bit",
            self.sample_rate, self.bits_per_sample
        )
    }
}

/// Loads a prompt. `file` is only used in error messages.
pub fn load_prompt(file: &str, bytes: &[u8]) -> Result<Samples, WavError> {
    let malformed = |reason| WavError::Malformed {
        file: file.to_string(),
        reason,
    };
    let (format, data) = parse_riff(bytes).map_err(malformed)?;
    let supported = format.channels == 1
        && format.sample_rate == SAMPLE_RATE
        && match format.tag {
            FORMAT_PCM => format.bits_per_sample == 16,
            FORMAT_ALAW | FORMAT_ULAW => format.bits_per_sample == 8,
            _ => false,
        };
    if !supported {
        return Err(WavError::Unsupported {
            file: file.to_string(),
            format,
        });
    }
    match format.tag {
        FORMAT_PCM => {
            let pcm_err = |e: hound::Error| WavError::Pcm {
                file: file.to_string(),
                reason: e.to_string(),
            };
            let reader = hound::WavReader::new(Cursor::new(bytes)).map_err(pcm_err)?;
            reader
                .into_samples::<i16>()
                .collect::<Result<Vec<i16>, _>>()
                .map(Samples::from)
                .map_err(pcm_err)
        }
        tag => {
            let law = if tag == FORMAT_ULAW {
                Law::Ulaw
            } else {
                Law::Alaw
            };
            let mut out = vec![0i16; data.len()];
            law.decode(data, &mut out);
            Ok(out.into())
        }
    }
}

/// Finds the `fmt ` and `data` chunks. The data chunk is cut to the bytes
/// present (writers that stream sometimes leave its length at 0 or too big).
fn parse_riff(b: &[u8]) -> Result<(WavFormat, &[u8]), &'static str> {
    if b.len() < 12 || &b[0..4] != b"RIFF" || &b[8..12] != b"WAVE" {
        return Err("missing RIFF/WAVE header");
    }
    let u16_at = |c: &[u8], i: usize| u16::from_le_bytes([c[i], c[i + 1]]);
    let mut format = None;
    let mut pos = 12;
    while pos + 8 <= b.len() {
        let id = &b[pos..pos + 4];
        let len = u32::from_le_bytes([b[pos + 4], b[pos + 5], b[pos + 6], b[pos + 7]]) as usize;
        let body_start = pos + 8;
        let body_end = body_start.saturating_add(len).min(b.len());
        let body = &b[body_start..body_end];
        if id == b"fmt " {
            if body.len() < 16 {
                return Err("fmt chunk shorter than 16 bytes");
            }
            let mut tag = u16_at(body, 0);
            if tag == FORMAT_EXTENSIBLE && body.len() >= 26 {
                // The sub-format GUID starts with the real format tag.
                tag = u16_at(body, 24);
            }
            format = Some(WavFormat {
                tag,
                channels: u16_at(body, 2),
                sample_rate: u32::from_le_bytes([body[4], body[5], body[6], body[7]]),
                bits_per_sample: u16_at(body, 14),
            });
        } else if id == b"data" {
            let format = format.ok_or("data chunk before fmt chunk")?;
            return Ok((format, body));
        }
        // Chunks are padded to even length.
        pos = body_start.saturating_add(len).saturating_add(len & 1);
    }
    Err(if format.is_some() {
        "no data chunk"
    } else {
        "no fmt chunk"
    })
}

/// A complete 8 kHz mono PCM16 WAV file of `samples`.
pub fn pcm16_wav(samples: &[i16]) -> Vec<u8> {
    let mut out = Cursor::new(Vec::with_capacity(44 + samples.len() * 2));
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: SAMPLE_RATE,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    // Writing to memory cannot fail and 16-bit samples always fit the spec.
    let mut w = hound::WavWriter::new(&mut out, spec).expect("in-memory WAV header");
    let mut w16 = w.get_i16_writer(samples.len() as u32);
    for &s in samples {
        w16.write_sample(s);
    }
    w16.flush().expect("in-memory WAV data");
    w.finalize().expect("in-memory WAV finalize");
    out.into_inner()
}

/// The 44-byte header of an 8 kHz mono PCM16 WAV holding `samples` samples,
/// for recordings streamed to disk: write it first (with 0), append the data,
/// then rewrite it with the final count. Saturates at the 4 GiB RIFF limit.
pub fn wav_header(samples: u64) -> [u8; 44] {
    let data = u32::try_from(samples * 2).unwrap_or(u32::MAX - 36);
    let mut h = [0u8; 44];
    h[0..4].copy_from_slice(b"RIFF");
    h[4..8].copy_from_slice(&(36 + data).to_le_bytes());
    h[8..12].copy_from_slice(b"WAVE");
    h[12..16].copy_from_slice(b"fmt ");
    h[16..20].copy_from_slice(&16u32.to_le_bytes());
    h[20..22].copy_from_slice(&FORMAT_PCM.to_le_bytes());
    h[22..24].copy_from_slice(&1u16.to_le_bytes());
    h[24..28].copy_from_slice(&SAMPLE_RATE.to_le_bytes());
    h[28..32].copy_from_slice(&(SAMPLE_RATE * 2).to_le_bytes());
    h[32..34].copy_from_slice(&2u16.to_le_bytes());
    h[34..36].copy_from_slice(&16u16.to_le_bytes());
    h[36..40].copy_from_slice(b"data");
    h[40..44].copy_from_slice(&data.to_le_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A WAV with an arbitrary format, written by hand (hound cannot write
    /// G.711), with an extra chunk before `data` as real files have.
    fn wav_with(tag: u16, channels: u16, rate: u32, bits: u16, data: &[u8]) -> Vec<u8> {
        let mut b = vec![];
        b.extend_from_slice(b"RIFF");
        b.extend_from_slice(&(4 + 26 + 8 + 3 + 1 + 8 + data.len() as u32).to_le_bytes());
        b.extend_from_slice(b"WAVE");
        b.extend_from_slice(b"fmt ");
        b.extend_from_slice(&18u32.to_le_bytes());
        b.extend_from_slice(&tag.to_le_bytes());
        b.extend_from_slice(&channels.to_le_bytes());
        b.extend_from_slice(&rate.to_le_bytes());
        b.extend_from_slice(&(rate * u32::from(bits / 8) * u32::from(channels)).to_le_bytes());
        b.extend_from_slice(&(bits / 8 * channels).to_le_bytes());
        b.extend_from_slice(&bits.to_le_bytes());
        b.extend_from_slice(&0u16.to_le_bytes());
        b.extend_from_slice(b"LIST");
        b.extend_from_slice(&3u32.to_le_bytes());
        b.extend_from_slice(b"abc\0"); // odd length, padded
        b.extend_from_slice(b"data");
        b.extend_from_slice(&(data.len() as u32).to_le_bytes());
        b.extend_from_slice(data);
        b
    }

    #[test]
    fn pcm16_round_trips_through_hound() {
        let samples: Vec<i16> = (0..800).map(|i| (i * 37 % 2000 - 1000) as i16).collect();
        let bytes = pcm16_wav(&samples);
        assert_eq!(&bytes[..44], &wav_header(800));
        let loaded = load_prompt("rec.wav", &bytes).unwrap();
        assert_eq!(&loaded[..], &samples[..]);
    }

    #[test]
    fn g711_prompts_are_decoded() {
        let codes = [0xFFu8, 0x80, 0x00, 0x7F];
        let u = load_prompt("u.wav", &wav_with(7, 1, 8000, 8, &codes)).unwrap();
        assert_eq!(&u[..], &[0, 32124, -32124, 0]);
        let a = load_prompt("a.wav", &wav_with(6, 1, 8000, 8, &[0xD5])).unwrap();
        assert_eq!(&a[..], &[8]);
    }

    #[test]
    fn unsupported_formats_name_the_actual_format() {
        let cases = [
            (
                wav_with(1, 1, 16000, 16, &[0; 4]),
                "PCM 16000 Hz mono 16-bit",
            ),
            (
                wav_with(1, 2, 8000, 16, &[0; 4]),
                "PCM 8000 Hz stereo 16-bit",
            ),
            (wav_with(1, 1, 8000, 8, &[0; 4]), "PCM 8000 Hz mono 8-bit"),
            (
                wav_with(3, 1, 8000, 32, &[0; 4]),
                "IEEE float 8000 Hz mono 32-bit",
            ),
            (
                wav_with(7, 1, 44100, 8, &[0; 4]),
                "µ-law 44100 Hz mono 8-bit",
            ),
            (
                wav_with(0x55, 1, 8000, 0, &[0; 4]),
                "MP3 8000 Hz mono 0-bit",
            ),
        ];
        for (bytes, want) in cases {
            let err = load_prompt("prompts/hello.wav", &bytes).unwrap_err();
            let msg = err.to_string();
            assert!(
                msg.starts_with("prompts/hello.wav: unsupported audio format"),
                "{msg}"
            );
            assert!(msg.contains(want), "{msg} should name {want}");
        }
    }

    #[test]
    fn malformed_files_are_errors_not_panics() {
        let good = wav_with(7, 1, 8000, 8, &[1, 2, 3]);
        for cut in 0..good.len() {
            let _ = load_prompt("x.wav", &good[..cut]);
        }
        let err = load_prompt("x.wav", b"OggS....").unwrap_err();
        assert_eq!(
            err.to_string(),
            "x.wav: not a usable WAV file: missing RIFF/WAVE header"
        );
        let mut no_data = wav_with(7, 1, 8000, 8, &[]);
        no_data.truncate(no_data.len() - 8);
        assert!(
            load_prompt("x.wav", &no_data)
                .unwrap_err()
                .to_string()
                .contains("no data chunk")
        );
    }

    #[test]
    fn the_shipped_stdlib_prompts_load() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../stdlib/prompts");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "wav") {
                let bytes = std::fs::read(&path).unwrap();
                let s = load_prompt(&path.display().to_string(), &bytes).unwrap();
                assert!(!s.is_empty(), "{}", path.display());
                n += 1;
            }
        }
        assert!(n > 100);
    }
}
