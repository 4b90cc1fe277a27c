//! Time profiles: dates that exist, times of day in range, rules that can match.

use super::CheckedFile;
use crate::diag::{Code, Diagnostic};
use crate::syntax::ast::{ClockLit, DateLit, DaySpec};

pub(super) fn check_profiles(file: &CheckedFile, out: &mut Vec<Diagnostic>) {
    for tp in &file.ast.profiles {
        if !tp.rules.iter().any(|r| !r.except) {
            out.push(
                Diagnostic::new(Code::BadProfile, file.id, tp.name.span, format!("time profile `{}` never matches", tp.name.text))
                    .label("no day rule")
                    .help("add a rule such as `mon..fri 09:00..17:00`; `except` lines only take time away"),
            );
        }
        for rule in &tp.rules {
            for d in &rule.days {
                if let DaySpec::Dates { from, to, span } = d {
                    let (a, b) = (civil(from, file, out), civil(to, file, out));
                    if let (Some(a), Some(b)) = (a, b) {
                        if a > b {
                            out.push(
                                Diagnostic::new(
                                    Code::BadProfile,
                                    file.id,
                                    *span,
                                    "date range ends before it starts",
                                )
                                .label("backwards range")
                                .help("write the earlier date first: `2026-12-24..2026-12-31`"),
                            );
                        }
                    }
                }
            }
            for t in &rule.times {
                let (a, b) = (
                    clock(&t.from, false, file, out),
                    clock(&t.to, true, file, out),
                );
                if let (Some(a), Some(b)) = (a, b) {
                    if a == b {
                        out.push(
                            Diagnostic::new(Code::BadProfile, file.id, t.from.span.to(t.to.span), "time range is empty")
                                .label("starts and ends at the same time")
                                .help("omit the times for the whole day, or give a range such as `09:00..17:00`"),
                        );
                    }
                }
            }
        }
    }
}

fn civil(d: &DateLit, file: &CheckedFile, out: &mut Vec<Diagnostic>) -> Option<jiff::civil::Date> {
    match jiff::civil::Date::new(d.year, d.month, d.day) {
        Ok(x) => Some(x),
        Err(_) => {
            out.push(
                Diagnostic::new(
                    Code::BadProfile,
                    file.id,
                    d.span,
                    format!("{:04}-{:02}-{:02} is not a date", d.year, d.month, d.day),
                )
                .label("no such day")
                .help("write a real calendar date as YYYY-MM-DD"),
            );
            None
        }
    }
}

/// Minutes since midnight; `24:00` is allowed as the end of a range.
fn clock(c: &ClockLit, is_end: bool, file: &CheckedFile, out: &mut Vec<Diagnostic>) -> Option<u32> {
    let ok = c.minute < 60 && (c.hour < 24 || (is_end && c.hour == 24 && c.minute == 0));
    if !ok {
        out.push(
            Diagnostic::new(
                Code::BadProfile,
                file.id,
                c.span,
                format!("{:02}:{:02} is not a time of day", c.hour, c.minute),
            )
            .label("out of range")
            .help("times are 00:00 to 23:59; `24:00` may end a range"),
        );
        return None;
    }
    Some(c.hour * 60 + c.minute)
}
