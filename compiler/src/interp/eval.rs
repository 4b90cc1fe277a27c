//! Expression evaluation and time profiles. A fault is an `Err` with the
//! message the caller's log will show.

use crate::exec::{Host, State};
use crate::ir::{BinOp, Builtin, Days, Expr, Profile, Program, SysVar, UnOp, Value};

pub(super) fn eval(
    program: &Program,
    state: &State,
    host: &dyn Host,
    e: &Expr,
) -> Result<Value, String> {
    Ok(match e {
        Expr::Const(v) => v.clone(),
        Expr::Local(i) => state
            .frames
            .last()
            .and_then(|f| f.locals.get(*i as usize))
            .cloned()
            .ok_or_else(|| format!("local {i} out of range"))?,
        Expr::Cp(i) => Value::Str(state.cp.get(usize::from(*i)).cloned().unwrap_or_default()),
        Expr::User(name) => Value::Str(host.user_var(name)),
        Expr::Sys(v) => Value::Str(sys(state, host, *v)),
        Expr::InProfile(i) => {
            let p = program
                .profiles
                .get(*i as usize)
                .ok_or_else(|| format!("profile {i} out of range"))?;
            Value::Bool(in_profile(p, &host.now()))
        }
        Expr::Unary(op, x) => match (op, eval(program, state, host, x)?) {
            (UnOp::Neg, Value::Int(n)) => {
                Value::Int(n.checked_neg().ok_or("integer overflow in `-`")?)
            }
            (UnOp::Not, Value::Bool(b)) => Value::Bool(!b),
            (op, v) => return Err(format!("`{op:?}` of {}", v.ty().name())),
        },
        Expr::Binary(BinOp::And, a, b) => Value::Bool(
            truth(eval(program, state, host, a)?)? && truth(eval(program, state, host, b)?)?,
        ),
        Expr::Binary(BinOp::Or, a, b) => Value::Bool(
            truth(eval(program, state, host, a)?)? || truth(eval(program, state, host, b)?)?,
        ),
        Expr::Binary(op, a, b) => binary(
            *op,
            eval(program, state, host, a)?,
            eval(program, state, host, b)?,
        )?,
        Expr::Call(f, args) => {
            let mut vs = Vec::with_capacity(args.len());
            for a in args {
                vs.push(eval(program, state, host, a)?);
            }
            builtin(*f, vs)?
        }
    })
}

fn truth(v: Value) -> Result<bool, String> {
    match v {
        Value::Bool(b) => Ok(b),
        other => Err(format!("expected bool, found {}", other.ty().name())),
    }
}

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

pub(crate) fn sys(state: &State, host: &dyn Host, v: SysVar) -> String {
    match v {
        SysVar::Cli => state.call.cli.clone(),
        SysVar::Ddi => state.call.ddi.clone(),
        SysVar::Target => state.target.clone(),
        SysVar::Key => state.key.clone(),
        SysVar::CallerName => state.call.caller_name.clone(),
        SysVar::CallId => state.call.call_id.clone(),
        SysVar::Reason => {
            if state.call.reason.is_empty() {
                "unknown".into()
            } else {
                state.call.reason.clone()
            }
        }
        SysVar::Recording => state.recording.clone(),
        SysVar::Time => {
            let n = host.now();
            format!("{:02}:{:02}", n.hour(), n.minute())
        }
        SysVar::Date => {
            let n = host.now();
            format!("{:04}-{:02}-{:02}", n.year(), n.month(), n.day())
        }
        SysVar::Day => DAYS[host.now().weekday().to_monday_zero_offset() as usize].to_string(),
    }
}

pub(crate) fn binary(op: BinOp, a: Value, b: Value) -> Result<Value, String> {
    use Value::*;
    let overflow = |sym: &str| format!("integer overflow in `{sym}`");
    Ok(match (op, a, b) {
        (BinOp::Add, Int(x), Int(y)) => Int(x.checked_add(y).ok_or_else(|| overflow("+"))?),
        (BinOp::Sub, Int(x), Int(y)) => Int(x.checked_sub(y).ok_or_else(|| overflow("-"))?),
        (BinOp::Mul, Int(x), Int(y)) => Int(x.checked_mul(y).ok_or_else(|| overflow("*"))?),
        (BinOp::Div | BinOp::Rem, Int(_), Int(0)) => return Err("division by zero".into()),
        (BinOp::Div, Int(x), Int(y)) => Int(x.checked_div(y).ok_or_else(|| overflow("/"))?),
        (BinOp::Rem, Int(x), Int(y)) => Int(x.checked_rem(y).ok_or_else(|| overflow("%"))?),
        (BinOp::Concat, Str(x), Str(y)) => Str(x + &y),
        (BinOp::Eq, x, y) => Bool(x == y),
        (BinOp::Ne, x, y) => Bool(x != y),
        (BinOp::Lt, Int(x), Int(y)) => Bool(x < y),
        (BinOp::Le, Int(x), Int(y)) => Bool(x <= y),
        (BinOp::Gt, Int(x), Int(y)) => Bool(x > y),
        (BinOp::Ge, Int(x), Int(y)) => Bool(x >= y),
        (BinOp::Lt, Str(x), Str(y)) => Bool(x < y),
        (BinOp::Le, Str(x), Str(y)) => Bool(x <= y),
        (BinOp::Gt, Str(x), Str(y)) => Bool(x > y),
        (BinOp::Ge, Str(x), Str(y)) => Bool(x >= y),
        (BinOp::StartsWith, Str(x), Str(y)) => Bool(x.starts_with(&y)),
        (BinOp::EndsWith, Str(x), Str(y)) => Bool(x.ends_with(&y)),
        (BinOp::Contains, Str(x), Str(y)) => Bool(x.contains(&y)),
        (op, x, y) => {
            return Err(format!(
                "`{}` of {} and {}",
                op.name(),
                x.ty().name(),
                y.ty().name()
            ));
        }
    })
}

pub(crate) fn builtin(f: Builtin, args: Vec<Value>) -> Result<Value, String> {
    use Value::*;
    let bad = || format!("bad arguments to `{}`", f.name());
    Ok(match (f, args.as_slice()) {
        (Builtin::Str, [v]) => Str(v.to_text()),
        (Builtin::Len, [Str(s)]) => Int(s.chars().count() as i64),
        (Builtin::Int, [Str(s)]) => {
            let t = s.trim();
            let ok = !t.is_empty()
                && t.trim_start_matches(['-', '+'])
                    .chars()
                    .all(|c| c.is_ascii_digit());
            match t.parse::<i64>() {
                Ok(n) if ok => Int(n),
                _ => return Err(format!("int({s:?}): not a whole number")),
            }
        }
        (Builtin::Substr, [Str(s), Int(start), Int(len)]) => {
            let start = (*start).max(0) as usize;
            let len = (*len).max(0) as usize;
            Str(s.chars().skip(start).take(len).collect())
        }
        (Builtin::Trim, [Str(s)]) => Str(s.trim().to_string()),
        (Builtin::Replace, [Str(s), Str(from), Str(to)]) => {
            if from.is_empty() {
                Str(s.clone())
            } else {
                Str(s.replace(from.as_str(), to))
            }
        }
        (Builtin::IsDigits, [Str(s)]) => {
            Bool(!s.is_empty() && s.chars().all(|c| c.is_ascii_digit()))
        }
        (Builtin::Lower, [Str(s)]) => Str(s.to_lowercase()),
        (Builtin::Upper, [Str(s)]) => Str(s.to_uppercase()),
        (Builtin::Abs, [Int(n)]) => Int(n.checked_abs().ok_or("integer overflow in `abs`")?),
        (Builtin::Min, [Int(a), Int(b)]) => Int(*a.min(b)),
        (Builtin::Max, [Int(a), Int(b)]) => Int(*a.max(b)),
        _ => return Err(bad()),
    })
}

/// Whether `now` (civil time in the call's zone) is in the profile: some
/// non-`except` rule matches and no `except` rule does. A time range whose
/// end is not after its start runs past midnight into the next day.
pub fn in_profile(p: &Profile, now: &jiff::ZonedDateTime) -> bool {
    let date = now.date();
    let minute = now.hour() as u16 * 60 + now.minute() as u16;
    let matches = |r: &crate::ir::ProfileRule| {
        if r.times.is_empty() {
            return day_matches(&r.days, date);
        }
        r.times.iter().any(|&(from, to)| {
            if from < to {
                day_matches(&r.days, date) && (from..to).contains(&minute)
            } else {
                (day_matches(&r.days, date) && minute >= from)
                    || (minute < to && date.yesterday().is_ok_and(|y| day_matches(&r.days, y)))
            }
        })
    };
    p.rules.iter().any(|r| !r.except && matches(r))
        && !p.rules.iter().any(|r| r.except && matches(r))
}

fn day_matches(days: &[Days], date: jiff::civil::Date) -> bool {
    let wd = date.weekday().to_monday_zero_offset() as u8;
    let d = crate::ir::Date {
        year: date.year(),
        month: date.month(),
        day: date.day(),
    };
    days.iter().any(|s| match *s {
        Days::Weekdays { from, to } if from <= to => (from..=to).contains(&wd),
        Days::Weekdays { from, to } => wd >= from || wd <= to,
        Days::Dates { from, to } => from <= d && d <= to,
    })
}
