//! `say digits|number|time|date VALUE` → the stdlib prompt files to play, in
//! English, with the naming scheme of `tools/gen-prompts.sh`.
//!
//! - digits: `digit-N` per character; only 0-9 are accepted.
//! - number: an integer with optional sign, |n| < 10^12:
//!   `-342` → num-minus num-3 num-hundred num-40 num-2;
//!   1,000,000,000 and up use `num-billion`.
//! - time: `HH:MM` (or `H:MM`), 24-hour in, 12-hour speech out:
//!   09:05 → num-9 time-oh num-5 time-am; 13:00 → num-1 time-oclock time-pm;
//!   00:30 → num-12 num-30 time-am.
//! - date: `YYYY-MM-DD` → day-XXX month-MM ord-D, the weekday computed from
//!   the date (proleptic Gregorian). The year is spoken only when the caller
//!   passes a current year and it differs ("twenty twenty-five": the year is
//!   read in pairs, 2000-2009 as "two thousand five").
//!
//! Errors are values ([`SayError`]); nothing here panics on any input.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SayKind {
    Digits,
    Number,
    Time,
    Date,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SayError {
    /// The value is not of the kind's form; carries the value and what was expected.
    Invalid {
        value: String,
        expected: &'static str,
    },
    /// A number of 10^12 or more (no prompts for trillions).
    TooLarge(String),
}

impl fmt::Display for SayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SayError::Invalid { value, expected } => {
                write!(f, "cannot say {value:?}: expected {expected}")
            }
            SayError::TooLarge(v) => write!(f, "cannot say {v}: numbers must be below 10^12"),
        }
    }
}

impl std::error::Error for SayError {}

/// The prompt file names (`"num-3.wav"` …) that speak `value`.
/// `current_year` only affects dates (see the module doc).
pub fn say(kind: SayKind, value: &str, current_year: Option<i32>) -> Result<Vec<String>, SayError> {
    let mut out = Vec::new();
    match kind {
        SayKind::Digits => digits(value, &mut out)?,
        SayKind::Number => {
            let invalid = || SayError::Invalid {
                value: value.to_string(),
                expected: "an integer",
            };
            let v = value.trim();
            let (neg, mag) = match v.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, v.strip_prefix('+').unwrap_or(v)),
            };
            if mag.is_empty() || !mag.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid());
            }
            let n: u64 = match mag.parse() {
                Ok(n) if n < 1_000_000_000_000 => n,
                _ => return Err(SayError::TooLarge(value.to_string())),
            };
            if neg && n != 0 {
                out.push(file("num-minus"));
            }
            number(n, &mut out);
        }
        SayKind::Time => time(value, &mut out)?,
        SayKind::Date => date(value, current_year, &mut out)?,
    }
    Ok(out)
}

fn file(stem: &str) -> String {
    format!("{stem}.wav")
}

fn digits(value: &str, out: &mut Vec<String>) -> Result<(), SayError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(SayError::Invalid {
            value: value.to_string(),
            expected: "one or more digits 0-9",
        });
    }
    out.extend(value.chars().map(|c| file(&format!("digit-{c}"))));
    Ok(())
}

/// 0 ≤ n < 10^12.
fn number(n: u64, out: &mut Vec<String>) {
    if n == 0 {
        out.push(file("num-0"));
        return;
    }
    let groups = [
        (1_000_000_000, "num-billion"),
        (1_000_000, "num-million"),
        (1_000, "num-thousand"),
    ];
    let mut rest = n;
    for (scale, word) in groups {
        if rest >= scale {
            below_thousand(rest / scale, out);
            out.push(file(word));
            rest %= scale;
        }
    }
    if rest > 0 {
        below_thousand(rest, out);
    }
}

/// 1 ≤ n < 1000.
fn below_thousand(n: u64, out: &mut Vec<String>) {
    if n >= 100 {
        out.push(file(&format!("num-{}", n / 100)));
        out.push(file("num-hundred"));
    }
    let r = n % 100;
    if r == 0 {
        return;
    }
    if r < 20 {
        out.push(file(&format!("num-{r}")));
    } else {
        out.push(file(&format!("num-{}", r / 10 * 10)));
        if !r.is_multiple_of(10) {
            out.push(file(&format!("num-{}", r % 10)));
        }
    }
}

fn two_digit_field(s: &str) -> Option<u32> {
    if (1..=2).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

fn time(value: &str, out: &mut Vec<String>) -> Result<(), SayError> {
    let invalid = || SayError::Invalid {
        value: value.to_string(),
        expected: "a time HH:MM from 00:00 to 23:59",
    };
    let (h, m) = value.split_once(':').ok_or_else(invalid)?;
    let h = two_digit_field(h).filter(|&h| h < 24).ok_or_else(invalid)?;
    let m = two_digit_field(m)
        .filter(|&m| m < 60 && value.len() - value.find(':').unwrap_or(0) == 3)
        .ok_or_else(invalid)?;
    let h12 = match h % 12 {
        0 => 12,
        x => x,
    };
    out.push(file(&format!("num-{h12}")));
    match m {
        0 => out.push(file("time-oclock")),
        1..=9 => {
            out.push(file("time-oh"));
            out.push(file(&format!("num-{m}")));
        }
        _ => below_thousand(u64::from(m), out),
    }
    out.push(file(if h < 12 { "time-am" } else { "time-pm" }));
    Ok(())
}

fn date(value: &str, current_year: Option<i32>, out: &mut Vec<String>) -> Result<(), SayError> {
    let invalid = || SayError::Invalid {
        value: value.to_string(),
        expected: "a date YYYY-MM-DD",
    };
    let mut parts = value.split('-');
    let (Some(y), Some(m), Some(d), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid());
    };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(invalid());
    }
    let y: i32 = y.parse().map_err(|_| invalid())?;
    let m = two_digit_field(m)
        .filter(|m| (1..=12).contains(m))
        .ok_or_else(invalid)?;
    let d = two_digit_field(d)
        .filter(|&d| d >= 1 && d <= days_in_month(y, m))
        .ok_or_else(invalid)?;
    const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
    out.push(file(&format!("day-{}", DAYS[weekday(y, m, d)])));
    out.push(file(&format!("month-{m:02}")));
    out.push(file(&format!("ord-{d}")));
    if current_year.is_some_and(|c| c != y) {
        year(y as u64, out);
    }
    Ok(())
}

/// Years read in pairs: 1999 "nineteen ninety-nine", 2025 "twenty twenty-five",
/// 1900 "nineteen hundred", 1905 "nineteen oh five"; 2000-2009 as numbers.
fn year(y: u64, out: &mut Vec<String>) {
    let (hi, lo) = (y / 100, y % 100);
    if (2000..=2009).contains(&y) || hi == 0 || (hi % 10 == 0 && lo == 0) {
        number(y, out);
        return;
    }
    below_thousand(hi, out);
    match lo {
        0 => out.push(file("num-hundred")),
        1..=9 => {
            out.push(file("time-oh"));
            out.push(file(&format!("num-{lo}")));
        }
        _ => below_thousand(lo, out),
    }
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// 0 = Monday … 6 = Sunday (days from civil, H. Hinnant).
fn weekday(y: i32, m: u32, d: u32) -> usize {
    let y = i64::from(if m <= 2 { y - 1 } else { y });
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (i64::from(m) + 9) % 12;
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468; // days since 1970-01-01, a Thursday
    (days + 3).rem_euclid(7) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(kind: SayKind, v: &str) -> String {
        say(kind, v, None)
            .unwrap()
            .iter()
            .map(|f| f.trim_end_matches(".wav"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn digits() {
        assert_eq!(
            words(SayKind::Digits, "2019"),
            "digit-2 digit-0 digit-1 digit-9"
        );
        assert!(say(SayKind::Digits, "", None).is_err());
        assert!(say(SayKind::Digits, "12a", None).is_err());
        assert!(say(SayKind::Digits, "+44", None).is_err());
    }

    #[test]
    fn numbers() {
        let cases = [
            ("0", "num-0"),
            ("7", "num-7"),
            ("19", "num-19"),
            ("20", "num-20"),
            ("21", "num-20 num-1"),
            ("100", "num-1 num-hundred"),
            ("342", "num-3 num-hundred num-40 num-2"),
            ("1000", "num-1 num-thousand"),
            ("1005", "num-1 num-thousand num-5"),
            (
                "12345",
                "num-12 num-thousand num-3 num-hundred num-40 num-5",
            ),
            ("-15", "num-minus num-15"),
            ("-0", "num-0"),
            ("+8", "num-8"),
            ("2000000", "num-2 num-million"),
            (
                "999999999999",
                "num-9 num-hundred num-90 num-9 num-billion num-9 num-hundred num-90 num-9 \
                 num-million num-9 num-hundred num-90 num-9 num-thousand num-9 num-hundred \
                 num-90 num-9",
            ),
            ("3000000001", "num-3 num-billion num-1"),
        ];
        for (v, want) in cases {
            assert_eq!(words(SayKind::Number, v), want, "{v}");
        }
        assert_eq!(
            say(SayKind::Number, "1000000000000", None),
            Err(SayError::TooLarge("1000000000000".into()))
        );
        assert!(say(SayKind::Number, "99999999999999999999999", None).is_err());
        for bad in ["", "-", "1.5", "12 3", "abc", "--1"] {
            assert!(
                matches!(
                    say(SayKind::Number, bad, None),
                    Err(SayError::Invalid { .. })
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn times() {
        let cases = [
            ("00:00", "num-12 time-oclock time-am"),
            ("00:30", "num-12 num-30 time-am"),
            ("09:05", "num-9 time-oh num-5 time-am"),
            ("9:45", "num-9 num-40 num-5 time-am"),
            ("12:00", "num-12 time-oclock time-pm"),
            ("13:15", "num-1 num-15 time-pm"),
            ("23:59", "num-11 num-50 num-9 time-pm"),
        ];
        for (v, want) in cases {
            assert_eq!(words(SayKind::Time, v), want, "{v}");
        }
        for bad in [
            "24:00", "12:60", "1200", "12:5", "12:005", ":30", "ab:cd", "-1:30", "",
        ] {
            assert!(say(SayKind::Time, bad, None).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn dates() {
        assert_eq!(
            words(SayKind::Date, "2026-11-25"),
            "day-wed month-11 ord-25"
        );
        assert_eq!(
            words(SayKind::Date, "2000-02-29"),
            "day-tue month-02 ord-29"
        );
        assert_eq!(words(SayKind::Date, "1970-01-01"), "day-thu month-01 ord-1");
        let with_year = |v, y| {
            say(SayKind::Date, v, Some(y))
                .unwrap()
                .iter()
                .map(|f| f.trim_end_matches(".wav").to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(with_year("2026-12-25", 2026), "day-fri month-12 ord-25");
        assert_eq!(
            with_year("2025-12-25", 2026),
            "day-thu month-12 ord-25 num-20 num-20 num-5"
        );
        assert_eq!(
            with_year("2005-01-31", 2026),
            "day-mon month-01 ord-31 num-2 num-thousand num-5"
        );
        assert_eq!(
            with_year("1999-07-04", 2026),
            "day-sun month-07 ord-4 num-19 num-90 num-9"
        );
        assert_eq!(
            with_year("1905-07-04", 2026),
            "day-tue month-07 ord-4 num-19 time-oh num-5"
        );
        assert_eq!(
            with_year("1900-07-04", 2026),
            "day-wed month-07 ord-4 num-19 num-hundred"
        );
        for bad in [
            "2026-02-29",
            "2026-13-01",
            "2026-00-10",
            "2026-1-1",
            "26-01-01",
            "2026-01-32",
            "x",
            "2026-01-01-01",
        ] {
            assert!(say(SayKind::Date, bad, None).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn every_named_prompt_exists_in_the_stdlib() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../stdlib/prompts/");
        let mut all = vec![];
        for d in 0..10 {
            all.extend(say(SayKind::Digits, &d.to_string(), None).unwrap());
        }
        for n in (0..1000).chain([1_000_000, 1_000_000_000, -1]) {
            all.extend(say(SayKind::Number, &n.to_string(), None).unwrap());
        }
        for h in 0..24 {
            for m in 0..60 {
                all.extend(say(SayKind::Time, &format!("{h:02}:{m:02}"), None).unwrap());
            }
        }
        for m in 1..=12 {
            for d in 1..=days_in_month(2024, m) {
                all.extend(say(SayKind::Date, &format!("2024-{m:02}-{d:02}"), Some(1999)).unwrap());
            }
        }
        all.sort();
        all.dedup();
        for f in all {
            assert!(
                std::path::Path::new(&format!("{dir}{f}")).exists(),
                "missing stdlib prompt {f}"
            );
        }
    }
}
