//! The reader's language and time offset: the translation tables (one file per locale) and the
//! helpers every template gets — `t("…")`, and the `duration`, `time` and `status_word` filters.
//!
//! English is the language the templates are written in: its table is empty, and `t` returns
//! its key, so an English message is exactly what it was before locales existed. Another locale
//! is one file with a [`Table`]; a key a table lacks falls back to the English key.
//!
//! Times: VOD sends UTC. With a `utc_offset` they are shown in that fixed offset, the offset
//! written (`2025-05-12 16:01:45 +08:00`); without one (or with `Z`) exactly as VOD sent them.
//! A fixed offset needs no time-zone database: enough for China (no daylight saving since
//! 1991); a zone with daylight saving gets the offset it sets, all year.

mod zh_cn;

use chrono::{DateTime, FixedOffset, Utc};

use crate::config::{ChannelConfig, Locale, MessagesConfig, UtcOffset};
use crate::event::{TaskStatus, VodTime, human_duration};

/// One locale's texts.
#[derive(Debug)]
pub struct Table {
    /// English text (as the templates write it) → this locale's.
    pub words: &'static [(&'static str, &'static str)],
    /// A status as VOD sends it (`Succeed`, `Failed`; any case) → this locale's word.
    pub statuses: &'static [(&'static str, &'static str)],
    /// Day, hour, minute, second: durations are written `1分45秒`, zero parts left out.
    pub units: [&'static str; 4],
}

const EN: Table = Table { words: &[], statuses: &[], units: ["d", "h", "m", "s"] };

fn table(locale: Locale) -> &'static Table {
    match locale {
        Locale::En => &EN,
        Locale::ZhCn => &zh_cn::TABLE,
    }
}

/// The channel's locale and offset, else `[messages]`'s; an offset of `Z` is none (times as
/// VOD sends them, in UTC). A `log` channel writes records for operators and their tools, not
/// messages for readers: only its own settings change it.
pub fn of_channel(channel: &ChannelConfig, messages: &MessagesConfig) -> (Locale, Option<UtcOffset>) {
    let inherited = channel.kind().has_readers();
    let locale = channel.locale.or(inherited.then_some(messages.locale)).unwrap_or_default();
    let offset = channel.utc_offset.as_ref().or(messages.utc_offset.as_ref().filter(|_| inherited));
    (locale, offset.filter(|o| !o.is_utc()).cloned())
}

/// `key` (English text) in `locale`; the key itself where the table has none.
pub fn word(locale: Locale, key: &str) -> String {
    translated(locale, key).unwrap_or(key).to_owned()
}

/// `key` (English text) in `locale`, where the table has it.
pub fn translated(locale: Locale, key: &str) -> Option<&'static str> {
    table(locale).words.iter().find(|(en, _)| *en == key).map(|(_, w)| *w)
}

/// A status (`Succeed`, `Failed`, anything VOD adds) in `locale`; others as sent.
pub fn status_word(locale: Locale, status: &str) -> String {
    let canonical = match TaskStatus::parse(status) {
        TaskStatus::Succeed => "Succeed",
        TaskStatus::Failed => "Failed",
        TaskStatus::Other(_) => return status.to_owned(),
    };
    match table(locale).statuses.iter().find(|(en, _)| *en == canonical) {
        Some((_, word)) => (*word).to_owned(),
        None => status.to_owned(),
    }
}

/// `secs` as a person writes it: English `1m 45s` (as before locales), Chinese `1分45秒`.
pub fn duration(locale: Locale, secs: i64) -> String {
    if locale == Locale::En {
        return human_duration(secs);
    }
    let units = table(locale).units;
    let parts = [secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60];
    let text: String =
        parts.iter().zip(units).filter(|(n, _)| **n != 0).map(|(n, unit)| format!("{n}{unit}")).collect();
    if text.is_empty() { format!("0{}", units[3]) } else { text }
}

/// An event time (`raw`, as VOD sent it) at `offset_secs` east of UTC; `raw` itself without an
/// offset, at UTC, or when it is not a time.
pub fn time(raw: &str, offset_secs: Option<i32>) -> String {
    let offset = offset_secs.filter(|s| *s != 0);
    match (offset.and_then(FixedOffset::east_opt), VodTime::parse(raw).parsed) {
        (Some(offset), Some(utc)) => shown(utc, offset),
        _ => raw.to_owned(),
    }
}

fn shown(utc: DateTime<Utc>, offset: FixedOffset) -> String {
    utc.with_timezone(&offset).format("%Y-%m-%d %H:%M:%S %:z").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_both_locales() {
        let table = [
            (0, "0s", "0秒"),
            (59, "59s", "59秒"),
            (105, "1m 45s", "1分45秒"),
            (3 * 3600 + 2 * 60, "3h 2m 0s", "3小时2分"),
            (2 * 86_400, "48h 0m 0s", "2天"),
            (86_400 + 5, "24h 0m 5s", "1天5秒"),
        ];
        for (secs, en, zh) in table {
            assert_eq!(duration(Locale::En, secs), en, "{secs}");
            assert_eq!(duration(Locale::ZhCn, secs), zh, "{secs}");
        }
    }

    #[test]
    fn times_are_shown_in_the_offset_with_the_offset_written() {
        let raw = "2025-05-12T08:01:45Z";
        assert_eq!(time(raw, None), raw);
        let secs = |text: &str| text.parse::<UtcOffset>().ok().map(|o| o.seconds());
        assert_eq!(time(raw, secs("Z")), raw);
        assert_eq!(time(raw, secs("+08:00")), "2025-05-12 16:01:45 +08:00");
        assert_eq!(time(raw, secs("-05:30")), "2025-05-12 02:31:45 -05:30");
        assert_eq!(time("yesterday", secs("+08:00")), "yesterday", "not a time: as sent");
    }

    #[test]
    fn words_and_statuses_fall_back_to_english() {
        assert_eq!(word(Locale::En, "Status"), "Status");
        assert_eq!(word(Locale::ZhCn, "Status"), "状态");
        assert_eq!(word(Locale::ZhCn, "no such key"), "no such key");
        assert_eq!(status_word(Locale::ZhCn, "Failed"), "失败");
        assert_eq!(status_word(Locale::ZhCn, "success"), "成功");
        assert_eq!(status_word(Locale::ZhCn, "Processing"), "Processing");
        assert_eq!(status_word(Locale::En, "Failed"), "Failed");
    }
}
