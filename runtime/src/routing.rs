//! Call routing: which start point a SIP call enters, from its Request-URI
//! user, `To`, `From`, `Diversion` and `History-Info`.

use crate::config::RoutingConfig;

/// What the SIP layer knows of a call's target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallTarget {
    /// The Request-URI's user part (what the PBX dialled on vflow).
    pub request_user: String,
    pub to_user: String,
    /// The caller's number.
    pub from_user: String,
    /// The user the call was diverted from (`Diversion`, or the first
    /// `History-Info` entry), if any.
    pub diverted_from: Option<String>,
}

/// A start point to enter: `(kind, name)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub kind: &'static str,
    pub name: String,
}

/// Picks the start point. `has_entry(kind, name)` says whether the loaded
/// flows have a start point matching it; it decides between `named` and
/// `auto_attendant` for a plain name. Unknown targets still get a route (the
/// caller hears the same as for a known one: no enumeration).
pub fn route(cfg: &RoutingConfig, t: &CallTarget, has_entry: impl Fn(&str, &str) -> bool) -> Route {
    let user = if t.request_user.is_empty() {
        t.to_user.as_str()
    } else {
        t.request_user.as_str()
    };
    let r = |kind, name: &str| Route {
        kind,
        name: name.to_string(),
    };
    if let Some(mb) = user
        .strip_prefix(cfg.collect_prefix.as_str())
        .filter(|m| !m.is_empty())
    {
        return r("collect", mb);
    }
    if user == cfg.collect_user {
        return r("collect", &t.from_user);
    }
    if let Some(mb) = user
        .strip_prefix(cfg.leave_prefix.as_str())
        .filter(|m| !m.is_empty())
    {
        return r("leave", mb);
    }
    // Longer prefixes first: `queue-again-` also starts with `queue-`.
    let mut queues = [
        ("still_queued", cfg.still_queued_prefix.as_str()),
        ("queued", cfg.queued_prefix.as_str()),
    ];
    queues.sort_by_key(|(_, p)| std::cmp::Reverse(p.len()));
    for (kind, prefix) in queues {
        if let Some(name) = user.strip_prefix(prefix).filter(|n| !n.is_empty()) {
            return r(kind, name);
        }
    }
    if let Some(from) = t.diverted_from.as_deref().filter(|d| !d.is_empty()) {
        return r("leave", from);
    }
    if !has_entry("named", user) && has_entry("auto_attendant", user) {
        return r("auto_attendant", user);
    }
    r("named", user)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(req: &str, from: &str, div: Option<&str>) -> CallTarget {
        CallTarget {
            request_user: req.into(),
            to_user: req.into(),
            from_user: from.into(),
            diverted_from: div.map(Into::into),
        }
    }

    fn go(target: CallTarget) -> (String, String) {
        let cfg = RoutingConfig::default();
        let r = route(&cfg, &target, |k, n| {
            k == "auto_attendant" && n == "Reception"
        });
        (r.kind.to_string(), r.name)
    }

    #[test]
    fn defaults() {
        assert_eq!(go(t("vm-201", "300", None)), ("leave".into(), "201".into()));
        assert_eq!(
            go(t("voicemail", "300", Some("201"))),
            ("leave".into(), "201".into())
        );
        assert_eq!(
            go(t("vmcollect-201", "300", None)),
            ("collect".into(), "201".into())
        );
        assert_eq!(
            go(t("vmcollect", "201", None)),
            ("collect".into(), "201".into())
        );
        assert_eq!(
            go(t("queue-Sales", "300", None)),
            ("queued".into(), "Sales".into())
        );
        assert_eq!(
            go(t("queue-again-Sales", "300", None)),
            ("still_queued".into(), "Sales".into())
        );
        assert_eq!(
            go(t("Reception", "300", None)),
            ("auto_attendant".into(), "Reception".into())
        );
        assert_eq!(
            go(t("survey", "300", None)),
            ("named".into(), "survey".into())
        );
        // An explicit collect wins over a diversion header.
        assert_eq!(
            go(t("vmcollect-201", "300", Some("555"))),
            ("collect".into(), "201".into())
        );
    }

    #[test]
    fn to_user_when_no_request_user() {
        let mut x = t("", "300", None);
        x.to_user = "vm-7".into();
        assert_eq!(go(x), ("leave".into(), "7".into()));
    }
}
