//! SIP messages as data: parsing bytes into a [`Message`] and writing responses
//! and requests back out.
//!
//! The parser is deliberately small and total: every input either yields a
//! [`Message`] or a [`ParseError`], never a panic (see `fuzz/` and
//! `tests/sip_torture.rs`). It is tolerant where RFC 3261 is (case-insensitive
//! and compact header names, whitespace around the colon, folded lines, bare
//! LF line ends) and strict where a wrong guess would be dangerous (the start
//! line, the protocol version, Content-Length).
//!
//! Header values are kept as text; typed views over them live in
//! [`super::header`]. Comma-separated lists are split on demand by
//! [`Headers::get_all`], which respects quoted strings and `<…>`.

use std::fmt;

/// Upper bound on the size of one message we accept (bytes). UDP datagrams
/// cannot exceed 65,535; TCP framing uses the same bound.
pub const MAX_MESSAGE: usize = 65_535;
/// Upper bound on the number of header fields (after unfolding).
pub const MAX_HEADERS: usize = 256;

/// A SIP method. Methods are case-sensitive (RFC 3261 §7.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Method {
    Invite,
    Ack,
    Bye,
    Cancel,
    Options,
    Register,
    Refer,
    Notify,
    Subscribe,
    Info,
    Update,
    Prack,
    Message,
    Publish,
    /// Any other token.
    Other(String),
}

impl Method {
    /// Parses a method token. `None` if `s` is not a valid token.
    pub fn parse(s: &str) -> Option<Method> {
        if s.is_empty() || !s.bytes().all(is_token_byte) {
            return None;
        }
        Some(match s {
            "INVITE" => Method::Invite,
            "ACK" => Method::Ack,
            "BYE" => Method::Bye,
            "CANCEL" => Method::Cancel,
            "OPTIONS" => Method::Options,
            "REGISTER" => Method::Register,
            "REFER" => Method::Refer,
            "NOTIFY" => Method::Notify,
            "SUBSCRIBE" => Method::Subscribe,
            "INFO" => Method::Info,
            "UPDATE" => Method::Update,
            "PRACK" => Method::Prack,
            "MESSAGE" => Method::Message,
            "PUBLISH" => Method::Publish,
            other => Method::Other(other.to_string()),
        })
    }

    pub fn as_str(&self) -> &str {
        match self {
            Method::Invite => "INVITE",
            Method::Ack => "ACK",
            Method::Bye => "BYE",
            Method::Cancel => "CANCEL",
            Method::Options => "OPTIONS",
            Method::Register => "REGISTER",
            Method::Refer => "REFER",
            Method::Notify => "NOTIFY",
            Method::Subscribe => "SUBSCRIBE",
            Method::Info => "INFO",
            Method::Update => "UPDATE",
            Method::Prack => "PRACK",
            Method::Message => "MESSAGE",
            Method::Publish => "PUBLISH",
            Method::Other(s) => s,
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A header field name. Known names are matched case-insensitively and in
/// their compact forms (RFC 3261 §7.3.3 and the registry), so code compares
/// enum values, never strings.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum HeaderName {
    Accept,
    Allow,
    AllowEvents,
    CallId,
    Contact,
    ContentEncoding,
    ContentLength,
    ContentType,
    CSeq,
    Diversion,
    Event,
    Expires,
    From,
    HistoryInfo,
    MaxForwards,
    RecordRoute,
    ReferTo,
    ReferredBy,
    Require,
    Route,
    Server,
    Subject,
    SubscriptionState,
    Supported,
    To,
    Unsupported,
    UserAgent,
    Via,
    /// Any other name, as written.
    Other(String),
}

impl HeaderName {
    /// Maps a header name (any case, compact or long form) to a `HeaderName`.
    pub fn parse(name: &str) -> HeaderName {
        // Compact forms first: single letters.
        if name.len() == 1 {
            let c = name.as_bytes()[0].to_ascii_lowercase();
            let h = match c {
                b'i' => Some(HeaderName::CallId),
                b'm' => Some(HeaderName::Contact),
                b'e' => Some(HeaderName::ContentEncoding),
                b'l' => Some(HeaderName::ContentLength),
                b'c' => Some(HeaderName::ContentType),
                b'f' => Some(HeaderName::From),
                b's' => Some(HeaderName::Subject),
                b'k' => Some(HeaderName::Supported),
                b't' => Some(HeaderName::To),
                b'v' => Some(HeaderName::Via),
                b'r' => Some(HeaderName::ReferTo),
                b'o' => Some(HeaderName::Event),
                b'u' => Some(HeaderName::AllowEvents),
                b'b' => Some(HeaderName::ReferredBy),
                _ => None,
            };
            if let Some(h) = h {
                return h;
            }
        }
        const LONG: &[(&str, HeaderName)] = &[
            ("via", HeaderName::Via),
            ("from", HeaderName::From),
            ("to", HeaderName::To),
            ("call-id", HeaderName::CallId),
            ("cseq", HeaderName::CSeq),
            ("contact", HeaderName::Contact),
            ("max-forwards", HeaderName::MaxForwards),
            ("content-length", HeaderName::ContentLength),
            ("content-type", HeaderName::ContentType),
            ("content-encoding", HeaderName::ContentEncoding),
            ("accept", HeaderName::Accept),
            ("allow", HeaderName::Allow),
            ("allow-events", HeaderName::AllowEvents),
            ("diversion", HeaderName::Diversion),
            ("event", HeaderName::Event),
            ("expires", HeaderName::Expires),
            ("history-info", HeaderName::HistoryInfo),
            ("record-route", HeaderName::RecordRoute),
            ("refer-to", HeaderName::ReferTo),
            ("referred-by", HeaderName::ReferredBy),
            ("require", HeaderName::Require),
            ("route", HeaderName::Route),
            ("server", HeaderName::Server),
            ("subject", HeaderName::Subject),
            ("subscription-state", HeaderName::SubscriptionState),
            ("supported", HeaderName::Supported),
            ("unsupported", HeaderName::Unsupported),
            ("user-agent", HeaderName::UserAgent),
        ];
        for (long, h) in LONG {
            if name.eq_ignore_ascii_case(long) {
                return h.clone();
            }
        }
        HeaderName::Other(name.to_string())
    }

    /// The canonical long form, used when writing.
    pub fn as_str(&self) -> &str {
        match self {
            HeaderName::Accept => "Accept",
            HeaderName::Allow => "Allow",
            HeaderName::AllowEvents => "Allow-Events",
            HeaderName::CallId => "Call-ID",
            HeaderName::Contact => "Contact",
            HeaderName::ContentEncoding => "Content-Encoding",
            HeaderName::ContentLength => "Content-Length",
            HeaderName::ContentType => "Content-Type",
            HeaderName::CSeq => "CSeq",
            HeaderName::Diversion => "Diversion",
            HeaderName::Event => "Event",
            HeaderName::Expires => "Expires",
            HeaderName::From => "From",
            HeaderName::HistoryInfo => "History-Info",
            HeaderName::MaxForwards => "Max-Forwards",
            HeaderName::RecordRoute => "Record-Route",
            HeaderName::ReferTo => "Refer-To",
            HeaderName::ReferredBy => "Referred-By",
            HeaderName::Require => "Require",
            HeaderName::Route => "Route",
            HeaderName::Server => "Server",
            HeaderName::Subject => "Subject",
            HeaderName::SubscriptionState => "Subscription-State",
            HeaderName::Supported => "Supported",
            HeaderName::To => "To",
            HeaderName::Unsupported => "Unsupported",
            HeaderName::UserAgent => "User-Agent",
            HeaderName::Via => "Via",
            HeaderName::Other(s) => s,
        }
    }

    /// Whether several values of this header may share one line, separated by
    /// commas (RFC 3261 §7.3.1). Only these are split by [`Headers::get_all`].
    pub fn is_list(&self) -> bool {
        matches!(
            self,
            HeaderName::Via
                | HeaderName::Contact
                | HeaderName::Route
                | HeaderName::RecordRoute
                | HeaderName::Allow
                | HeaderName::AllowEvents
                | HeaderName::Accept
                | HeaderName::Supported
                | HeaderName::Require
                | HeaderName::Unsupported
                | HeaderName::Diversion
                | HeaderName::HistoryInfo
                | HeaderName::ContentEncoding
        )
    }
}

/// The header fields of a message, in order, after unfolding.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers {
    fields: Vec<(HeaderName, String)>,
}

impl Headers {
    pub fn new() -> Headers {
        Headers::default()
    }

    pub fn push(&mut self, name: HeaderName, value: impl Into<String>) {
        self.fields.push((name, value.into()));
    }

    /// The first value of `name` (the whole line; not split at commas).
    pub fn get(&self, name: &HeaderName) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first element of `name`, splitting comma lists.
    pub fn first<'a>(&'a self, name: &'a HeaderName) -> Option<&'a str> {
        self.get_all(name).next()
    }

    /// Every value of `name` in order; list headers are split at top-level
    /// commas.
    pub fn get_all<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        let split = name.is_list();
        self.fields
            .iter()
            .filter(move |(n, _)| n == name)
            .flat_map(move |(_, v)| {
                let parts: Vec<&str> = if split {
                    split_commas(v).collect()
                } else {
                    vec![v.as_str()]
                };
                parts.into_iter()
            })
    }

    /// Every raw line of `name` (unsplit), in order.
    pub fn lines<'a>(&'a self, name: &'a HeaderName) -> impl Iterator<Item = &'a str> + 'a {
        self.fields
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn count(&self, name: &HeaderName) -> usize {
        self.fields.iter().filter(|(n, _)| n == name).count()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&HeaderName, &str)> {
        self.fields.iter().map(|(n, v)| (n, v.as_str()))
    }

    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }
}

/// Splits a header value at commas that are outside quoted strings and
/// `<…>`. Empty elements are skipped; elements are trimmed.
pub fn split_commas(value: &str) -> impl Iterator<Item = &str> {
    let bytes = value.as_bytes();
    let mut parts = Vec::new();
    let mut start = 0;
    let mut in_quote = false;
    let mut in_angle = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_quote {
            if b == b'\\' {
                i += 1;
            } else if b == b'"' {
                in_quote = false;
            }
        } else if b == b'"' {
            in_quote = true;
        } else if b == b'<' {
            in_angle = true;
        } else if b == b'>' {
            in_angle = false;
        } else if b == b',' && !in_angle {
            // `i` indexes an ASCII byte, so both slices are on char boundaries.
            parts.push(&value[start..i]);
            start = i + 1;
        }
        i += 1;
    }
    if start <= value.len() {
        parts.push(&value[start..]);
    }
    parts.into_iter().map(str::trim).filter(|s| !s.is_empty())
}

/// A request line: method, Request-URI (as text; see [`super::header::Uri`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub method: Method,
    pub uri: String,
    pub headers: Headers,
    pub body: Vec<u8>,
}

/// A response: status code, reason phrase.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub reason: String,
    pub headers: Headers,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Request(Request),
    Response(Response),
}

impl Message {
    pub fn headers(&self) -> &Headers {
        match self {
            Message::Request(r) => &r.headers,
            Message::Response(r) => &r.headers,
        }
    }
}

/// Why a message could not be parsed. The endpoint answers a request that
/// fails with 400 (or 505 for [`ParseError::Version`]) when enough of it was
/// readable to address a response; otherwise it drops the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Nothing but whitespace / CRLF keep-alives.
    Empty,
    TooLarge,
    /// No blank line ends the header section.
    Incomplete,
    BadStartLine,
    /// A protocol version other than SIP/2.0.
    Version,
    BadStatus,
    BadHeader,
    TooManyHeaders,
    BadContentLength,
    /// The datagram holds fewer body bytes than Content-Length says.
    BodyTooShort,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ParseError::Empty => "empty message",
            ParseError::TooLarge => "message too large",
            ParseError::Incomplete => "no end of headers",
            ParseError::BadStartLine => "malformed start line",
            ParseError::Version => "unsupported SIP version",
            ParseError::BadStatus => "malformed status code",
            ParseError::BadHeader => "malformed header field",
            ParseError::TooManyHeaders => "too many header fields",
            ParseError::BadContentLength => "malformed Content-Length",
            ParseError::BodyTooShort => "body shorter than Content-Length",
        })
    }
}

impl std::error::Error for ParseError {}

/// A parse failure together with whatever of the message was readable, so
/// that the caller can still address a 400 response.
#[derive(Debug, Clone)]
pub struct Malformed {
    pub error: ParseError,
    /// The method, if the start line was a request line.
    pub method: Option<Method>,
    /// The header fields that parsed before (and after) the error.
    pub headers: Headers,
}

/// RFC 3261 `token` characters.
pub fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b)
}

/// Finds the end of the header section: the index just past the empty line,
/// and the index of the line feed that ends the last header line. Accepts CRLF and bare LF.
pub fn find_header_end(buf: &[u8]) -> Option<(usize, usize)> {
    let mut i = 0;
    while let Some(off) = buf
        .get(i..)
        .and_then(|s| s.iter().position(|&b| b == b'\n'))
    {
        let nl = i + off;
        // The next line starts at nl + 1; it is empty if it is "\r\n" or "\n".
        match buf.get(nl + 1) {
            Some(b'\n') => return Some((nl + 2, nl)),
            Some(b'\r') if buf.get(nl + 2) == Some(&b'\n') => return Some((nl + 3, nl)),
            _ => {}
        }
        i = nl + 1;
    }
    None
}

/// Parses one message. `datagram` selects the RFC 3261 §18.3 rules for a
/// message that arrived as a whole UDP datagram (no Content-Length means "the
/// rest"; extra bytes past Content-Length are discarded). Stream transports
/// hand over exactly one framed message (see [`super::framing`]).
pub fn parse(buf: &[u8], datagram: bool) -> Result<Message, Box<Malformed>> {
    let fail = |error, method, headers| {
        Box::new(Malformed {
            error,
            method,
            headers,
        })
    };
    if buf.len() > MAX_MESSAGE {
        return Err(fail(ParseError::TooLarge, None, Headers::new()));
    }
    // Leading CRLFs are allowed (and are keep-alives on their own).
    let lead = buf
        .iter()
        .take_while(|b| matches!(b, b'\r' | b'\n'))
        .count();
    let buf = &buf[lead..];
    if buf.is_empty() {
        return Err(fail(ParseError::Empty, None, Headers::new()));
    }
    let Some((body_start, head_end)) = find_header_end(buf) else {
        return Err(fail(ParseError::Incomplete, None, Headers::new()));
    };
    let head = String::from_utf8_lossy(&buf[..head_end]);
    let mut lines = head.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let start = lines.next().unwrap_or("");

    let start = parse_start_line(start);

    // Unfold and split the header lines.
    let mut headers = Headers::new();
    let mut header_err = None;
    let mut current: Option<(HeaderName, String)> = None;
    for line in lines {
        if line.starts_with([' ', '\t']) {
            match current.as_mut() {
                Some((_, v)) => {
                    let cont = line.trim();
                    if !cont.is_empty() {
                        if !v.is_empty() {
                            v.push(' ');
                        }
                        v.push_str(cont);
                    }
                }
                None => header_err = header_err.or(Some(ParseError::BadHeader)),
            }
            continue;
        }
        if let Some(h) = current.take() {
            headers.fields.push(h);
        }
        if headers.len() >= MAX_HEADERS {
            header_err = header_err.or(Some(ParseError::TooManyHeaders));
            break;
        }
        let Some(colon) = line.find(':') else {
            header_err = header_err.or(Some(ParseError::BadHeader));
            continue;
        };
        let name = line[..colon].trim_end_matches([' ', '\t']);
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            header_err = header_err.or(Some(ParseError::BadHeader));
            continue;
        }
        current = Some((
            HeaderName::parse(name),
            line[colon + 1..].trim().to_string(),
        ));
    }
    if let Some(h) = current.take() {
        headers.fields.push(h);
    }

    let (method, start) = match start {
        Ok(Start::Req(m, uri)) => (Some(m.clone()), Start::Req(m, uri)),
        Ok(Start::Resp(c, r)) => (None, Start::Resp(c, r)),
        Err((e, m)) => return Err(fail(e, m, headers)),
    };
    if let Some(e) = header_err {
        return Err(fail(e, method, headers));
    }

    // Content-Length: at most one distinct value, all digits, within bounds.
    let mut content_length: Option<usize> = None;
    let mut bad_length = false;
    for v in headers.lines(&HeaderName::ContentLength) {
        match (parse_decimal(v, MAX_MESSAGE as u64), content_length) {
            (Some(n), Some(prev)) if n as usize != prev => bad_length = true,
            (Some(n), _) => content_length = Some(n as usize),
            (None, _) => bad_length = true,
        }
    }
    if bad_length {
        return Err(fail(ParseError::BadContentLength, method, headers));
    }
    let rest = &buf[body_start..];
    let body = match content_length {
        Some(n) if rest.len() < n => return Err(fail(ParseError::BodyTooShort, method, headers)),
        Some(n) => rest[..n].to_vec(),
        None if datagram => rest.to_vec(),
        None => Vec::new(),
    };

    Ok(match start {
        Start::Req(method, uri) => Message::Request(Request {
            method,
            uri,
            headers,
            body,
        }),
        Start::Resp(status, reason) => Message::Response(Response {
            status,
            reason,
            headers,
            body,
        }),
    })
}

enum Start {
    Req(Method, String),
    Resp(u16, String),
}

/// `Method SP Request-URI SP SIP/2.0` or `SIP/2.0 SP Status SP Reason`.
/// Single spaces only, as RFC 3261 §7.1 requires (RFC 4475 §3.1.2.6-8).
fn parse_start_line(line: &str) -> Result<Start, (ParseError, Option<Method>)> {
    if let Some(rest) = line.strip_prefix("SIP/") {
        return parse_status_line(rest).map_err(|e| (e, None));
    }
    let mut parts = line.split(' ');
    let method = parts
        .next()
        .and_then(Method::parse)
        .ok_or((ParseError::BadStartLine, None))?;
    let err = |e| Err((e, Some(method.clone())));
    let (Some(uri), Some(version), None) = (parts.next(), parts.next(), parts.next()) else {
        return err(ParseError::BadStartLine);
    };
    // A URI has a scheme and no whitespace or angle brackets.
    let Some(colon) = uri.find(':') else {
        return err(ParseError::BadStartLine);
    };
    let scheme = &uri[..colon];
    if scheme.is_empty()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
        || uri
            .bytes()
            .any(|b| b <= b' ' || b == b'<' || b == b'>' || b == 0x7f)
    {
        return err(ParseError::BadStartLine);
    }
    match version.strip_prefix("SIP/") {
        Some("2.0") => {}
        Some(v) if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit() || b == b'.') => {
            return err(ParseError::Version);
        }
        _ => return err(ParseError::BadStartLine),
    }
    Ok(Start::Req(method, uri.to_string()))
}

fn parse_status_line(rest: &str) -> Result<Start, ParseError> {
    {
        let (version, rest) = rest.split_once(' ').ok_or(ParseError::BadStartLine)?;
        if version != "2.0" {
            return Err(ParseError::Version);
        }
        let (code, reason) = rest.split_once(' ').unwrap_or((rest, ""));
        if code.len() != 3 {
            return Err(ParseError::BadStatus);
        }
        let status = parse_decimal(code, 699).ok_or(ParseError::BadStatus)? as u16;
        if status < 100 {
            return Err(ParseError::BadStatus);
        }
        Ok(Start::Resp(status, reason.to_string()))
    }
}

/// A decimal number of at most `max`, written with digits only (leading
/// zeros allowed, no sign).
pub fn parse_decimal(s: &str, max: u64) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut n: u64 = 0;
    for b in s.bytes() {
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
        if n > max {
            return None;
        }
    }
    Some(n)
}

/// Writes a message. Used for requests we send and in tests; responses to
/// requests are built by [`super::endpoint`] directly into a buffer.
impl Message {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        let (headers, body) = match self {
            Message::Request(r) => {
                out.extend_from_slice(r.method.as_str().as_bytes());
                out.push(b' ');
                out.extend_from_slice(r.uri.as_bytes());
                out.extend_from_slice(b" SIP/2.0\r\n");
                (&r.headers, &r.body)
            }
            Message::Response(r) => {
                out.extend_from_slice(format!("SIP/2.0 {} {}\r\n", r.status, r.reason).as_bytes());
                (&r.headers, &r.body)
            }
        };
        for (name, value) in headers.iter() {
            if *name == HeaderName::ContentLength {
                continue;
            }
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        out.extend_from_slice(body);
        out
    }
}

/// Standard reason phrases for the status codes we send.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Trying",
        180 => "Ringing",
        183 => "Session Progress",
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        415 => "Unsupported Media Type",
        416 => "Unsupported URI Scheme",
        420 => "Bad Extension",
        480 => "Temporarily Unavailable",
        481 => "Call/Transaction Does Not Exist",
        482 => "Loop Detected",
        483 => "Too Many Hops",
        486 => "Busy Here",
        487 => "Request Terminated",
        488 => "Not Acceptable Here",
        489 => "Bad Event",
        491 => "Request Pending",
        500 => "Server Internal Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "Version Not Supported",
        600 => "Busy Everywhere",
        603 => "Decline",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(text: &str) -> Request {
        match parse(text.replace('\n', "\r\n").as_bytes(), true) {
            Ok(Message::Request(r)) => r,
            other => panic!("not a request: {other:?}"),
        }
    }

    #[test]
    fn compact_forms_folding_and_case() {
        let r = req("INVITE sip:201@example.com SIP/2.0\n\
v: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\n\
VIA: SIP/2.0/UDP 192.0.2.2;branch=z9hG4bK2, SIP/2.0/UDP 192.0.2.3\n\
f: <sip:a@b>;tag=1\n\
t: <sip:201@example.com>\n\
i: abc@host\n\
cseq: 1\n  INVITE\n\
Max-Forwards   : 70\n\
l: 0\n\n");
        assert_eq!(r.method, Method::Invite);
        let vias: Vec<_> = r.headers.get_all(&HeaderName::Via).collect();
        assert_eq!(vias.len(), 3);
        assert_eq!(r.headers.get(&HeaderName::CSeq), Some("1 INVITE"));
        assert_eq!(r.headers.get(&HeaderName::MaxForwards), Some("70"));
        assert_eq!(r.headers.get(&HeaderName::CallId), Some("abc@host"));
    }

    #[test]
    fn content_length_rules() {
        let base = "OPTIONS sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKx\r\n";
        // Longer datagram: trimmed.
        let m = parse(
            format!("{base}Content-Length: 2\r\n\r\nabcdef").as_bytes(),
            true,
        )
        .unwrap();
        let Message::Request(r) = m else { panic!() };
        assert_eq!(r.body, b"ab");
        // Shorter: rejected.
        let e = parse(
            format!("{base}Content-Length: 9\r\n\r\nabc").as_bytes(),
            true,
        )
        .unwrap_err();
        assert_eq!(e.error, ParseError::BodyTooShort);
        // Absent over UDP: the rest.
        let Message::Request(r) = parse(format!("{base}\r\nxyz").as_bytes(), true).unwrap() else {
            panic!()
        };
        assert_eq!(r.body, b"xyz");
        // Two different values.
        let e = parse(
            format!("{base}Content-Length: 1\r\nl: 2\r\n\r\nabc").as_bytes(),
            true,
        )
        .unwrap_err();
        assert_eq!(e.error, ParseError::BadContentLength);
        // Huge and negative.
        for v in ["99999999999999999999999", "-5"] {
            let e = parse(
                format!("{base}Content-Length: {v}\r\n\r\n").as_bytes(),
                true,
            );
            assert_eq!(e.unwrap_err().error, ParseError::BadContentLength);
        }
    }

    #[test]
    fn start_lines() {
        assert!(matches!(
            parse(b"SIP/2.0 200 OK\r\nl: 0\r\n\r\n", true),
            Ok(Message::Response(Response { status: 200, .. }))
        ));
        assert!(matches!(
            parse(b"SIP/2.0 100 \r\n\r\n", true),
            Ok(Message::Response(Response { status: 100, .. }))
        ));
        for bad in [
            "SIP/2.0 4294967301 Big\r\n\r\n",
            "SIP/2.0 99 Low\r\n\r\n",
            "INVITE  sip:a@b SIP/2.0\r\n\r\n",
            "INVITE sip:a@b SIP/2.0 \r\n\r\n",
            "INVITE <sip:a@b> SIP/2.0\r\n\r\n",
            "INVITE sip:a@b\r\n\r\n",
        ] {
            assert!(parse(bad.as_bytes(), true).is_err(), "{bad:?}");
        }
        let e = parse(b"INVITE sip:a@b SIP/7.0\r\nCall-ID: x\r\n\r\n", true).unwrap_err();
        assert_eq!(e.error, ParseError::Version);
        assert_eq!(e.method, Some(Method::Invite));
        assert_eq!(e.headers.get(&HeaderName::CallId), Some("x"));
    }

    #[test]
    fn comma_split_respects_quotes_and_angles() {
        let parts: Vec<_> = split_commas("\"a, b\" <sip:x@y;p=1,2>;q=1 , <sip:z@w>,,").collect();
        assert_eq!(parts, vec!["\"a, b\" <sip:x@y;p=1,2>;q=1", "<sip:z@w>"]);
    }

    #[test]
    fn round_trip() {
        let r = req(
            "BYE sip:a@b SIP/2.0\nVia: SIP/2.0/UDP h;branch=z9hG4bKq\nCall-ID: c\nContent-Length: 3\n\nabc",
        );
        let bytes = Message::Request(r.clone()).to_bytes();
        assert_eq!(parse(&bytes, true).unwrap(), Message::Request(r));
    }
}
