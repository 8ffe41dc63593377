//! From `[[time_intervals]]` and a route's quiet-hours keys to [`TimeIntervals`] and [`Quiet`]:
//! every value parsed once, with Alertmanager's rules, and every mistake a problem at its key
//! path that quotes the value and says what is accepted (`"blurgsday" is not a weekday …`).
//! Where Alertmanager is silent or lenient the rule is stricter and said so: months outside
//! 1…12 are refused.

use chrono::FixedOffset;

use super::{Interval, Quiet, TimeIntervals};
use crate::config::{
    Config, IntervalConfig, OnMute, Problem, RangeItem, RouteConfig, TimeRangeConfig, interval_location,
};

const WEEKDAYS: [&str; 7] = ["sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday"];
const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// Every `[[time_intervals]]` entry of `config`; what is wrong to `problems`, what is doubtful
/// (a group no route names, or with no intervals) to `warnings`.
pub fn compile(config: &Config, problems: &mut Vec<Problem>, warnings: &mut Vec<Problem>) -> TimeIntervals {
    let default_offset = config.messages.utc_offset.as_ref().map_or(0, |o| o.seconds());
    let mut named = Vec::with_capacity(config.time_intervals.len());
    for (i, group) in config.time_intervals.iter().enumerate() {
        let at = interval_location(i, &group.name);
        if group.name.trim().is_empty() {
            problems.push(Problem::new(format!("time_intervals[{i}].name"), "must not be empty"));
        }
        if named.iter().any(|(n, _): &(String, _)| *n == group.name) {
            problems.push(Problem::new(&at, "duplicate time interval name"));
        }
        if group.intervals.is_empty() {
            warnings.push(Problem::new(&at, "has no intervals: it is never active"));
        }
        let used = config.routes.iter().any(|r| {
            r.mute_time_intervals.contains(&group.name) || r.active_time_intervals.contains(&group.name)
        });
        if !used {
            warnings.push(Problem::new(&at, "no route names this time interval"));
        }
        let intervals = group.intervals.iter().enumerate().filter_map(|(j, interval)| {
            let at = format!("{at}.intervals[{j}]");
            interval_of(interval, default_offset, &at, problems)
        });
        named.push((group.name.clone(), intervals.collect()));
    }
    TimeIntervals::new(named)
}

/// A route's `mute_time_intervals`, `active_time_intervals` and `on_mute`; an undefined name
/// to `problems`.
pub fn route_quiet(
    route: &RouteConfig,
    at: &str,
    intervals: &TimeIntervals,
    problems: &mut Vec<Problem>,
    warnings: &mut Vec<Problem>,
) -> Quiet {
    let mut resolve = |key: &str, names: &[String]| -> Vec<usize> {
        let found = names.iter().enumerate().filter_map(|(j, name)| {
            let index = intervals.index(name);
            if index.is_none() {
                let known: Vec<&str> = intervals.names().collect();
                let hint = match crate::text::nearest(name, known.iter().copied()) {
                    Some(near) => format!(": did you mean {near:?}?"),
                    None if known.is_empty() => " (define it in a [[time_intervals]] entry)".to_owned(),
                    None => format!(" (defined: {})", known.join(", ")),
                };
                problems.push(Problem::new(
                    format!("{at}.{key}[{j}]"),
                    format!("no time interval named {name:?}{hint}"),
                ));
            }
            index
        });
        found.collect()
    };
    let quiet = Quiet {
        mute: resolve("mute_time_intervals", &route.mute_time_intervals),
        active: resolve("active_time_intervals", &route.active_time_intervals),
        on_mute: route.on_mute,
    };
    let none_named = route.mute_time_intervals.is_empty() && route.active_time_intervals.is_empty();
    if none_named && route.on_mute != OnMute::default() {
        warnings.push(Problem::new(format!("{at}.on_mute"), "ignored: the route names no time intervals"));
    }
    quiet
}

/// One interval; `None` (and its problems) when a field does not parse.
fn interval_of(
    c: &IntervalConfig,
    default_offset: i32,
    at: &str,
    problems: &mut Vec<Problem>,
) -> Option<Interval> {
    let before = problems.len();
    let offset = offset_of(c, default_offset, at, problems);
    let mut interval = Interval::always(offset.unwrap_or(FixedOffset::east_opt(0)?));
    for (k, range) in c.times.iter().enumerate() {
        match time_range(range) {
            Ok(minutes) => interval.times.push(minutes),
            Err(message) => problems.push(Problem::new(format!("{at}.times[{k}]"), message)),
        }
    }
    let mut each = |key: &str, items: &[RangeItem], parse: fn(&str) -> Result<(i64, i64), String>| {
        let mut ranges = Vec::new();
        for (k, item) in items.iter().enumerate() {
            match parse(&item.text()) {
                Ok(range) => ranges.push(range),
                Err(message) => problems.push(Problem::new(format!("{at}.{key}[{k}]"), message)),
            }
        }
        ranges
    };
    let narrow = |(a, b): (i64, i64)| (a.clamp(0, 9999) as u32, b.clamp(0, 9999) as u32);
    let signed = |(a, b): (i64, i64)| (a.clamp(-9999, 9999) as i32, b.clamp(-9999, 9999) as i32);
    interval.weekdays = each("weekdays", &c.weekdays, weekday_range).into_iter().map(narrow).collect();
    interval.days_of_month =
        each("days_of_month", &c.days_of_month, day_range).into_iter().map(signed).collect();
    interval.months = each("months", &c.months, month_range).into_iter().map(narrow).collect();
    interval.years = each("years", &c.years, year_range).into_iter().map(signed).collect();
    (problems.len() == before).then_some(interval)
}

/// The interval's clock: its `utc_offset`, else `[messages] utc_offset`, else UTC.
fn offset_of(c: &IntervalConfig, default: i32, at: &str, problems: &mut Vec<Problem>) -> Option<FixedOffset> {
    if let Some(location) = &c.location {
        let message = if c.utc_offset.is_some() {
            "set `location` or `utc_offset`, not both".to_owned()
        } else {
            format!(
                "{location:?}: IANA time-zone names need the time-zone database, which this build leaves out (1.9 MB more binary); write the zone's offset as `utc_offset` instead, e.g. \"+08:00\" for Asia/Shanghai"
            )
        };
        problems.push(Problem::new(format!("{at}.location"), message));
        return None;
    }
    let seconds = match &c.utc_offset {
        Some(text) => match crate::config::parse_utc_offset(text) {
            Ok(seconds) => seconds,
            Err(message) => {
                problems.push(Problem::new(format!("{at}.utc_offset"), message));
                return None;
            }
        },
        None => default,
    };
    FixedOffset::east_opt(seconds)
}

/// `{ start_time, end_time }` in minutes of the day.
fn time_range(range: &TimeRangeConfig) -> Result<(u32, u32), String> {
    let (Some(start), Some(end)) = (&range.start_time, &range.end_time) else {
        return Err("both `start_time` and `end_time` are needed".to_owned());
    };
    let (a, b) = (minute_of_day(start)?, minute_of_day(end)?);
    if a >= b {
        return Err(format!(
            "start_time {start:?} is not before end_time {end:?} (a range cannot wrap past midnight: write two, e.g. 22:00-24:00 and 00:00-06:00)"
        ));
    }
    Ok((a, b))
}

/// `HH:MM` from `00:00` to `24:00`.
fn minute_of_day(text: &str) -> Result<u32, String> {
    let two = |s: &str| {
        (s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse::<u32>().ok()).flatten()
    };
    let parsed = text.split_once(':').and_then(|(h, m)| Some((two(h)?, two(m)?)));
    match parsed {
        Some((h, m)) if (h < 24 && m < 60) || (h == 24 && m == 0) => Ok(h * 60 + m),
        _ => Err(format!("{text:?} is not a time: expected HH:MM from 00:00 to 24:00")),
    }
}

/// `one` or `start:end`, each read by `member`.
fn range_of(text: &str, member: impl Fn(&str) -> Result<i64, String>) -> Result<(i64, i64), String> {
    let lower = text.trim().to_lowercase();
    let mut parts = lower.split(':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(one), None, _) => member(one).map(|v| (v, v)),
        (Some(a), Some(b), None) => Ok((member(a)?, member(b)?)),
        _ => Err(format!("{text:?} is not a range: expected one value or `start:end`")),
    }
}

fn weekday_range(text: &str) -> Result<(i64, i64), String> {
    let member = |s: &str| match WEEKDAYS.iter().position(|d| *d == s) {
        Some(day) => Ok(day as i64),
        None if s.parse::<i64>().is_ok() => {
            Err(format!("{s:?} is not a weekday: write its name (monday … sunday)"))
        }
        None => Err(format!("{s:?} is not a weekday (monday … sunday)")),
    };
    let (a, b) = range_of(text, member)?;
    if a > b {
        let (start, end) = (WEEKDAYS[a as usize], WEEKDAYS[b as usize]);
        return Err(format!(
            "{text:?}: end day {end} is before start day {start} (weeks run sunday to saturday: write \"{start}:saturday\" and \"sunday:{end}\")"
        ));
    }
    Ok((a, b))
}

fn day_range(text: &str) -> Result<(i64, i64), String> {
    let member = |s: &str| match s.parse::<i64>() {
        Ok(d) if d != 0 && (-31..=31).contains(&d) => Ok(d),
        _ => Err(format!(
            "{s:?} is not a day of the month: expected 1 … 31, or -31 … -1 counted from the month's end"
        )),
    };
    let (a, b) = range_of(text, member)?;
    if a < 0 && b > 0 {
        return Err(format!(
            "{text:?}: the end day must be negative when the start day is (both count from the month's end)"
        ));
    }
    // As Alertmanager judges it: in a 28-day month.
    let on_28 = |d: i64| if d < 0 { 28 + d } else { d };
    if on_28(a) > on_28(b) {
        return Err(format!("{text:?}: end day {b} is always before start day {a}"));
    }
    Ok((a, b))
}

fn month_range(text: &str) -> Result<(i64, i64), String> {
    let member = |s: &str| match (MONTHS.iter().position(|m| *m == s), s.parse::<i64>()) {
        (Some(i), _) => Ok(i as i64 + 1),
        (None, Ok(n)) if (1..=12).contains(&n) => Ok(n),
        (None, Ok(n)) => Err(format!("{n} is not a month: expected 1 … 12")),
        (None, Err(_)) => Err(format!("{s:?} is not a month (january … december, or 1 … 12)")),
    };
    let (a, b) = range_of(text, member)?;
    if a > b {
        let name = |n: i64| MONTHS[(n - 1) as usize];
        return Err(format!("{text:?}: end month {} is before start month {}", name(b), name(a)));
    }
    Ok((a, b))
}

fn year_range(text: &str) -> Result<(i64, i64), String> {
    let member = |s: &str| match s.parse::<i64>() {
        Ok(y) if (1..=9999).contains(&y) => Ok(y),
        _ => Err(format!("{s:?} is not a year (1 … 9999)")),
    };
    let (a, b) = range_of(text, member)?;
    if a > b {
        return Err(format!("{text:?}: end year {b} is before start year {a}"));
    }
    Ok((a, b))
}
