//! The markup dialects messages are written in, and escaping event values for each, so that a
//! title or an error message from VOD cannot restyle or restructure a message.
//!
//! Escaping is deliberately minimal. The chat services do not document their markdown
//! precisely, so only the characters that can restyle or restructure a message are touched,
//! and in the way each markup is most likely to honour:
//! - CommonMark-like (DingTalk, WeCom): a backslash before `\ * _ ~ ` [ ] < >`; `_` inside a
//!   word (`cat_video_final.mp4`) is left alone, as CommonMark does not treat it as emphasis;
//! - Feishu `lark_md`: HTML character references (`&#42;` for `*`), which Feishu's card
//!   markdown documents for showing its special characters literally;
//! - Slack mrkdwn: `&`, `<`, `>` as `&amp;`, `&lt;`, `&gt;`, the only escaping Slack has
//!   (`*_~` cannot be escaped there; titles go in the plain-text header block instead).
//!
//! Every escaped value is also put on one line, so a title with a newline cannot start a new
//! heading or list item.

use crate::text::one_line;

/// The markup a message body is written in. Templates see it as the `markup` variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Markup {
    /// DingTalk markdown: no inline code.
    Dingtalk,
    /// WeCom markdown.
    Wecom,
    /// Feishu card markdown.
    Lark,
    /// Slack mrkdwn.
    Slack,
    /// Plain text (webhook summary, Feishu `post`, log lines).
    Text,
}

impl Markup {
    pub fn as_str(self) -> &'static str {
        match self {
            Markup::Dingtalk => "dingtalk_markdown",
            Markup::Wecom => "wecom_markdown",
            Markup::Lark => "lark_md",
            Markup::Slack => "slack_mrkdwn",
            Markup::Text => "text",
        }
    }

    pub fn parse(name: &str) -> Markup {
        match name {
            "dingtalk_markdown" => Markup::Dingtalk,
            "wecom_markdown" => Markup::Wecom,
            "lark_md" => Markup::Lark,
            "slack_mrkdwn" => Markup::Slack,
            _ => Markup::Text,
        }
    }
}

/// A link to `url` reading `label`, in `markup`. The URL is kept as it is (a signed URL's `_`,
/// `&` and `=` must reach the reader untouched), except the few characters that would end the
/// link early in that markup, percent-encoded (which leaves the URL the same URL): `(`, `)`,
/// spaces and angle brackets in markdown; `|` and angle brackets on Slack, where `&` is written
/// `&amp;` as everywhere in Slack text (Slack reads it back). Plain text: `label: url`.
pub fn link(url: &str, label: &str, markup: Markup) -> String {
    let url = one_line(url);
    let encode = |breaking: &[(char, &str)]| -> String {
        url.chars()
            .map(|c| {
                breaking.iter().find(|(b, _)| *b == c).map_or_else(|| c.to_string(), |(_, e)| (*e).to_owned())
            })
            .collect()
    };
    match markup {
        Markup::Dingtalk | Markup::Wecom | Markup::Lark => {
            let url = encode(&[('(', "%28"), (')', "%29"), (' ', "%20"), ('<', "%3C"), ('>', "%3E")]);
            format!("[{}]({url})", escape(label, markup))
        }
        Markup::Slack => {
            let url = encode(&[('|', "%7C"), ('<', "%3C"), ('>', "%3E"), (' ', "%20"), ('&', "&amp;")]);
            format!("<{url}|{}>", escape(label, markup))
        }
        Markup::Text => format!("{}: {url}", one_line(label)),
    }
}

// ---- the lines of the built-in messages -------------------------------------------------------
//
// The built-in messages of every service are one skeleton (`template::facts`: which facts, in
// which order, with which labels); these write its lines as each markup does, so a service adds
// only its markup. They write template text (a value is an expression such as
// `{{ video_id | code }}`), except `node_error`, which templates call as it renders.

/// A fact's line, `label: value`: a list item in DingTalk, the label bold in Feishu cards and
/// Slack, plain in WeCom and plain text. `colon` and `colon_space` are the locale's `:` and `: `.
pub fn fact(markup: Markup, label: &str, value: &str, colon: &str, colon_space: &str) -> String {
    match markup {
        Markup::Dingtalk => format!("- {label}{colon_space}{value}"),
        Markup::Wecom | Markup::Text => format!("{label}{colon_space}{value}"),
        Markup::Lark => format!("**{label}{colon}** {value}"),
        Markup::Slack => format!("*{label}{colon}* {value}"),
    }
}

/// The template of a status (`inner`, an expression) as its line shows it: bold in DingTalk;
/// coloured in WeCom and Feishu cards (green when it succeeded, red when it failed, else
/// orange, read from `ok` and `failed` as it renders); as it is in Slack and plain text.
pub fn status_template(markup: Markup, inner: &str) -> String {
    match markup {
        Markup::Dingtalk => format!("**{inner}**"),
        Markup::Wecom => {
            format!(
                "<font color=\"{{{{ \"info\" if ok else (\"warning\" if failed else \"comment\") }}}}\">{inner}</font>"
            )
        }
        Markup::Lark => {
            format!(
                "<font color='{{{{ \"green\" if ok else (\"red\" if failed else \"orange\") }}}}'>{inner}</font>"
            )
        }
        Markup::Slack | Markup::Text => inner.to_owned(),
    }
}

/// A section's heading (`Nodes`), after a blank line and bold in the markdowns (DingTalk's
/// lists need a blank line after it too); `Nodes:` in plain text.
pub fn heading(markup: Markup, label: &str, colon: &str) -> String {
    match markup {
        Markup::Dingtalk => format!("\n**{label}**\n"),
        Markup::Wecom | Markup::Lark => format!("\n**{label}**"),
        Markup::Slack => format!("\n*{label}*"),
        Markup::Text => format!("{label}{colon}"),
    }
}

/// What starts an item's line (a node's): a list item in DingTalk, nothing elsewhere.
pub fn bullet(markup: Markup) -> &'static str {
    if markup == Markup::Dingtalk { "- " } else { "" }
}

/// Error messages under a node are cut to this many characters.
pub const MAX_NODE_ERROR_CHARS: usize = 300;

/// The line under a failed node: its error code and message, indented as each markup can — a
/// nested item in DingTalk (`code: message`), `↳` in plain text (the same), WeCom and Feishu
/// cards (a full-width space first, which their markdown keeps; `code message`), a quote in
/// Slack (`code message`).
pub fn node_error(markup: Markup, code: &str, message: &str) -> String {
    let written = if code.is_empty() { String::new() } else { self::code(code, markup) };
    let text = escape(&crate::text::truncate_chars(message, MAX_NODE_ERROR_CHARS), markup);
    match markup {
        Markup::Dingtalk | Markup::Text => {
            let indent = if markup == Markup::Dingtalk { "    - " } else { "    ↳ " };
            let colon = if !code.is_empty() && !message.is_empty() { ": " } else { "" };
            format!("{indent}{written}{colon}{text}")
        }
        Markup::Wecom | Markup::Lark | Markup::Slack => {
            let indent = if markup == Markup::Slack { ">" } else { "　↳ " };
            let space = if code.is_empty() { "" } else { " " };
            format!("{indent}{written}{space}{text}")
        }
    }
}

/// `text` on one line, safe to put anywhere inline in a message in `markup`.
pub fn escape(text: &str, markup: Markup) -> String {
    let text = one_line(text);
    match markup {
        Markup::Text => text,
        Markup::Slack => escape_chars(&text, |c, _| match c {
            '&' => Some("&amp;"),
            '<' => Some("&lt;"),
            '>' => Some("&gt;"),
            _ => None,
        }),
        Markup::Lark => escape_chars(&text, |c, intraword| match c {
            '&' => Some("&amp;"),
            '<' => Some("&lt;"),
            '>' => Some("&gt;"),
            '*' => Some("&#42;"),
            '_' if !intraword => Some("&#95;"),
            '~' => Some("&#126;"),
            '`' => Some("&#96;"),
            '[' => Some("&#91;"),
            ']' => Some("&#93;"),
            _ => None,
        }),
        Markup::Dingtalk | Markup::Wecom => escape_chars(&text, |c, intraword| match c {
            '\\' => Some("\\\\"),
            '*' => Some("\\*"),
            '_' if !intraword => Some("\\_"),
            '~' => Some("\\~"),
            '`' => Some("\\`"),
            '[' => Some("\\["),
            ']' => Some("\\]"),
            '<' => Some("\\<"),
            '>' => Some("\\>"),
            _ => None,
        }),
    }
}

/// An identifier as inline code where the markup has it (so it reads as an id and copies
/// cleanly), else escaped text. Only values that look like ids go in a code span: WeCom and
/// Feishu interpret some markup inside backticks (`<@all>`, `<at id=all>`, `<font>`), so anything
/// else is escaped as outside code spans.
pub fn code(text: &str, markup: Markup) -> String {
    let looks_like_id = !text.is_empty()
        && text.len() <= 256
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '/' | '+' | '='));
    match markup {
        Markup::Wecom | Markup::Lark | Markup::Slack if looks_like_id => format!("`{text}`"),
        _ => escape(text, markup),
    }
}

/// Replaces characters `rule` names; `rule` learns whether the character sits inside a word
/// (alphanumeric on both sides).
fn escape_chars(text: &str, rule: impl Fn(char, bool) -> Option<&'static str>) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len() + 8);
    for (i, &c) in chars.iter().enumerate() {
        let intraword = i > 0
            && chars[i - 1].is_alphanumeric()
            && chars.get(i + 1).is_some_and(|next| next.is_alphanumeric());
        match rule(c, intraword) {
            Some(replacement) => out.push_str(replacement),
            None => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commonmark_escaping_keeps_intraword_underscores() {
        assert_eq!(escape("cat_video_final.mp4", Markup::Dingtalk), "cat_video_final.mp4");
        assert_eq!(escape("_draft_ *v2* [x](y) <b>", Markup::Wecom), r"\_draft\_ \*v2\* \[x\](y) \<b\>");
        assert_eq!(escape("a\\b `c`", Markup::Dingtalk), r"a\\b \`c\`");
        assert_eq!(escape("新品 *终版*", Markup::Dingtalk), r"新品 \*终版\*");
    }

    #[test]
    fn lark_uses_character_references() {
        assert_eq!(
            escape("*x* _y_ a_b <i> & [z]", Markup::Lark),
            "&#42;x&#42; &#95;y&#95; a_b &lt;i&gt; &amp; &#91;z&#93;"
        );
    }

    #[test]
    fn slack_escapes_only_what_it_can() {
        assert_eq!(escape("<!here> & *bold*", Markup::Slack), "&lt;!here&gt; &amp; *bold*");
    }

    #[test]
    fn values_stay_on_one_line() {
        assert_eq!(
            escape("a\n# not a heading\r\n- nor a list", Markup::Text),
            "a # not a heading - nor a list"
        );
    }

    #[test]
    fn code_spans_where_supported() {
        assert_eq!(code("wf-1", Markup::Slack), "`wf-1`");
        assert_eq!(code("a`b<c", Markup::Slack), "a`b&lt;c");
        assert_eq!(code("wf_1", Markup::Dingtalk), "wf_1");
        assert_eq!(code("wf*1", Markup::Dingtalk), r"wf\*1");
    }

    /// Mentions and tags inside what was an id: escaped, not put in a code span where WeCom and
    /// Feishu would still act on them.
    #[test]
    fn only_id_like_values_go_in_code_spans() {
        assert_eq!(code("InvalidParameter.Width", Markup::Wecom), "`InvalidParameter.Width`");
        assert_eq!(code("<@all>", Markup::Wecom), r"\<@all\>");
        assert_eq!(code("<font color=red>x</font>", Markup::Wecom), r"\<font color=red\>x\</font\>");
        assert_eq!(code("<at id=all></at>", Markup::Lark), "&lt;at id=all&gt;&lt;/at&gt;");
        assert_eq!(code("task id with spaces", Markup::Lark), "task id with spaces");
        for markup in [Markup::Wecom, Markup::Lark, Markup::Slack] {
            assert!(!code("x<@all>", markup).contains('`'), "{markup:?}");
        }
    }

    proptest::proptest! {
        #[test]
        fn escaped_values_stay_on_one_line(text in "\\PC{0,100}[\n\r]\\PC{0,10}") {
            for markup in [Markup::Dingtalk, Markup::Wecom, Markup::Lark, Markup::Slack, Markup::Text] {
                proptest::prop_assert!(!escape(&text, markup).contains(['\n', '\r']));
            }
        }
    }
}
