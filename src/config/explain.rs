//! Every shape problem of a configuration at once, each at its key path.
//!
//! serde stops at the first field it cannot take, so a file with a misspelled key and five other
//! mistakes would be fixed one run at a time, and its error (`unknown field `secert`, expected
//! one of …`) names neither the table it is in nor the key meant. So when the whole file does not
//! deserialize, each section, each channel and each route is deserialized on its own: every
//! problem is found, named by its place (`channels[2] "ops"`), with "did you mean" for a
//! misspelled key or value. Values are never quoted from serde's messages (a secret typed into
//! the wrong field must not be echoed).

use toml::{Table, Value};

use super::{AuthConfig, ChannelConfig, DedupConfig, DeliveryConfig, MessagesConfig, OutboxConfig, Problem};
use super::{RouteConfig, ServerConfig, VodConfig, channel_location, route_location};

/// The top-level keys, in the order the file usually has them.
const SECTIONS: [&str; 10] =
    ["server", "auth", "delivery", "store", "dedup", "outbox", "messages", "vod", "channels", "routes"];

/// Every shape problem of `table` (a parsed TOML document that does not deserialize as a whole).
pub fn shape_problems(table: &Table) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (key, value) in table {
        match key.as_str() {
            "server" => check::<ServerConfig>(value, "server", &mut problems),
            "auth" => check::<AuthConfig>(value, "auth", &mut problems),
            "delivery" => check::<DeliveryConfig>(value, "delivery", &mut problems),
            "store" => check::<DedupConfig>(value, "store", &mut problems),
            "dedup" => check::<DedupConfig>(value, "dedup", &mut problems),
            "outbox" => check::<OutboxConfig>(value, "outbox", &mut problems),
            "messages" => check::<MessagesConfig>(value, "messages", &mut problems),
            "vod" => check::<VodConfig>(value, "vod", &mut problems),
            "channels" => each::<ChannelConfig>(value, "channels", channel_location, &mut problems),
            "routes" => each::<RouteConfig>(value, "routes", route_location, &mut problems),
            other => problems.push(Problem::new(other, unknown("section", other, &SECTIONS))),
        }
    }
    problems
}

/// `value` as a `T`, or the problem, at `at`.
fn check<T: serde::de::DeserializeOwned>(value: &Value, at: &str, problems: &mut Vec<Problem>) {
    if let Err(err) = value.clone().try_into::<T>() {
        problems.push(explain(value, at, err.message()));
    }
}

/// Each element of the array `value` as a `T`, named by `location` (index and `name`).
fn each<T: serde::de::DeserializeOwned>(
    value: &Value,
    key: &str,
    location: fn(usize, &str) -> String,
    problems: &mut Vec<Problem>,
) {
    let Some(items) = value.as_array() else {
        problems.push(Problem::new(key, format!("must be a list of tables: [[{key}]]")));
        return;
    };
    for (i, item) in items.iter().enumerate() {
        let at = match item.get("name").and_then(Value::as_str) {
            Some(name) => location(i, name),
            None => format!("{key}[{i}]"),
        };
        check::<T>(item, &at, problems);
    }
}

/// serde's message for the table `value` at `at`, said with the key it is about when it can be
/// found, and with "did you mean".
fn explain(value: &Value, at: &str, message: &str) -> Problem {
    let message = crate::redact::without_values(message.trim());
    if let Some((name, known)) = unknown_field(&message) {
        return Problem::new(
            at,
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

/// The key path of the string `found` in the table `value` (at `at`), else `at`.
fn key_holding(value: &Value, at: &str, found: &str) -> String {
    let key = value.as_table().and_then(|t| t.iter().find(|(_, v)| v.as_str() == Some(found)));
    key.map_or_else(|| at.to_owned(), |(k, _)| crate::text::join_path(at, k))
}

/// Whether serde's `original` message and the explained `message` speak of the same key or value
/// (the first quoted word of each).
pub fn mentions_same(original: &str, message: &str) -> bool {
    let first_quoted = |text: &str| text.split(['`', '"']).nth(1).map(str::to_owned);
    first_quoted(original).is_some() && first_quoted(original) == first_quoted(message)
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
        let table: Table = toml::from_str(text).unwrap();
        shape_problems(&table).iter().map(ToString::to_string).collect()
    }

    #[test]
    fn every_problem_at_its_place_with_did_you_mean() {
        let found = problems(
            "[messages]\nlocale = \"zh-cn\"\n[vod]\nregoin = \"x\"\n[[channels]]\nname = \"ops\"\ntype = \"dingtalk\"\nsecert = \"SEC1\"\n[[routes]]\nname = \"r\"\nchanels = [\"ops\"]\n[sever]\n",
        );
        assert!(
            found.contains(
                &"messages.locale: \"zh-cn\" is not one of en, zh-CN: did you mean \"zh-CN\"?".to_owned()
            ),
            "{found:#?}"
        );
        assert!(
            found.contains(&"vod: unknown key `regoin`: did you mean `region`?".to_owned()),
            "{found:#?}"
        );
        assert!(
            found.contains(&"channels[0] \"ops\": unknown key `secert`: did you mean `secret`?".to_owned()),
            "{found:#?}"
        );
        assert!(
            found
                .iter()
                .any(|p| p.starts_with("routes[0] \"r\": unknown key `chanels`: did you mean `channels`?")),
            "{found:#?}"
        );
        assert!(
            found.contains(&"sever: unknown section `sever`: did you mean `server`?".to_owned()),
            "{found:#?}"
        );
        assert_eq!(found.len(), 5, "{found:#?}");
    }
}
