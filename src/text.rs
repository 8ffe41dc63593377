//! Text helpers every layer shares: cutting text to a limit without splitting a character,
//! putting a value on one line, and joining the dotted paths that errors and warnings name.
//!
//! One convention for cutting: the limit includes the [`CUT_MARKER`], so a cut text is never
//! longer than asked, whatever the unit (UTF-8 bytes, where a service counts bytes; characters,
//! where it counts characters).

/// The marker that ends cut text.
pub const CUT_MARKER: &str = "…";

/// An error and its causes, each once ("error sending request: …: Connection refused"): the
/// messages transport libraries nest.
pub fn with_causes(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// `text` cut to at most `max_bytes` UTF-8 bytes, marker included: at the last line break in
/// the final quarter when there is one (so markup lines stay whole), else at the last
/// character boundary. Never splits a character.
pub fn truncate_bytes(text: &str, max_bytes: usize) -> String {
    if text.len() <= max_bytes {
        return text.to_owned();
    }
    let budget = max_bytes.saturating_sub(CUT_MARKER.len());
    let mut head = &text[..floor_char_boundary(text, budget)];
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
    if text.len() <= max_chars {
        return text.to_owned(); // no more characters than bytes
    }
    match text.char_indices().nth(max_chars) {
        None => text.to_owned(),
        Some(_) => {
            let keep = max_chars.saturating_sub(1);
            let end = text.char_indices().nth(keep).map_or(text.len(), |(i, _)| i);
            format!("{}{CUT_MARKER}", &text[..end])
        }
    }
}

/// The largest index `<= index` that is a character boundary of `text`.
fn floor_char_boundary(text: &str, index: usize) -> usize {
    if index >= text.len() {
        return text.len();
    }
    let mut end = index;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    end
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

/// `text` on one line: line breaks (`\n`, `\r`, the Unicode separators, NEL, vertical tab, form
/// feed) and tabs become single spaces, and the other characters that could restructure or
/// disguise a line (control characters, bidirectional overrides) are escaped as by [`printable`].
/// Other text is kept.
pub fn one_line(text: &str) -> String {
    fn breaks(c: char) -> bool {
        matches!(c, '\n' | '\r' | '\t' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' | '\u{2029}')
    }
    // Every break is also an unsafe character: text with neither goes as it is.
    if !has_unsafe_char(text) {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    let mut last_space = false;
    for c in text.chars() {
        if breaks(c) {
            if !last_space {
                out.push(' ');
            }
            last_space = true;
        } else {
            escape_into(&mut out, c);
            last_space = c == ' ';
        }
    }
    out
}

/// Characters that can forge a line or disguise text: control characters, the Unicode line and
/// paragraph separators, and the bidirectional embeddings, overrides and isolates.
fn unsafe_char(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Whether `text` holds an [`unsafe_char`], read byte by byte: in UTF-8 each of them is a byte
/// below 0x20, 0x7F, or a character starting 0xC2 (the C1 controls) or 0xE2 (the separators and
/// bidirectional controls), so only those are decoded. Every logged record is checked, and
/// decoding each character of it was ~5 k instructions a callback (BENCHMARKS.md, session 10).
fn has_unsafe_char(text: &str) -> bool {
    text.bytes().enumerate().any(|(i, byte)| match byte {
        0x00..=0x1F | 0x7F => true,
        // A lead byte starts a character: `i` is a boundary.
        0xC2 | 0xE2 => text.get(i..).and_then(|rest| rest.chars().next()).is_some_and(unsafe_char),
        _ => false,
    })
}

fn escape_into(out: &mut String, c: char) {
    if unsafe_char(c) {
        out.push_str(&format!("\\u{{{:04x}}}", c as u32));
    } else {
        out.push(c);
    }
}

/// `text` with every character that could forge or disguise a line escaped as `\u{..}`: control
/// characters (a `\n` in a TaskId must not start a genuine-looking log line), the Unicode line
/// and paragraph separators, NEL, and the bidirectional overrides that reorder what a reader sees.
/// For values taken from an event, wherever they are logged.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !has_unsafe_char(text) {
        return text.into();
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{{{:04x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    out.into()
}

/// `prefix.key`, or `key` alone at the root: how every error and warning names a place in a
/// delivery (`[1].data.messageBody.ActivityResults`).
pub fn join_path(prefix: &str, key: &str) -> String {
    match (prefix.is_empty(), key.is_empty()) {
        (true, _) => key.to_owned(),
        (_, true) => prefix.to_owned(),
        _ => format!("{prefix}.{key}"),
    }
}

/// The candidate closest to `word` when it is close enough to be a typo of it (case-insensitive
/// edit distance at most a third of the longer word, and at most 3): "did you mean".
pub fn nearest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let word_lower = word.to_lowercase();
    candidates
        .into_iter()
        .map(|c| (edit_distance(&word_lower, &c.to_lowercase()), c))
        .filter(|(d, c)| *c != word && *d <= 3 && *d * 3 <= word.chars().count().max(c.chars().count()))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Edit distance over characters, a swap of two neighbours counting as one edit (optimal string
/// alignment): `nmae` is one edit from `name`.
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut rows = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in rows.iter_mut().enumerate() {
        row[0] = i;
    }
    rows[0] = (0..=b.len()).collect();
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (rows[i - 1][j] + 1).min(rows[i][j - 1] + 1).min(rows[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(rows[i - 2][j - 2] + 1);
            }
            rows[i][j] = best;
        }
    }
    rows[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    #[test]
    fn nearest_finds_typos_not_strangers() {
        use super::nearest;
        assert_eq!(nearest("secert", ["secret", "url", "name"]), Some("secret"));
        assert_eq!(nearest("Faild", ["Succeed", "Failed"]), Some("Failed"));
        assert_eq!(
            nearest("TranscodeCompleted", ["TranscodeComplete", "SnapshotComplete"]),
            Some("TranscodeComplete")
        );
        assert_eq!(nearest("zzz", ["secret", "url"]), None);
        assert_eq!(nearest("url", ["url"]), None, "the word itself is no suggestion");
        assert_eq!(nearest("nmae", ["name", "type"]), Some("name"));
        assert_eq!(nearest("zh-cn", ["en", "zh-CN"]), Some("zh-CN"));
    }

    use super::*;

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
        assert_eq!(truncate_chars("关键词不匹配", 4), "关键词…");
        assert_eq!(chunks("aa\nbb\ncc\n", 6), vec!["aa\nbb\n", "cc\n"]);
        let pieces = chunks(&format!("{}\nshort", "x".repeat(20)), 10);
        assert_eq!(pieces, vec!["xxxxxxxxx…".to_owned(), "short".to_owned()]);
    }

    #[test]
    fn one_line_folds_breaks() {
        assert_eq!(one_line("a\n# not a heading\r\n- nor a list"), "a # not a heading - nor a list");
        assert_eq!(one_line("a\tb"), "a b");
        assert_eq!(one_line("a\u{2028}b\u{85}c"), "a b c");
        assert_eq!(one_line("evil\u{202E}gpj.exe\u{7}"), "evil\\u{202e}gpj.exe\\u{0007}");
    }

    #[test]
    fn the_byte_scan_finds_exactly_the_unsafe_characters() {
        let mut text = String::new();
        for c in (0..=0x10FFFF).filter_map(char::from_u32) {
            text.clear();
            text.extend(['a', c, '视']);
            assert_eq!(has_unsafe_char(&text), unsafe_char(c), "{:04x}", c as u32);
        }
        assert!(!has_unsafe_char("✅ 发布会 Keynote 🎬 … ⚠️"));
        assert!(has_unsafe_char("✅ a\u{2066}b"));
    }

    #[test]
    fn printable_escapes_what_could_forge_a_line() {
        assert_eq!(printable("task-1"), "task-1");
        assert_eq!(printable("t\n2025-01-01 INFO forged"), "t\\u{000a}2025-01-01 INFO forged");
        assert_eq!(printable("a\u{2028}b\u{85}c\u{202E}d\te"), "a\\u{2028}b\\u{0085}c\\u{202e}d\\u{0009}e");
        assert_eq!(printable("视频\u{7}"), "视频\\u{0007}");
    }

    #[test]
    fn paths_join_with_dots_except_at_the_root() {
        assert_eq!(join_path("", "EventType"), "EventType");
        assert_eq!(join_path("[1].data", "messageBody"), "[1].data.messageBody");
        assert_eq!(join_path("[0]", ""), "[0]");
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
        fn char_truncation_holds_for_any_text(text in "\\PC{0,300}", limit in 1usize..400) {
            let cut = truncate_chars(&text, limit);
            proptest::prop_assert!(cut.chars().count() <= limit);
            let kept = cut.strip_suffix(CUT_MARKER).unwrap_or(&cut);
            proptest::prop_assert!(text.starts_with(kept));
        }
    }
}
