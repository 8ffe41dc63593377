//! Every shape problem of a configuration at once, each at its key path.
//!
//! serde stops at the first field it cannot take, so a file with a misspelled key and five other
//! mistakes would be fixed one run at a time, and its error (`unknown field `secert`, expected
//! one of …`) names neither the table it is in nor the key meant. So when the whole file does not
//! deserialize, each section, each channel and each route is deserialized on its own: every
//! problem is found, named by its place (`channels[2] "ops"`), with "did you mean" for a
//! misspelled key or value. Values are never quoted from serde's messages (a secret typed into
//! the wrong field must not be echoed).

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use super::{AuthConfig, ChannelConfig, DedupConfig, DeliveryConfig, MessagesConfig, OutboxConfig, Problem};
use super::{
    LinksConfig, MetricsConfig, ReportConfig, RouteConfig, ServerConfig, TimeIntervalConfig, VodConfig,
};
use super::{channel_location, interval_location, route_location};

/// The top-level keys, in the order the file usually has them.
const SECTIONS: [&str; 14] = [
    "server",
    "auth",
    "delivery",
    "store",
    "dedup",
    "outbox",
    "messages",
    "vod",
    "channels",
    "routes",
    "time_intervals",
    "links",
    "metrics",
    "report",
];

/// Every shape problem of `text` (a TOML document that does not deserialize as a whole), each
/// with its line; `None` when the text is not TOML at all. Each part is read with the same
/// deserializer as the whole file, so this costs no second copy of serde's code for the types.
pub fn shape_problems(text: &str) -> Option<Vec<Problem>> {
    let doc = DeTable::parse(text).ok()?;
    let mut problems = Vec::new();
    for (key, value) in doc.get_ref() {
        let mut check = |at: &str, run: fn(ValueDeserializer<'_>) -> Result<(), toml::de::Error>| {
            if let Err(err) = run(ValueDeserializer::from(value.clone())) {
                problems.push(explain(text, value, at, &err));
            }
        };
        match key.get_ref().as_ref() {
            "server" => check("server", |d| ServerConfig::deserialize(d).map(drop)),
            "auth" => check("auth", |d| AuthConfig::deserialize(d).map(drop)),
            "delivery" => check("delivery", |d| DeliveryConfig::deserialize(d).map(drop)),
            "store" => check("store", |d| DedupConfig::deserialize(d).map(drop)),
            "dedup" => check("dedup", |d| DedupConfig::deserialize(d).map(drop)),
            "outbox" => check("outbox", |d| OutboxConfig::deserialize(d).map(drop)),
            "messages" => check("messages", |d| MessagesConfig::deserialize(d).map(drop)),
            "vod" => check("vod", |d| VodConfig::deserialize(d).map(drop)),
            "links" => check("links", |d| LinksConfig::deserialize(d).map(drop)),
            "metrics" => check("metrics", |d| MetricsConfig::deserialize(d).map(drop)),
            "report" => check("report", |d| ReportConfig::deserialize(d).map(drop)),
            "channels" => each(text, value, "channels", channel_location, &mut problems, |d| {
                ChannelConfig::deserialize(d).map(drop)
            }),
            "routes" => each(text, value, "routes", route_location, &mut problems, |d| {
                RouteConfig::deserialize(d).map(drop)
            }),
            "time_intervals" => each(text, value, "time_intervals", interval_location, &mut problems, |d| {
                TimeIntervalConfig::deserialize(d).map(drop)
            }),
            other => problems.push(Problem::new(other, unknown("section", other, &SECTIONS))),
        }
    }
    Some(problems)
}

/// Each element of the array `value`, read by `run`, named by `location` (index and `name`).
fn each(
    text: &str,
    value: &Spanned<DeValue<'_>>,
    key: &str,
    location: fn(usize, &str) -> String,
    problems: &mut Vec<Problem>,
    run: fn(ValueDeserializer<'_>) -> Result<(), toml::de::Error>,
) {
    let Some(items) = value.get_ref().as_array() else {
        problems.push(Problem::new(key, format!("must be a list of tables: [[{key}]]")));
        return;
    };
    for (i, item) in items.iter().enumerate() {
        let name = item.get_ref().as_table().and_then(|t| string_at(t, "name"));
        let at = match name {
            Some(name) => location(i, name),
            None => format!("{key}[{i}]"),
        };
        if let Err(err) = run(ValueDeserializer::from(item.clone())) {
            problems.push(explain(text, item, &at, &err));
        }
    }
}

/// The string value of `key` in `table`.
fn string_at<'a>(table: &'a DeTable<'_>, key: &str) -> Option<&'a str> {
    table.iter().find(|(k, _)| k.get_ref().as_ref() == key).and_then(|(_, v)| v.get_ref().as_str())
}

/// serde's error for the table `value` at `at`, said with the key it is about when it can be
/// found, with "did you mean", and with its line and column in `text` (the error's own, else
/// where the table starts).
fn explain(text: &str, value: &Spanned<DeValue<'_>>, at: &str, err: &toml::de::Error) -> Problem {
    let mut problem = explain_message(value.get_ref(), at, err.message());
    let start = err.span().unwrap_or_else(|| value.span()).start;
    problem.message = format!("{} ({})", problem.message, super::line_and_column(text, start));
    problem
}

/// The message part of [`explain`].
fn explain_message(value: &DeValue<'_>, at: &str, message: &str) -> Problem {
    let message = crate::redact::without_values(message.trim());
    if let Some((name, known)) = unknown_field(&message) {
        return Problem::new(
            table_holding_key(value, at, &name),
            unknown("key", &name, &known.iter().map(String::as_str).collect::<Vec<_>>()),
        );
    }
    if let Some((found, known)) = unknown_variant(&message) {
        // The key holding the value serde refused (values of enumerations are not secrets).
        let place = key_holding(value, at, &found);
        let near = crate::text::nearest(&found, known.iter().map(String::as_str))
            .map(|n| format!(": did you mean {n:?}?"))
            .unwrap_or_default();
        return Problem::new(place, format!("{found:?} is not one of {}{near}", known.join(", ")));
    }
    // A value's own error (`"UTC+8" is not an offset: …`): at the key holding that value.
    if let Some(found) = message.strip_prefix('"').and_then(|r| r.split('"').next()) {
        return Problem::new(key_holding(value, at, found), message.clone());
    }
    Problem::new(at, message)
}

/// The key path of the table holding the key `name`: `value` itself (at `at`), else the inline
/// table in it that has the key (`routes[0] "r".mention` for a typo inside `mention = {…}`).
fn table_holding_key(value: &DeValue<'_>, at: &str, name: &str) -> String {
    let Some(table) = value.as_table() else { return at.to_owned() };
    if table.iter().any(|(k, _)| k.get_ref() == name) {
        return at.to_owned();
    }
    let inner = table
        .iter()
        .find(|(_, v)| v.get_ref().as_table().is_some_and(|t| t.iter().any(|(k, _)| k.get_ref() == name)));
    inner.map_or_else(|| at.to_owned(), |(k, _)| crate::text::join_path(at, k.get_ref()))
}

/// The key path of the string `found` in the table `value` (at `at`), else `at`.
fn key_holding(value: &DeValue<'_>, at: &str, found: &str) -> String {
    let key = value.as_table().and_then(|t| t.iter().find(|(_, v)| v.get_ref().as_str() == Some(found)));
    key.map_or_else(|| at.to_owned(), |(k, _)| crate::text::join_path(at, k.get_ref()))
}

/// "unknown section/key `name`: did you mean `x`?", else the known ones.
fn unknown(what: &str, name: &str, known: &[&str]) -> String {
    match crate::text::nearest(name, known.iter().copied()) {
        Some(near) => format!("unknown {what} `{name}`: did you mean `{near}`?"),
        None => format!("unknown {what} `{name}` (known: {})", known.join(", ")),
    }
}

/// serde's "unknown field `x`, expected one of `a`, `b`" (or "expected `a` or `b`").
fn unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (name, rest) = rest.split_once('`')?;
    Some((name.to_owned(), backquoted(rest)))
}

/// serde's "unknown variant `x`, expected `a` or `b`".
fn unknown_variant(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown variant `")?;
    let (found, rest) = rest.split_once('`')?;
    Some((found.to_owned(), backquoted(rest)))
}

/// The `quoted` words of `text`.
fn backquoted(text: &str) -> Vec<String> {
    text.split('`').skip(1).step_by(2).map(str::to_owned).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        shape_problems(text).unwrap().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn every_problem_at_its_place_with_did_you_mean_and_its_line() {
        let found = problems(
            "[messages]\nlocale = \"zh-cn\"\n[vod]\nregoin = \"x\"\n[[channels]]\nname = \"ops\"\ntype = \"dingtalk\"\nsecert = \"SEC1\"\n[[routes]]\nname = \"r\"\nchanels = [\"ops\"]\n[sever]\n",
        );
        let has = |expected: &str| found.iter().any(|p| p.starts_with(expected));
        assert!(
            has("messages.locale: \"zh-cn\" is not one of en, zh-CN: did you mean \"zh-CN\"? (line 2"),
            "{found:#?}"
        );
        assert!(has("vod: unknown key `regoin`: did you mean `region`? (line 4"), "{found:#?}");
        assert!(has("channels[0] \"ops\": unknown key `secert`: did you mean `secret`?"), "{found:#?}");
        assert!(
            has("routes[0] \"r\": unknown key `chanels`: did you mean `channels`? (line 11"),
            "{found:#?}"
        );
        assert!(has("sever: unknown section `sever`: did you mean `server`?"), "{found:#?}");
        assert_eq!(found.len(), 5, "{found:#?}");
        assert!(shape_problems("[not toml").is_none());
    }
}
