//! Who a chat message mentions, read the way each service reads it (from their documentation,
//! written out here again rather than taken from vodhook, so a mistake there cannot hide itself):
//!
//! - DingTalk: a person is mentioned only when listed in `at` (`atMobiles`, `atUserIds`) *and*
//!   written in the text as `@<mobile>` / `@<userId>`; everyone when `at.isAtAll` is true.
//! - WeCom markdown: `<@userid>` anywhere in the content (`<@all>` read as everyone, though
//!   markdown documents none).
//! - Feishu: any `<at id=…>`, `<at user_id=…>`, `<at email=…>` tag in any string of the body, and
//!   `post` elements `{"tag": "at", "user_id": …}`; `all` is everyone.
//! - Slack: `<@U…>`, `<!subteam^S…>`, `<!channel>` / `<!here>` / `<!everyone>` in any string.
//!
//! Each mention is named `user:<id>`, `mobile:<n>`, `group:<id>` or `all`, once per time the
//! service would notify (so "exactly once" can be checked).

use regex::Regex;
use serde_json::Value;
use vodhook::channel::ChannelType;

/// The mentions in `body`, a message of `kind`, in the order found.
pub fn read(kind: ChannelType, body: &Value) -> Vec<String> {
    match kind {
        ChannelType::Dingtalk => dingtalk(body),
        ChannelType::Wecom => wecom(body),
        ChannelType::Feishu => feishu(body),
        ChannelType::Slack => slack(body),
        other => panic!("{other} messages mention no one by markup"),
    }
}

/// Every string anywhere in `value`.
pub fn strings(value: &Value) -> Vec<&str> {
    match value {
        Value::String(s) => vec![s.as_str()],
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        Value::Object(map) => map.values().flat_map(strings).collect(),
        _ => Vec::new(),
    }
}

fn dingtalk(body: &Value) -> Vec<String> {
    let text = body["markdown"]["text"].as_str().or(body["text"]["content"].as_str()).unwrap_or_default();
    let listed = |key: &str| -> Vec<String> {
        body["at"][key]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    };
    let mut found = Vec::new();
    for (kind, ids) in [("mobile", listed("atMobiles")), ("user", listed("atUserIds"))] {
        for id in ids {
            let written = Regex::new(&format!("@{}(?:$|[^0-9A-Za-z_])", regex::escape(&id))).unwrap();
            found.extend(written.find_iter(text).map(|_| format!("{kind}:{id}")));
        }
    }
    if body["at"]["isAtAll"] == Value::Bool(true) {
        found.push("all".to_owned());
    }
    found
}

fn wecom(body: &Value) -> Vec<String> {
    let content = body["markdown"]["content"].as_str().unwrap_or_default();
    let tag = Regex::new(r"<@([^>]+)>").unwrap();
    tag.captures_iter(content)
        .map(|c| if &c[1] == "all" { "all".to_owned() } else { format!("user:{}", &c[1]) })
        .collect()
}

fn feishu(body: &Value) -> Vec<String> {
    let tag = Regex::new(r#"(?i)<\s*at\s+(?:id|user_id|email)\s*=\s*["']?([^"'\s>]+)"#).unwrap();
    let name = |id: &str| if id == "all" { "all".to_owned() } else { format!("user:{id}") };
    let mut found: Vec<String> = strings(body)
        .into_iter()
        .flat_map(|s| tag.captures_iter(s).map(|c| name(&c[1])).collect::<Vec<_>>())
        .collect();
    let post = &body["content"]["post"]["zh_cn"]["content"];
    for element in post.as_array().into_iter().flatten().flat_map(|p| p.as_array().into_iter().flatten()) {
        if element["tag"] == "at" {
            found.push(name(element["user_id"].as_str().unwrap_or_default()));
        }
    }
    found
}

fn slack(body: &Value) -> Vec<String> {
    let tag = Regex::new(r"<(@|!)([^>|]+)(?:\|[^>]*)?>").unwrap();
    let mut found = Vec::new();
    for s in strings(body) {
        for c in tag.captures_iter(s) {
            let (sigil, inner) = (&c[1], &c[2]);
            found.push(match (sigil, inner) {
                ("@", id) => format!("user:{id}"),
                (_, "channel" | "here" | "everyone") => "all".to_owned(),
                (_, group) if group.starts_with("subteam^") => format!("group:{}", &group[8..]),
                (_, other) => format!("special:{other}"),
            });
        }
    }
    found
}
