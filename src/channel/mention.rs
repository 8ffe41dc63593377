//! Mentions in chat messages: the two halves every chat service needs, as tools its file uses.
//!
//! 1. **No mention from text.** Whatever a message says came, in part, from an event (a title,
//!    an error message, UserData) or from a template; none of it may mention anyone. So the last
//!    step before a service builds its body is to disarm, in the whole rendered text and the
//!    headline, the characters that service reads as a mention: its `@` (DingTalk, WeCom), the
//!    `<` of an `<at …>` tag (Feishu), the `<` of `<@…>` and `<!…>` (Slack). Each is replaced by
//!    its full-width form (`＠`, `＜`), which every client shows as the character a person wrote
//!    and no parser reads as markup, in every part of every message type (card headers, `post`
//!    elements, plain text), code spans included.
//! 2. **The configured mentions**, added after that step in the service's own form, so that a
//!    text cut to the service's size limit keeps them (each service cuts the text, not the
//!    mention line).

use std::borrow::Cow;

/// `@` as DingTalk and WeCom must not read it.
const FULLWIDTH_AT: char = '＠';
/// `<` as Feishu and Slack must not read it.
const FULLWIDTH_LT: char = '＜';

/// Every `@` made full-width (DingTalk's `@13800000000`, WeCom's `<@userid>` and `@all`).
pub(super) fn disarm_at_signs(text: &str) -> Cow<'_, str> {
    if text.contains('@') {
        Cow::Owned(text.replace('@', &FULLWIDTH_AT.to_string()))
    } else {
        Cow::Borrowed(text)
    }
}

/// Every `<` that `opens` a tag made full-width; `opens` sees the text after the `<`.
pub(super) fn disarm_tags(text: &str, opens: impl Fn(&str) -> bool) -> Cow<'_, str> {
    let found = |at: usize| opens(&text[at + 1..]);
    if !text.match_indices('<').any(|(at, _)| found(at)) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    let mut last = 0;
    for (at, _) in text.match_indices('<') {
        if found(at) {
            out.push_str(&text[last..at]);
            out.push(FULLWIDTH_LT);
            last = at + 1;
        }
    }
    out.push_str(&text[last..]);
    Cow::Owned(out)
}

/// Feishu's `<at id=…>`, `<at user_id=…>`, `<at email=…>` (and a closing `</at>`), in any case
/// and with spaces after the `<`.
pub(super) fn opens_feishu_at(rest: &str) -> bool {
    let name = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '/');
    name.get(..2).is_some_and(|tag| tag.eq_ignore_ascii_case("at"))
}

/// Slack's `<@U…>`, `<!channel>`, `<!here>`, `<!everyone>`, `<!subteam^…>`.
pub(super) fn opens_slack_mention(rest: &str) -> bool {
    rest.trim_start().starts_with(['@', '!'])
}

/// `text` with `line` on a line of its own after it (`text` when there is no line).
pub(super) fn with_line<'a>(text: &'a str, line: &str) -> Cow<'a, str> {
    if line.is_empty() { Cow::Borrowed(text) } else { Cow::Owned(format!("{}\n\n{line}", text.trim_end())) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_signs_are_disarmed_everywhere() {
        assert_eq!(disarm_at_signs("@all <@u1> `@13800000000` a@b"), "＠all <＠u1> `＠13800000000` a＠b");
        assert!(matches!(disarm_at_signs("no mention"), Cow::Borrowed(_)));
    }

    #[test]
    fn feishu_at_tags_are_disarmed_in_every_spelling() {
        let text = r#"<at id=all></at> < AT user_id="x"> </at> <At email=a@b> <a href> <b>"#;
        assert_eq!(
            disarm_tags(text, opens_feishu_at),
            r#"＜at id=all>＜/at> ＜ AT user_id="x"> ＜/at> ＜At email=a@b> <a href> <b>"#
        );
    }

    #[test]
    fn slack_mentions_are_disarmed_but_links_are_kept() {
        let text = "<!channel> <@U1> < !here> <!subteam^S1> <https://x|link> a < b";
        assert_eq!(
            disarm_tags(text, opens_slack_mention),
            "＜!channel> ＜@U1> ＜ !here> ＜!subteam^S1> <https://x|link> a < b"
        );
    }

    #[test]
    fn the_line_goes_after_the_text() {
        assert_eq!(with_line("text\n", "@1"), "text\n\n@1");
        assert_eq!(with_line("text", ""), "text");
    }
}
