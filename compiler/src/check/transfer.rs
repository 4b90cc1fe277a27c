//! `allow_transfer` patterns: where a file's flows may transfer calls.
//!
//! A pattern is digits and `* # +` matched literally, `x`/`X` for any one
//! digit, and an optional trailing `…` (or `...`) for any suffix. Transfers are
//! denied by default: a file without patterns may not transfer at all. Literal
//! targets are checked here at compile time; the runtime checks computed ones
//! with [`allowed`].

use super::CheckedFile;
use crate::diag::{Code, Diagnostic};

pub(super) fn check_patterns(file: &CheckedFile, out: &mut Vec<Diagnostic>) {
    for p in &file.ast.allow_transfer {
        if let Err(why) = validate(&p.value) {
            let shown = if p.value.is_empty() {
                "\"\"".to_string()
            } else {
                format!("`{}`", p.value)
            };
            out.push(
                Diagnostic::new(Code::BadTransferPattern, file.id, p.span, format!("invalid transfer pattern {shown}: {why}"))
                    .label("invalid pattern")
                    .help("use digits, `*`, `#`, a leading `+`, `x` for any digit and a trailing `…` for any suffix, e.g. `\"2xxx\"` or `\"+4420…\"`"),
            );
        }
    }
}

fn split_suffix(p: &str) -> (&str, bool) {
    if let Some(s) = p.strip_suffix('…') {
        (s, true)
    } else if let Some(s) = p.strip_suffix("...") {
        (s, true)
    } else {
        (p, false)
    }
}

/// Why a pattern is malformed, if it is.
pub fn validate(pattern: &str) -> Result<(), String> {
    let (body, _) = split_suffix(pattern);
    if body.is_empty() {
        return Err("it is empty".into());
    }
    for (i, c) in body.chars().enumerate() {
        let ok = c.is_ascii_digit() || matches!(c, 'x' | 'X' | '*' | '#') || (c == '+' && i == 0);
        if !ok {
            return Err(format!("`{c}` is not allowed"));
        }
    }
    Ok(())
}

/// Whether `target` matches one of `patterns`. Malformed patterns match nothing.
pub fn allowed(patterns: &[String], target: &str) -> bool {
    patterns.iter().any(|p| matches(p, target))
}

/// Whether `target` matches one pattern.
pub fn matches(pattern: &str, target: &str) -> bool {
    if validate(pattern).is_err() || target.is_empty() {
        return false;
    }
    let (body, open) = split_suffix(pattern);
    let t: Vec<char> = target.chars().collect();
    let p: Vec<char> = body.chars().collect();
    if t.len() < p.len() || (!open && t.len() != p.len()) {
        return false;
    }
    let prefix_ok = p.iter().zip(&t).all(|(pc, tc)| match pc {
        'x' | 'X' => tc.is_ascii_digit(),
        c => c == tc,
    });
    // A suffix is digits only: caller digits can never add `*`, `#` or `+`.
    prefix_ok && t[p.len()..].iter().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(matches("2xxx", "2001"));
        assert!(!matches("2xxx", "20011"));
        assert!(!matches("2xxx", "3001"));
        assert!(!matches("2xxx", "2a01"));
        assert!(matches("0", "0"));
        assert!(matches("+4420…", "+442071234567"));
        assert!(matches("+4420...", "+4420"));
        assert!(!matches("+4420…", "+4420#1"));
        assert!(!matches("9…", ""));
        assert!(validate("2x+x").is_err());
        assert!(validate("").is_err());
        assert!(validate("…").is_err());
    }
}
