//! Typed views over header values: URIs, name-addr headers (From, To,
//! Contact, Diversion, History-Info, Refer-To), Via, CSeq and parameters.
//!
//! Each `parse` returns `None` on malformed input rather than guessing; the
//! endpoint turns a missing mandatory header into a 400.

use super::message::{Method, is_token_byte, parse_decimal};

/// Header or URI parameters: `;name=value;flag`. Names are lowercased;
/// quoted values are unquoted.
pub type Params = Vec<(String, Option<String>)>;

/// Looks a parameter up by (lowercase) name. A flag without value gives
/// `Some("")`.
pub fn param<'a>(params: &'a Params, name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_deref().unwrap_or(""))
}

/// Parses `;a=b ; c ;d = "e"` (leading `;` optional). Stops at a `,`
/// outside quotes (the caller has already split lists).
pub fn parse_params(s: &str) -> Params {
    let mut out = Vec::new();
    for part in split_unquoted(s, b';') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        match part.split_once('=') {
            Some((n, v)) => {
                let v = v.trim();
                let v = unquote(v).unwrap_or_else(|| v.to_string());
                out.push((n.trim().to_ascii_lowercase(), Some(v)));
            }
            None => out.push((part.to_ascii_lowercase(), None)),
        }
    }
    out
}

/// Like [`parse_params`], but `None` if a parameter is empty (`;;`) or has
/// an empty name, as in RFC 4475 §3.1.2.1. Used for header parameters.
pub fn parse_params_strict(s: &str) -> Option<Params> {
    let s = s.trim();
    if s.is_empty() {
        return Some(Vec::new());
    }
    let s = s.strip_prefix(';')?;
    for part in split_unquoted(s, b';') {
        let name = part.split('=').next().unwrap_or("").trim();
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return None;
        }
    }
    Some(parse_params(s))
}

/// Splits at `sep` outside double quotes.
fn split_unquoted(s: &str, sep: u8) -> Vec<&str> {
    let b = s.as_bytes();
    let mut parts = Vec::new();
    let (mut start, mut q, mut i) = (0, false, 0);
    while i < b.len() {
        match b[i] {
            b'\\' if q => i += 1,
            b'"' => q = !q,
            c if c == sep && !q => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    parts.push(s.get(start..).unwrap_or(""));
    parts
}

/// `"a \" b"` → `a " b`. `None` if `s` is not a complete quoted string.
pub fn unquote(s: &str) -> Option<String> {
    let inner = s.strip_prefix('"')?;
    let mut out = String::new();
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push(chars.next()?),
            '"' => return chars.as_str().trim().is_empty().then_some(out),
            c => out.push(c),
        }
    }
    None
}

/// `%XX` unescaping (RFC 3261 §19.1.2). Malformed escapes are kept as
/// written (RFC 4475 §3.1.1.5: `%` need not start an escape everywhere).
pub fn unescape(s: &str) -> String {
    if !s.contains('%') {
        return s.to_string();
    }
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && let (Some(h), Some(l)) = (
                b.get(i + 1).and_then(|c| (*c as char).to_digit(16)),
                b.get(i + 2).and_then(|c| (*c as char).to_digit(16)),
            )
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A SIP, SIPS or tel URI, split into the parts we use. Other schemes keep
/// only `scheme` and `raw`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uri {
    /// Lowercased scheme.
    pub scheme: String,
    /// The user part, unescaped (for tel: the number).
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    pub params: Params,
    /// Whether a SIP URI carries `?headers` (not allowed in a Request-URI).
    pub has_headers: bool,
    /// The URI as written.
    pub raw: String,
}

impl Uri {
    pub fn parse(s: &str) -> Option<Uri> {
        let s = s.trim();
        let (scheme, rest) = s.split_once(':')?;
        if scheme.is_empty()
            || !scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b))
            || s.bytes().any(|b| b <= b' ')
        {
            return None;
        }
        let scheme = scheme.to_ascii_lowercase();
        let mut uri = Uri {
            scheme,
            user: None,
            host: String::new(),
            port: None,
            params: Vec::new(),
            has_headers: false,
            raw: s.to_string(),
        };
        match uri.scheme.as_str() {
            "sip" | "sips" => {
                let (userinfo, hostpart) = match rest.find('@') {
                    Some(at) => (Some(&rest[..at]), &rest[at + 1..]),
                    None => (None, rest),
                };
                if let Some(ui) = userinfo {
                    let user = ui.split_once(':').map_or(ui, |(u, _)| u);
                    if user.is_empty() {
                        return None;
                    }
                    uri.user = Some(unescape(user));
                }
                uri.has_headers = hostpart.contains('?');
                let hostpart = hostpart.split_once('?').map_or(hostpart, |(h, _)| h);
                let (hostport, params) = hostpart.split_once(';').unwrap_or((hostpart, ""));
                let (host, port) = split_host_port(hostport)?;
                uri.host = host.to_ascii_lowercase();
                uri.port = port;
                uri.params = parse_params(params);
            }
            "tel" => {
                let (num, params) = rest.split_once(';').unwrap_or((rest, ""));
                if num.is_empty() {
                    return None;
                }
                uri.user = Some(unescape(num));
                uri.params = parse_params(params);
            }
            _ => {
                if rest.is_empty() {
                    return None;
                }
            }
        }
        Some(uri)
    }

    pub fn is_sip(&self) -> bool {
        matches!(self.scheme.as_str(), "sip" | "sips" | "tel")
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`. The host must be non-empty and
/// made of host characters.
pub fn split_host_port(s: &str) -> Option<(&str, Option<u16>)> {
    let s = s.trim();
    let (host, port) = if s.starts_with('[') {
        let end = s.find(']')?;
        let host = &s[..=end];
        match &s[end + 1..] {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':')?)),
        }
    } else {
        match s.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (s, None),
        }
    };
    let ok_host = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.[]:_".contains(&b));
    if !ok_host {
        return None;
    }
    let port = match port {
        Some(p) => Some(parse_decimal(p, 65535)? as u16),
        None => None,
    };
    Some((host, port))
}

/// A name-addr or addr-spec header value with its header parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameAddr {
    pub display: Option<String>,
    pub uri: Uri,
    pub params: Params,
}

impl NameAddr {
    pub fn parse(s: &str) -> Option<NameAddr> {
        let s = s.trim();
        let (display, uri, params) = if let Some(rest) = s.strip_prefix('"') {
            // Quoted display name, then <uri>.
            let end = closing_quote(rest)?;
            let display = unquote(&s[..end + 2])?;
            let after = rest[end + 1..].trim_start();
            let inner = after.strip_prefix('<')?;
            let close = inner.find('>')?;
            (
                Some(display),
                checked_addr(&inner[..close])?,
                &inner[close + 1..],
            )
        } else if let Some(open) = s.find('<') {
            let display = s[..open].trim();
            if !display
                .bytes()
                .all(|b| is_token_byte(b) || b == b' ' || b == b'\t' || b >= 0x80)
            {
                return None;
            }
            let inner = &s[open + 1..];
            let close = inner.find('>')?;
            let display = (!display.is_empty()).then(|| display.to_string());
            (display, checked_addr(&inner[..close])?, &inner[close + 1..])
        } else {
            // addr-spec: parameters after the URI belong to the header.
            let split = s.find(';').unwrap_or(s.len());
            (None, &s[..split], &s[split..])
        };
        let params = parse_params_strict(params)?;
        Some(NameAddr {
            display,
            uri: Uri::parse(uri)?,
            params,
        })
    }

    pub fn tag(&self) -> Option<&str> {
        param(&self.params, "tag").filter(|t| !t.is_empty())
    }
}

/// The text between `<` and `>` may not start or end with whitespace
/// (RFC 4475 §3.1.2.13).
fn checked_addr(s: &str) -> Option<&str> {
    (s.trim() == s).then_some(s)
}

/// Index of the closing `"` in `s` (which starts just after the opening one).
fn closing_quote(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// The magic cookie that marks an RFC 3261 branch.
pub const BRANCH_COOKIE: &str = "z9hG4bK";

/// One Via value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Via {
    /// Uppercased transport (`UDP`, `TCP`, …).
    pub transport: String,
    pub host: String,
    pub port: Option<u16>,
    pub params: Params,
}

impl Via {
    /// Parses `SIP / 2.0 / UDP host:port;params`, with whitespace allowed
    /// around the slashes (RFC 4475 §3.1.1.1).
    pub fn parse(s: &str) -> Option<Via> {
        let mut parts = s.splitn(3, '/');
        let (proto, version, rest) = (parts.next()?, parts.next()?, parts.next()?);
        if !proto.trim().eq_ignore_ascii_case("SIP") || version.trim() != "2.0" {
            return None;
        }
        let rest = rest.trim_start();
        let t_end = rest.find(|c: char| c.is_whitespace())?;
        let transport = &rest[..t_end];
        if transport.is_empty() || !transport.bytes().all(is_token_byte) {
            return None;
        }
        let rest = rest[t_end..].trim_start();
        let split = rest.find(';').unwrap_or(rest.len());
        let (host, port) = split_host_port(&rest[..split])?;
        let params = parse_params_strict(&rest[split..])?;
        // A branch parameter must have a value (RFC 4475 §3.1.2.? badbranch).
        if params
            .iter()
            .any(|(n, v)| n == "branch" && v.as_deref().is_none_or(str::is_empty))
        {
            return None;
        }
        Some(Via {
            transport: transport.to_ascii_uppercase(),
            host: host.to_string(),
            port,
            params,
        })
    }

    pub fn branch(&self) -> Option<&str> {
        param(&self.params, "branch")
    }

    /// An RFC 3261 branch (with the magic cookie), usable as a transaction key.
    pub fn rfc3261_branch(&self) -> Option<&str> {
        self.branch().filter(|b| b.starts_with(BRANCH_COOKIE))
    }

    pub fn has_rport(&self) -> bool {
        param(&self.params, "rport").is_some()
    }
}

/// `CSeq: 42 INVITE`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CSeq {
    pub seq: u32,
    pub method: Method,
}

impl CSeq {
    pub fn parse(s: &str) -> Option<CSeq> {
        let s = s.trim();
        let split = s.find(|c: char| c.is_whitespace())?;
        let seq = parse_decimal(&s[..split], u64::from(u32::MAX))? as u32;
        let method = Method::parse(s[split..].trim())?;
        Some(CSeq { seq, method })
    }
}

/// `Event: refer;id=93809824` → (`refer`, params).
pub fn parse_event(s: &str) -> Option<(String, Params)> {
    let (pkg, params) = s.split_once(';').unwrap_or((s, ""));
    let pkg = pkg.trim();
    if pkg.is_empty() || !pkg.bytes().all(is_token_byte) {
        return None;
    }
    Some((pkg.to_ascii_lowercase(), parse_params(params)))
}

/// `Subscription-State: active;expires=60` → (`active`, params).
pub fn parse_subscription_state(s: &str) -> Option<(String, Params)> {
    parse_event(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris() {
        let u = Uri::parse("sip:%75se%72@Example.com:5070;transport=udp;lr?X=y").unwrap();
        assert_eq!(u.user.as_deref(), Some("user"));
        assert_eq!(u.host, "example.com");
        assert_eq!(u.port, Some(5070));
        assert_eq!(param(&u.params, "transport"), Some("udp"));
        assert_eq!(param(&u.params, "lr"), Some(""));
        let u = Uri::parse("sip:user;par=u%40example.net@example.com").unwrap();
        assert_eq!(u.user.as_deref(), Some("user;par=u@example.net"));
        let u = Uri::parse("tel:+442079460000;phone-context=x").unwrap();
        assert_eq!(u.user.as_deref(), Some("+442079460000"));
        let u = Uri::parse("sip:[2001:db8::1]:5060").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("[2001:db8::1]", Some(5060)));
        assert!(Uri::parse("sip:user@host:99999").is_none());
        assert!(Uri::parse("nocolon").is_none());
        assert_eq!(Uri::parse("isbn:2983792873").unwrap().scheme, "isbn");
    }

    #[test]
    fn name_addrs() {
        let n = NameAddr::parse(
            "\"J Rosenberg \\\\\\\"\"  <sip:jdrosen@example.com>\n;\n tag = 98asjd8",
        )
        .unwrap();
        assert_eq!(n.display.as_deref(), Some("J Rosenberg \\\""));
        assert_eq!(n.tag(), Some("98asjd8"));
        let n = NameAddr::parse("caller<sip:caller@example.com>;tag=323").unwrap();
        assert_eq!(n.display.as_deref(), Some("caller"));
        assert_eq!(n.uri.user.as_deref(), Some("caller"));
        let n =
            NameAddr::parse("sip:vivekg@chair-dnrc.example.com ;   tag    = 1918181833n").unwrap();
        assert_eq!(n.tag(), Some("1918181833n"));
        assert!(n.uri.params.is_empty());
        let n = NameAddr::parse("<sip:201@pbx;user=phone>;reason=no-answer;counter=1").unwrap();
        assert_eq!(n.uri.user.as_deref(), Some("201"));
        assert_eq!(param(&n.params, "reason"), Some("no-answer"));
        assert!(NameAddr::parse("\"unterminated <sip:a@b>").is_none());
        assert!(NameAddr::parse("<sip:a@b").is_none());
        assert!(NameAddr::parse("<sip:a@b> junk").is_none());
        assert!(NameAddr::parse("\"Joe\" <sip:joe@example.org>;;;;").is_none());
        assert!(NameAddr::parse("\"Watson, Thomas\" < sip:t.watson@example.org >").is_none());
        assert!(NameAddr::parse("Bell, Alexander <sip:a.g.bell@example.com>;tag=43").is_none());
    }

    #[test]
    fn vias() {
        let v = Via::parse(
            "SIP  /   2.0\n /UDP\n    192.0.2.2;branch=390skdjuw"
                .replace('\n', " ")
                .as_str(),
        )
        .unwrap();
        assert_eq!(v.transport, "UDP");
        assert_eq!(v.host, "192.0.2.2");
        assert_eq!(v.branch(), Some("390skdjuw"));
        assert_eq!(v.rfc3261_branch(), None);
        let v = Via::parse("SIP/2.0/TCP spindle.example.com:5061 ; branch = z9hG4bK9ikj8;rport")
            .unwrap();
        assert_eq!(v.port, Some(5061));
        assert_eq!(v.rfc3261_branch(), Some("z9hG4bK9ikj8"));
        assert!(v.has_rport());
        assert!(Via::parse("SIP/2.0/UDP host;branch").is_none());
        assert!(Via::parse("SIP/3.0/UDP host").is_none());
        assert!(Via::parse("garbage").is_none());
        assert!(Via::parse("SIP/2.0/UDP 192.0.2.15;;").is_none());
    }

    #[test]
    fn cseq_and_event() {
        assert_eq!(
            CSeq::parse("0009\n INVITE".replace('\n', " ").as_str())
                .unwrap()
                .seq,
            9
        );
        assert!(CSeq::parse("36893488147419103232 INVITE").is_none());
        assert!(CSeq::parse("-1 INVITE").is_none());
        assert!(CSeq::parse("1").is_none());
        let (e, p) = parse_event("refer;id=7").unwrap();
        assert_eq!((e.as_str(), param(&p, "id")), ("refer", Some("7")));
    }
}
