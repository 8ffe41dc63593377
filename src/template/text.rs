//! Text helpers for messages: escaping event values for each channel's markup, and cutting
//! text to a channel's size limit without splitting a character.
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

/// Line breaks and tabs become single spaces; other text is kept.
pub fn one_line(text: &str) -> String {
    if !text.contains(['\n', '\r', '\t']) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut last_space = false;
    for c in text.chars() {
        if matches!(c, '\n' | '\r' | '\t') {
            if !last_space {
                out.push(' ');
            }
            last_space = true;
        } else {
            out.push(c);
            last_space = c == ' ';
        }
    }
    out
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
/// cleanly), else escaped text. Backticks inside are replaced: ids never hold them.
pub fn code(text: &str, markup: Markup) -> String {
    match markup {
        Markup::Wecom | Markup::Lark | Markup::Slack => {
            let inner = one_line(text).replace('`', "'");
            let inner = if markup == Markup::Slack { escape(&inner, Markup::Slack) } else { inner };
            format!("`{inner}`")
        }
        Markup::Dingtalk | Markup::Text => escape(text, markup),
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

/// The marker that ends cut text.
pub const CUT_MARKER: &str = "…";

/// `text` cut to at most `max_bytes` UTF-8 bytes, marker included: at the last line break in
/// the final quarter when there is one (so markup lines stay whole), else at the last
/// character boundary. Never splits a character.
pub fn truncate_bytes(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_owned();
    }
    let budget = max_bytes.saturating_sub(CUT_MARKER.len());
    let mut end = budget;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let mut head = &text[..end];
    if let Some(line_end) = head.rfind('\n')
        && line_end + 1 >= budget / 4 * 3
    {
        head = &head[..line_end + 1];
    }
    if max_bytes < CUT_MARKER.len() {
        return head.to_owned();
    }
    format!("{head}{CUT_MARKER}")
}

/// `text` cut to at most `max_chars` characters, marker included.
pub fn truncate_chars(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        None => text.to_owned(),
        Some(_) => {
            let keep = max_chars.saturating_sub(1);
            let end = text.char_indices().nth(keep).map_or(text.len(), |(i, _)| i);
            format!("{}{CUT_MARKER}", &text[..end])
        }
    }
}

/// Splits `text` into pieces of at most `max_chars` characters, at line breaks when it can.
pub fn chunks(text: &str, max_chars: usize) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut current_chars = 0;
    for line in text.split_inclusive('\n') {
        let line_chars = line.chars().count();
        if current_chars + line_chars > max_chars && !current.is_empty() {
            out.push(std::mem::take(&mut current));
            current_chars = 0;
        }
        if line_chars > max_chars {
            // One line longer than a piece: cut it.
            out.push(truncate_chars(line, max_chars));
            continue;
        }
        current.push_str(line);
        current_chars += line_chars;
    }
    if !current.is_empty() {
        out.push(current);
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
        assert_eq!(one_line("a\tb"), "a b");
    }

    #[test]
    fn code_spans_where_supported() {
        assert_eq!(code("wf-1", Markup::Slack), "`wf-1`");
        assert_eq!(code("a`b<c", Markup::Slack), "`a'b&lt;c`");
        assert_eq!(code("wf_1", Markup::Dingtalk), "wf_1");
        assert_eq!(code("wf*1", Markup::Dingtalk), r"wf\*1");
    }

    #[test]
    fn truncation_never_splits_a_character() {
        let text = "猫".repeat(2000); // 6000 bytes
        for limit in [4096, 4095, 4094, 10, 4] {
            let cut = truncate_bytes(&text, limit);
            assert!(cut.len() <= limit, "{limit}: {}", cut.len());
            assert!(cut.ends_with(CUT_MARKER));
            assert!(cut.trim_end_matches(CUT_MARKER).chars().all(|c| c == '猫'));
        }
        assert_eq!(truncate_bytes("short", 4096), "short");
        let emoji = "✅".repeat(10);
        assert!(truncate_bytes(&emoji, 8).len() <= 8);
    }

    #[test]
    fn truncation_prefers_a_line_break_near_the_end() {
        let text = format!("{}\n{}", "a".repeat(90), "b".repeat(50));
        assert_eq!(truncate_bytes(&text, 100), format!("{}\n{CUT_MARKER}", "a".repeat(90)));
        let long_line = "c".repeat(200);
        assert_eq!(truncate_bytes(&long_line, 100), format!("{}{CUT_MARKER}", "c".repeat(97)));
    }

    #[test]
    fn char_truncation_and_chunks() {
        assert_eq!(truncate_chars("abcdef", 4), "abc…");
        assert_eq!(truncate_chars("abc", 4), "abc");
        assert_eq!(truncate_chars("猫猫猫猫猫", 3), "猫猫…");
        assert_eq!(chunks("aa\nbb\ncc\n", 6), vec!["aa\nbb\n", "cc\n"]);
        let pieces = chunks(&format!("{}\nshort", "x".repeat(20)), 10);
        assert_eq!(pieces, vec!["xxxxxxxxx…".to_owned(), "short".to_owned()]);
    }

    proptest::proptest! {
        #[test]
        fn truncation_holds_for_any_text(text in "\\PC{0,300}", limit in 3usize..400) {
            let cut = truncate_bytes(&text, limit);
            proptest::prop_assert!(cut.len() <= limit);
            let kept = cut.strip_suffix(CUT_MARKER).unwrap_or(&cut);
            proptest::prop_assert!(text.starts_with(kept));
        }

        #[test]
        fn escaped_values_stay_on_one_line(text in "\\PC{0,100}[\n\r]\\PC{0,10}") {
            for markup in [Markup::Dingtalk, Markup::Wecom, Markup::Lark, Markup::Slack, Markup::Text] {
                proptest::prop_assert!(!escape(&text, markup).contains(['\n', '\r']));
            }
        }
    }
}
