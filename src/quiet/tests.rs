//! The time-interval evaluation against Alertmanager's own published cases
//! (`timeinterval/timeinterval_test.go`: `timeIntervalTestCases`, `yamlUnmarshalTestCases`,
//! `timeStringTestCases`, `completeTestCases`), written in vodhook's TOML. The cases that use a
//! `location` use the zone's offset on those dates as `utc_offset` (this build has no
//! time-zone database); the instants are the same.

use super::*;
use crate::config::{Config, TimeIntervalConfig};

/// Compiles `[[time_intervals]]` TOML (the first group is the one tested); the problems' text.
fn compiled(text: &str) -> Result<TimeIntervals, Vec<String>> {
    #[derive(serde::Deserialize)]
    struct File {
        time_intervals: Vec<TimeIntervalConfig>,
    }
    let file: File = toml::from_str(text).map_err(|e| vec![e.to_string()])?;
    let config = Config { time_intervals: file.time_intervals, ..Config::builtin() };
    let (mut problems, mut warnings) = (Vec::new(), Vec::new());
    let intervals = compile(&config, &mut problems, &mut warnings);
    if problems.is_empty() { Ok(intervals) } else { Err(problems.iter().map(ToString::to_string).collect()) }
}

/// One interval, written as the body of `[[time_intervals.intervals]]`.
fn interval(body: &str) -> TimeIntervals {
    let text = format!("[[time_intervals]]\nname = \"t\"\n[[time_intervals.intervals]]\n{body}\n");
    compiled(&text).unwrap_or_else(|problems| panic!("{body}: {problems:?}"))
}

fn utc() -> FixedOffset {
    FixedOffset::east_opt(0).unwrap()
}

/// Go's RFC822Z, as the cases are written: `02 Jan 06 15:04 +0000`.
fn at(text: &str) -> i64 {
    let text = if text.as_bytes()[1] == b' ' { format!("0{text}") } else { text.to_owned() };
    chrono::DateTime::parse_from_str(&text, "%d %b %y %H:%M %z")
        .unwrap_or_else(|e| panic!("{text}: {e}"))
        .timestamp()
}

fn check(intervals: &TimeIntervals, inside: &[&str], outside: &[&str]) {
    let group = Quiet { mute: vec![0], ..Quiet::default() };
    for time in inside {
        assert!(!intervals.muted_by(&group, at(time)).is_empty(), "expected {time} inside");
    }
    for time in outside {
        assert!(intervals.muted_by(&group, at(time)).is_empty(), "expected {time} outside");
    }
}

#[test]
fn alertmanager_contains_time_cases() {
    check(&interval(""), &["02 Jan 06 15:04 +0000", "03 Jan 07 10:04 +0000", "04 Jan 06 09:04 +0000"], &[]);
    // 9am to 5pm, monday to friday
    check(
        &interval(
            "times = [{ start_time = \"09:00\", end_time = \"17:00\" }]\nweekdays = [\"monday:friday\"]",
        ),
        &["04 May 20 15:04 +0000", "05 May 20 10:04 +0000", "09 Jun 20 09:04 +0000"],
        &["03 May 20 15:04 +0000", "04 May 20 08:59 +0000", "05 May 20 05:00 +0000"],
    );
    // Easter 2020
    check(
        &interval("days_of_month = [\"4:6\"]\nmonths = [\"april\"]\nyears = [\"2020\"]"),
        &["04 Apr 20 15:04 +0000", "05 Apr 20 00:00 +0000", "06 Apr 20 23:05 +0000"],
        &[
            "03 May 18 15:04 +0000",
            "03 Apr 20 23:59 +0000",
            "04 Jun 20 23:59 +0000",
            "06 Apr 19 23:59 +0000",
            "07 Apr 20 00:00 +0000",
        ],
    );
    // Negative days of month: the last 3 days of each month
    check(
        &interval("days_of_month = [\"-3:-1\"]"),
        &[
            "31 Jan 20 15:04 +0000",
            "30 Jan 20 15:04 +0000",
            "29 Jan 20 15:04 +0000",
            "30 Jun 20 00:00 +0000",
            "29 Feb 20 23:05 +0000",
        ],
        &[
            "03 May 18 15:04 +0000",
            "27 Jan 20 15:04 +0000",
            "03 Apr 20 23:59 +0000",
            "04 Jun 20 23:59 +0000",
            "06 Apr 19 23:59 +0000",
            "07 Apr 20 00:00 +0000",
            "01 Mar 20 00:00 +0000",
        ],
    );
    // Out-of-bound days are clamped to the month's boundaries. (Built as Alertmanager's test
    // builds it: its parser, like vodhook's, refuses "-31:31" as written.)
    let june = Interval { months: vec![(6, 6)], days_of_month: vec![(-31, 31)], ..Interval::always(utc()) };
    check(
        &TimeIntervals::new(vec![("t".into(), vec![june])]),
        &["30 Jun 20 00:00 +0000", "01 Jun 20 00:00 +0000"],
        &["31 May 20 00:00 +0000", "1 Jul 20 00:00 +0000"],
    );
}

#[test]
fn alertmanager_location_cases_with_the_zones_offsets() {
    // Australia/Sydney in April 2021 is +10:00: 9am to 5pm AEST, Monday to Friday.
    let business =
        "times = [{ start_time = \"09:00\", end_time = \"17:00\" }]\nweekdays = [\"monday:friday\"]";
    check(
        &interval(&format!("{business}\nutc_offset = \"+10:00\"")),
        &["06 Apr 21 13:00 +1000"],
        &["06 Apr 21 13:00 +0000"],
    );
    // ... and +11:00 in November (daylight saving time).
    check(
        &interval(&format!("{business}\nmonths = [\"november\"]\nutc_offset = \"+11:00\"")),
        &["01 Nov 21 09:00 +1100", "31 Oct 21 22:00 +0000"],
        &["31 Oct 21 21:00 +0000"],
    );
    // America/New_York at the end of March 2021 is -04:00: the last day does not shift.
    check(
        &interval("days_of_month = [\"-1:-1\"]\nutc_offset = \"-04:00\""),
        &["31 Mar 21 12:00 -0400"],
        &["30 Mar 21 12:00 -0400"],
    );
}

#[test]
fn alertmanager_unmarshal_cases() {
    let business = interval(
        "weekdays = [\"monday:friday\"]\ntimes = [{ start_time = \"09:00\", end_time = \"17:00\" }]",
    );
    check(
        &business,
        &["08 Jul 20 09:00 +0000", "08 Jul 20 16:59 +0000", "01 Apr 21 13:00 +0000"],
        &["08 Jul 20 05:00 +0000", "08 Jul 20 08:59 +0000"],
    );
    // The last week, but Saturday, of the first quarter, in business hours, 2020-2025 and 2030-2035.
    let advanced = interval(
        "weekdays = [\"monday:friday\", \"sunday\"]\nmonths = [\"january:march\"]\ndays_of_month = [\"-7:-1\"]\nyears = [\"2020:2025\", \"2030:2035\"]\ntimes = [{ start_time = \"09:00\", end_time = \"17:00\" }]",
    );
    check(
        &advanced,
        &[
            "27 Jan 21 09:00 +0000",
            "28 Jan 21 16:59 +0000",
            "29 Jan 21 13:00 +0000",
            "31 Mar 25 13:00 +0000",
            "31 Jan 35 13:00 +0000",
        ],
        &["30 Jan 21 13:00 +0000", "01 Apr 21 13:00 +0000", "30 Jan 26 13:00 +0000", "31 Jan 35 17:01 +0000"],
    );
    let months = interval("months = [\"January:december\"]");
    assert_eq!(months.named[0].1[0].months, vec![(1, 12)]);
    let negative = interval("days_of_month = [\"1:-1\"]");
    assert_eq!(negative.named[0].1[0].days_of_month, vec![(1, -1)]);
    // Numbers as TOML writes them.
    assert_eq!(interval("days_of_month = [-1]\nyears = [2026]").named[0].1[0].years, vec![(2026, 2026)]);
}

#[test]
fn alertmanager_complete_cases() {
    let complete = interval(
        "weekdays = [\"monday:wednesday\", \"saturday\", \"sunday\"]\ntimes = [{ start_time = \"13:00\", end_time = \"15:00\" }]\ndays_of_month = [\"1\", \"10\", \"20:-1\"]\nyears = [\"2020:2023\"]\nmonths = [\"january:march\"]",
    );
    check(
        &complete,
        &["10 Jan 21 13:00 +0000", "30 Jan 21 14:24 +0000"],
        &["09 Jan 21 13:00 +0000", "20 Jan 21 12:59 +0000", "02 Feb 21 13:00 +0000"],
    );
    // Broken clamping: a start day after the month's end matches nothing that month.
    check(
        &interval("days_of_month = [\"30:31\"]\nyears = [\"2020:2023\"]\nmonths = [\"february\"]"),
        &[],
        &["28 Feb 21 13:00 +0000"],
    );
}

/// Alertmanager's invalid values, refused with vodhook's messages (same meaning, the place and
/// the value named), and the time strings of `timeStringTestCases`.
#[test]
fn invalid_values_are_refused_naming_place_and_value() {
    let cases: &[(&str, &str)] = &[
        (
            "times = [{ start_time = \"01:99\", end_time = \"23:59\" }]",
            ".times[0]: \"01:99\" is not a time: expected HH:MM from 00:00 to 24:00",
        ),
        ("times = [{ start_time = \"00:00\", end_time = \"99:99\" }]", ".times[0]: \"99:99\" is not a time"),
        (
            "times = [{ start_time = \"17:31\", end_time = \"17:31\" }]",
            ".times[0]: start_time \"17:31\" is not before end_time \"17:31\"",
        ),
        ("times = [{ start_time = \"12:30\", end_time = \"24:01\" }]", "\"24:01\" is not a time"),
        ("times = [{ start_time = \"09:30\", end_time = \"07:41\" }]", "cannot wrap past midnight"),
        ("times = [{ start_time = \"24:00\", end_time = \"17:41\" }]", "is not before end_time"),
        ("times = [{ start_time = \"14:03\" }]", ".times[0]: both `start_time` and `end_time` are needed"),
        (
            "weekdays = [\"friday:monday\"]",
            ".weekdays[0]: \"friday:monday\": end day monday is before start day friday",
        ),
        ("weekdays = [\"blurgsday:flurgsday\"]", ".weekdays[0]: \"blurgsday\" is not a weekday"),
        ("weekdays = [\"1:3\"]", "\"1\" is not a weekday: write its name"),
        ("weekdays = [\"-2:-1\"]", "\"-2\" is not a weekday"),
        ("days_of_month = [\"0\"]", ".days_of_month[0]: \"0\" is not a day of the month"),
        ("days_of_month = [\"-50:-20\"]", "\"-50\" is not a day of the month"),
        ("days_of_month = [\"1:50\"]", "\"50\" is not a day of the month"),
        ("days_of_month = [\"-15:5\"]", "the end day must be negative when the start day is"),
        ("days_of_month = [\"10:-25\"]", "end day -25 is always before start day 10"),
        ("months = [\"martius:june\"]", ".months[0]: \"martius\" is not a month"),
        ("months = [\"march:junius\"]", "\"junius\" is not a month"),
        ("months = [\"december:january\"]", "end month january is before start month december"),
        ("months = [13]", "13 is not a month: expected 1 … 12"),
        ("years = [\"2022:2020\"]", ".years[0]: \"2022:2020\": end year 2020 is before start year 2022"),
        ("utc_offset = \"UTC+8\"", ".utc_offset: \"UTC+8\" is not an offset"),
        (
            "location = \"Australia/Sydney\"",
            ".location: \"Australia/Sydney\": IANA time-zone names need the time-zone database",
        ),
        ("location = \"Asia/Shanghai\"\nutc_offset = \"+08:00\"", "set `location` or `utc_offset`, not both"),
    ];
    for (body, expected) in cases {
        let text = format!("[[time_intervals]]\nname = \"night\"\n[[time_intervals.intervals]]\n{body}\n");
        let problems = compiled(&text).err().unwrap_or_else(|| panic!("{body} was accepted"));
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with("time_intervals[0] \"night\".intervals[0]") && p.contains(expected)),
            "{body}: expected {expected:?} in {problems:#?}"
        );
    }
    // And what Alertmanager accepts, vodhook does too.
    for body in [
        "times = [{ start_time = \"00:00\", end_time = \"24:00\" }]",
        "times = [{ start_time = \"01:35\", end_time = \"17:39\" }]",
        "years = [\"2020:2022\"]\nutc_offset = \"+10:00\"",
    ] {
        interval(body);
    }
}

/// Unix seconds of a local time written `2026-12-04T23:00:00+08:00`.
fn rfc3339(text: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(text).unwrap().timestamp()
}

const NIGHT_AND_WEEKEND: &str = r#"
[[time_intervals]]
name = "night"
[[time_intervals.intervals]]
times = [{ start_time = "00:00", end_time = "08:00" }, { start_time = "22:00", end_time = "24:00" }]
utc_offset = "+08:00"
[[time_intervals.intervals]]
weekdays = ["saturday", "sunday"]
utc_offset = "+08:00"
[[time_intervals]]
name = "business"
[[time_intervals.intervals]]
times = [{ start_time = "09:00", end_time = "17:00" }]
weekdays = ["monday:friday"]
utc_offset = "+08:00"
"#;

#[test]
fn a_hold_lasts_until_the_first_instant_not_muted_merging_back_to_back_ranges() {
    let intervals = compiled(NIGHT_AND_WEEKEND).unwrap();
    let night = Quiet { mute: vec![0], ..Quiet::default() };
    // Thursday 23:00 → Friday 08:00 (22:00-24:00 and 00:00-08:00 are one stretch).
    let muted = intervals.muted(&night, rfc3339("2026-12-03T23:00:00+08:00")).unwrap();
    assert_eq!(muted.muted_by, vec!["night"]);
    assert_eq!(muted.held_until, rfc3339("2026-12-04T08:00:00+08:00"));
    // Friday 23:00 → the weekend follows the night → Monday 08:00.
    let muted = intervals.muted(&night, rfc3339("2026-12-04T23:00:00+08:00")).unwrap();
    assert_eq!(muted.held_until, rfc3339("2026-12-07T08:00:00+08:00"));
    // Mid-minute: still held to the whole minute the range ends at.
    let muted = intervals.muted(&night, rfc3339("2026-12-03T07:59:30+08:00")).unwrap();
    assert_eq!(muted.held_until, rfc3339("2026-12-03T08:00:00+08:00"));
    assert_eq!(intervals.muted(&night, rfc3339("2026-12-03T08:00:00+08:00")), None);
}

#[test]
fn active_time_intervals_mute_outside_them() {
    let intervals = compiled(NIGHT_AND_WEEKEND).unwrap();
    let business = Quiet { active: vec![1], ..Quiet::default() };
    let muted = intervals.muted(&business, rfc3339("2026-12-05T10:00:00+08:00")).unwrap();
    assert_eq!(muted.muted_by, vec!["not business"]);
    assert_eq!(muted.held_until, rfc3339("2026-12-07T09:00:00+08:00"));
    assert_eq!(intervals.muted(&business, rfc3339("2026-12-07T09:00:00+08:00")), None);
    // Both kinds: muted by the night, and outside business hours.
    let both = Quiet { mute: vec![0], active: vec![1], ..Quiet::default() };
    let muted = intervals.muted(&both, rfc3339("2026-12-03T23:00:00+08:00")).unwrap();
    assert_eq!(muted.muted_by, vec!["night", "not business"]);
    assert_eq!(muted.held_until, rfc3339("2026-12-04T09:00:00+08:00"));
}

#[test]
fn a_mute_longer_than_seven_days_is_found() {
    let now = rfc3339("2026-12-04T12:00:00Z");
    let always = compiled("[[time_intervals]]\nname = \"always\"\n[[time_intervals.intervals]]\n").unwrap();
    let quiet = Quiet { mute: vec![0], ..Quiet::default() };
    assert_eq!(always.overlong_mute(&quiet, now), Some(now));
    assert_eq!(always.muted(&quiet, now).unwrap().held_until, now + MAX_HOLD_SECS);
    let december =
        compiled("[[time_intervals]]\nname = \"d\"\n[[time_intervals.intervals]]\nmonths = [\"december\"]\n")
            .unwrap();
    assert!(december.overlong_mute(&quiet, now).is_some());
    // A year range beyond the look-ahead is looked at too.
    let later =
        compiled("[[time_intervals]]\nname = \"y\"\n[[time_intervals.intervals]]\nyears = [\"2031\"]\n")
            .unwrap();
    assert!(later.overlong_mute(&quiet, now).is_some());
    let nights = compiled(NIGHT_AND_WEEKEND).unwrap();
    assert_eq!(nights.overlong_mute(&quiet, now), None);
    // Outside business hours is at most a weekend and two nights.
    assert_eq!(nights.overlong_mute(&Quiet { active: vec![1], ..Quiet::default() }, now), None);
}
