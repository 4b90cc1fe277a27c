//! SDP offer/answer for one G.711 audio stream (RFC 4566, RFC 3264).
//!
//! We parse only what the answer depends on: connection addresses, media
//! lines with their formats, `rtpmap`, `ptime` and the direction
//! attributes. The answer keeps every offered m-line in order (RFC 3264
//! §6): the first usable audio stream is accepted, the rest are refused with
//! port 0. Malformed SDP is an error value, never a panic.

use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};

/// The G.711 codecs we speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum G711 {
    /// µ-law, static payload type 0.
    Pcmu,
    /// A-law, static payload type 8.
    Pcma,
}

impl G711 {
    pub fn name(self) -> &'static str {
        match self {
            G711::Pcmu => "PCMU",
            G711::Pcma => "PCMA",
        }
    }
}

/// Media direction from one side's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    SendRecv,
    SendOnly,
    RecvOnly,
    Inactive,
}

impl Direction {
    fn attr(self) -> &'static str {
        match self {
            Direction::SendRecv => "sendrecv",
            Direction::SendOnly => "sendonly",
            Direction::RecvOnly => "recvonly",
            Direction::Inactive => "inactive",
        }
    }

    /// Our direction in an answer to an offer with direction `self`.
    pub fn answer(self) -> Direction {
        match self {
            Direction::SendRecv => Direction::SendRecv,
            Direction::SendOnly => Direction::RecvOnly,
            Direction::RecvOnly => Direction::SendOnly,
            Direction::Inactive => Direction::Inactive,
        }
    }
}

/// One payload format offered on the audio stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    pub pt: u8,
    /// Encoding name from `rtpmap` (or the static name), e.g. `PCMU`,
    /// `telephone-event`; empty if unknown.
    pub name: String,
    pub clock_rate: u32,
}

/// One m-line, as needed to build the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaLine {
    pub media: String,
    pub port: u16,
    pub proto: String,
    pub formats: Vec<Format>,
    pub connection: Option<IpAddr>,
    pub direction: Option<Direction>,
    pub ptime: Option<u32>,
}

/// A parsed session description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sdp {
    pub connection: Option<IpAddr>,
    pub direction: Option<Direction>,
    pub media: Vec<MediaLine>,
}

/// What the offer and our capabilities agree on: the event payload the
/// endpoint reports as `IncomingCall::offer` and the media layer needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaOffer {
    /// Where to send RTP (an unspecified IP such as 0.0.0.0 means hold).
    pub remote_rtp: SocketAddr,
    /// Every format on the chosen audio line, in the offerer's order.
    pub formats: Vec<Format>,
    /// The codec we picked (first G.711 in the offerer's order) and its PT.
    pub codec: G711,
    pub codec_pt: u8,
    /// The offerer's telephone-event payload type, echoed in our answer.
    pub telephone_event_pt: Option<u8>,
    /// The offerer's ptime, if it gave one. We always send 20 ms.
    pub remote_ptime: Option<u32>,
    /// Our direction: `SendRecv` normally, `RecvOnly` when the peer holds.
    pub direction: Direction,
    /// Index of the accepted m-line (for building the answer).
    pub line: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdpError {
    /// Not SDP, or a line we need is malformed.
    Malformed,
    /// No audio stream with a usable address.
    NoAudio,
    /// Audio offered, but neither PCMU nor PCMA.
    NoCodec,
}

impl std::fmt::Display for SdpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SdpError::Malformed => "malformed SDP",
            SdpError::NoAudio => "no audio stream offered",
            SdpError::NoCodec => "no acceptable codec (PCMU, PCMA)",
        })
    }
}

impl std::error::Error for SdpError {}

/// Bounds that keep a hostile body cheap to parse.
const MAX_MEDIA: usize = 16;
const MAX_FORMATS: usize = 64;

fn parse_connection(v: &str) -> Result<IpAddr, SdpError> {
    // c=IN IP4 192.0.2.4[/ttl]
    let mut it = v.split_ascii_whitespace();
    let (Some("IN"), Some(kind), Some(addr)) = (it.next(), it.next(), it.next()) else {
        return Err(SdpError::Malformed);
    };
    let addr = addr.split('/').next().unwrap_or(addr);
    let ip: IpAddr = addr.parse().map_err(|_| SdpError::Malformed)?;
    match (kind, ip) {
        ("IP4", IpAddr::V4(_)) | ("IP6", IpAddr::V6(_)) => Ok(ip),
        _ => Err(SdpError::Malformed),
    }
}

fn parse_direction(a: &str) -> Option<Direction> {
    Some(match a {
        "sendrecv" => Direction::SendRecv,
        "sendonly" => Direction::SendOnly,
        "recvonly" => Direction::RecvOnly,
        "inactive" => Direction::Inactive,
        _ => return None,
    })
}

fn static_format(pt: u8) -> (&'static str, u32) {
    match pt {
        0 => ("PCMU", 8000),
        8 => ("PCMA", 8000),
        3 => ("GSM", 8000),
        4 => ("G723", 8000),
        9 => ("G722", 8000),
        18 => ("G729", 8000),
        _ => ("", 0),
    }
}

impl Sdp {
    pub fn parse(body: &[u8]) -> Result<Sdp, SdpError> {
        let text = std::str::from_utf8(body).map_err(|_| SdpError::Malformed)?;
        let mut sdp = Sdp {
            connection: None,
            direction: None,
            media: Vec::new(),
        };
        let mut saw_version = false;
        for line in text.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.is_empty() {
                continue;
            }
            let (kind, value) = line.split_once('=').ok_or(SdpError::Malformed)?;
            if kind.len() != 1 {
                return Err(SdpError::Malformed);
            }
            match kind {
                "v" => {
                    if value.trim() != "0" {
                        return Err(SdpError::Malformed);
                    }
                    saw_version = true;
                }
                "c" => {
                    let ip = parse_connection(value)?;
                    match sdp.media.last_mut() {
                        Some(m) => m.connection = Some(ip),
                        None => sdp.connection = Some(ip),
                    }
                }
                "m" => {
                    if sdp.media.len() >= MAX_MEDIA {
                        return Err(SdpError::Malformed);
                    }
                    let mut it = value.split_ascii_whitespace();
                    let (Some(media), Some(port), Some(proto)) = (it.next(), it.next(), it.next())
                    else {
                        return Err(SdpError::Malformed);
                    };
                    // `port/count` is legal; we use the first port.
                    let port: u16 = port
                        .split('/')
                        .next()
                        .and_then(|p| p.parse().ok())
                        .ok_or(SdpError::Malformed)?;
                    let mut formats = Vec::new();
                    for f in it.take(MAX_FORMATS) {
                        // Non-RTP protocols may use non-numeric formats; skip them.
                        if let Ok(pt) = f.parse::<u8>() {
                            let (name, rate) = static_format(pt);
                            formats.push(Format {
                                pt,
                                name: name.to_string(),
                                clock_rate: rate,
                            });
                        }
                    }
                    sdp.media.push(MediaLine {
                        media: media.to_string(),
                        port,
                        proto: proto.to_string(),
                        formats,
                        connection: None,
                        direction: None,
                        ptime: None,
                    });
                }
                "a" => {
                    let (name, val) = value.split_once(':').unwrap_or((value, ""));
                    if let Some(dir) = parse_direction(name) {
                        match sdp.media.last_mut() {
                            Some(m) => m.direction = Some(dir),
                            None => sdp.direction = Some(dir),
                        }
                        continue;
                    }
                    let Some(m) = sdp.media.last_mut() else {
                        continue;
                    };
                    match name {
                        "rtpmap" => {
                            // a=rtpmap:101 telephone-event/8000
                            let mut it = val.split_ascii_whitespace();
                            let (Some(pt), Some(enc)) = (it.next(), it.next()) else {
                                return Err(SdpError::Malformed);
                            };
                            let pt: u8 = pt.parse().map_err(|_| SdpError::Malformed)?;
                            let mut enc = enc.split('/');
                            let ename = enc.next().unwrap_or("");
                            let rate = enc.next().and_then(|r| r.parse().ok()).unwrap_or(0);
                            if let Some(f) = m.formats.iter_mut().find(|f| f.pt == pt) {
                                f.name = ename.to_string();
                                f.clock_rate = rate;
                            }
                        }
                        "ptime" => m.ptime = val.trim().parse().ok(),
                        _ => {}
                    }
                }
                _ => {}
            }
        }
        if !saw_version {
            return Err(SdpError::Malformed);
        }
        Ok(sdp)
    }

    /// Picks the audio stream and codec (RFC 3264 §6.1): the first audio
    /// m-line with a non-zero port and an RTP/AVP profile; PCMU or PCMA in
    /// the offerer's order; telephone-event at 8 kHz if offered.
    pub fn negotiate(&self) -> Result<MediaOffer, SdpError> {
        let mut saw_audio = false;
        for (i, m) in self.media.iter().enumerate() {
            if m.media != "audio" || m.port == 0 || !m.proto.starts_with("RTP/") {
                continue;
            }
            let Some(ip) = m.connection.or(self.connection) else {
                continue;
            };
            saw_audio = true;
            let codec = m.formats.iter().find_map(|f| {
                let g = if f.name.eq_ignore_ascii_case("PCMU") {
                    G711::Pcmu
                } else if f.name.eq_ignore_ascii_case("PCMA") {
                    G711::Pcma
                } else {
                    return None;
                };
                (f.clock_rate == 8000).then_some((g, f.pt))
            });
            let Some((codec, codec_pt)) = codec else {
                continue;
            };
            let telephone_event_pt = m
                .formats
                .iter()
                .find(|f| f.name.eq_ignore_ascii_case("telephone-event") && f.clock_rate == 8000)
                .map(|f| f.pt);
            let offered = m
                .direction
                .or(self.direction)
                .unwrap_or(Direction::SendRecv);
            // An old-style hold (c=0.0.0.0) is a send-only offer.
            let offered = if ip.is_unspecified() && offered == Direction::SendRecv {
                Direction::SendOnly
            } else {
                offered
            };
            return Ok(MediaOffer {
                remote_rtp: SocketAddr::new(ip, m.port),
                formats: m.formats.clone(),
                codec,
                codec_pt,
                telephone_event_pt,
                remote_ptime: m.ptime,
                direction: offered.answer(),
                line: i,
            });
        }
        Err(if saw_audio {
            SdpError::NoCodec
        } else {
            SdpError::NoAudio
        })
    }
}

/// Writes our answer: the accepted line with our address and the chosen
/// codec (and telephone-event), every other line refused with port 0.
pub fn build_answer(
    offer: &Sdp,
    chosen: &MediaOffer,
    local: SocketAddr,
    session_id: u64,
    version: u64,
) -> Vec<u8> {
    let ip = local.ip();
    let fam = if ip.is_ipv4() { "IP4" } else { "IP6" };
    let mut s = String::with_capacity(320);
    // Writing to a String cannot fail.
    let _ = write!(
        s,
        "v=0\r\no=vflow {session_id} {version} IN {fam} {ip}\r\ns=vflow\r\nc=IN {fam} {ip}\r\nt=0 0\r\n"
    );
    for (i, m) in offer.media.iter().enumerate() {
        if i != chosen.line {
            let fmt = m.formats.first().map_or(0, |f| f.pt);
            let _ = write!(s, "m={} 0 {} {fmt}\r\n", m.media, m.proto);
            continue;
        }
        let _ = write!(
            s,
            "m=audio {} {} {}",
            local.port(),
            m.proto,
            chosen.codec_pt
        );
        if let Some(te) = chosen.telephone_event_pt {
            let _ = write!(s, " {te}");
        }
        let _ = write!(
            s,
            "\r\na=rtpmap:{} {}/8000\r\n",
            chosen.codec_pt,
            chosen.codec.name()
        );
        if let Some(te) = chosen.telephone_event_pt {
            let _ = write!(
                s,
                "a=rtpmap:{te} telephone-event/8000\r\na=fmtp:{te} 0-16\r\n"
            );
        }
        let _ = write!(s, "a=ptime:20\r\na={}\r\n", chosen.direction.attr());
    }
    s.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 192.0.2.4\r\ns=-\r\nc=IN IP4 192.0.2.4\r\nt=0 0\r\n\
m=audio 49170 RTP/AVP 18 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\n\
a=ptime:30\r\nm=video 3227 RTP/AVP 31\r\n";

    #[test]
    fn picks_first_g711_in_offer_order_and_echoes_event_pt() {
        let sdp = Sdp::parse(OFFER.as_bytes()).unwrap();
        let o = sdp.negotiate().unwrap();
        assert_eq!(o.codec, G711::Pcma);
        assert_eq!(o.codec_pt, 8);
        assert_eq!(o.telephone_event_pt, Some(101));
        assert_eq!(o.remote_rtp, "192.0.2.4:49170".parse().unwrap());
        assert_eq!(o.remote_ptime, Some(30));
        let ans = build_answer(&sdp, &o, "10.0.0.1:20000".parse().unwrap(), 7, 1);
        let ans = String::from_utf8(ans).unwrap();
        assert!(ans.contains("m=audio 20000 RTP/AVP 8 101\r\n"), "{ans}");
        assert!(ans.contains("a=rtpmap:101 telephone-event/8000"));
        assert!(ans.contains("a=ptime:20"));
        assert!(ans.contains("m=video 0 RTP/AVP 31\r\n"));
        // The answer is itself valid SDP.
        let back = Sdp::parse(ans.as_bytes()).unwrap().negotiate().unwrap();
        assert_eq!(back.codec, G711::Pcma);
    }

    #[test]
    fn dynamic_pcmu_and_hold() {
        let sdp = "v=0\r\nc=IN IP4 0.0.0.0\r\nm=audio 4000 RTP/AVP 96\r\na=rtpmap:96 PCMU/8000\r\n";
        let o = Sdp::parse(sdp.as_bytes()).unwrap().negotiate().unwrap();
        assert_eq!((o.codec, o.codec_pt), (G711::Pcmu, 96));
        assert_eq!(o.direction, Direction::RecvOnly);
        let sdp = "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 4000 RTP/AVP 0\r\na=inactive\r\n";
        let o = Sdp::parse(sdp.as_bytes()).unwrap().negotiate().unwrap();
        assert_eq!(o.direction, Direction::Inactive);
    }

    #[test]
    fn errors() {
        let no_codec = "v=0\r\nc=IN IP4 1.2.3.4\r\nm=audio 4000 RTP/AVP 18 9\r\n";
        assert_eq!(
            Sdp::parse(no_codec.as_bytes()).unwrap().negotiate(),
            Err(SdpError::NoCodec)
        );
        let no_audio = "v=0\r\nc=IN IP4 1.2.3.4\r\nm=video 4000 RTP/AVP 31\r\n";
        assert_eq!(
            Sdp::parse(no_audio.as_bytes()).unwrap().negotiate(),
            Err(SdpError::NoAudio)
        );
        for bad in [
            "",
            "hello",
            "v=0\r\nc=IN IP4 999.1.1.1\r\n",
            "v=0\r\nm=audio x RTP/AVP 0\r\n",
            "v=0\r\nm=audio 1 RTP/AVP 0\r\na=rtpmap:zz PCMU/8000\r\n",
            "v=1\r\n",
        ] {
            assert_eq!(
                Sdp::parse(bad.as_bytes()),
                Err(SdpError::Malformed),
                "{bad:?}"
            );
        }
        assert_eq!(Sdp::parse(&[0xff, 0xfe]), Err(SdpError::Malformed));
    }
}
