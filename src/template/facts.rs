//! The facts every built-in message shows, once for every service: did it work, which video,
//! where to look it up (workflow and task id), what it resolves, how long it took, when, and
//! for every node its status and duration, with the error under each node that failed; then
//! the play links when a video was looked up (`[vod] enrich`, the markup's own part).
//!
//! The list below is the one skeleton. [`source`] writes it as a template for one markup and
//! one locale when templates are compiled: each line in the markup's shape (`markup::fact`,
//! `markup::heading`, …: a service adds only its markup), each label from the locale's table
//! (`locale::word`). Nothing is rewritten afterwards, and rendering a message reads no label
//! table: the template holds the locale's words, as a template written by hand for it would.
//!
//! In English the status words and durations are the event's own (`Failed`, `1m 45s`), so the
//! English template reads them as they are instead of through `status_word` / `duration`.

use super::locale;
use super::markup::{self, Markup};
use crate::config::Locale;

/// One line of facts: a label and its value, shown when `variable` is set.
struct Fact {
    /// The English label: the key of the locale's table.
    label: &'static str,
    /// The variable that must be set for the line to show.
    variable: &'static str,
    /// The value as a template expression.
    value: &'static str,
    /// The value in English, where the event's own words serve (`1m 45s`) and the locale's
    /// filter is not needed.
    english: Option<&'static str>,
}

const IDS: [Fact; 3] = [
    Fact { label: "Video ID", variable: "video_id", value: "video_id | code", english: None },
    Fact { label: "Workflow ID", variable: "workflow_id", value: "workflow_id | code", english: None },
    Fact { label: "Task ID", variable: "task_id", value: "task_id | code", english: None },
];

const TIMES: [Fact; 2] = [
    Fact {
        label: "Duration",
        variable: "duration",
        value: "duration_secs | duration",
        english: Some("duration"),
    },
    Fact { label: "Event time", variable: "event_time", value: "event_time | time | md", english: None },
];

/// The facts of a message in `markup` and `locale`, as a template (written with `trim_blocks`
/// and `lstrip_blocks` on, like every built-in). What a resolved notice adds only when
/// `resolved` (some route sends them: compiling it is a fifth of a six-channel start-up). The
/// markup's play links (`builtin:video-<markup>`) are included when a video was looked up.
pub fn source(markup: Markup, locale: Locale, resolved: bool) -> String {
    let english = locale == Locale::En;
    let (colon, colon_space) = (locale::word(locale, ":"), locale::word(locale, ": "));
    let fact = |label: &str, value: &str| {
        markup::fact(markup, &locale::word(locale, label), value, &colon, &colon_space)
    };
    let line = |f: &Fact| {
        let value = format!("{{{{ {} }}}}", f.english.filter(|_| english).unwrap_or(f.value));
        guarded(f.variable, &fact(f.label, &value))
    };
    let status = if english { "{{ status | md }}" } else { "{{ status | status_word | md }}" };
    let mut out = fact("Status", &markup::status_template(markup, status));
    out.push('\n');
    IDS.iter().for_each(|f| out.push_str(&line(f)));
    if resolved {
        out.push_str(&resolved_lines(&fact));
    }
    TIMES.iter().for_each(|f| out.push_str(&line(f)));
    out.push_str(&nodes(markup, locale, &colon));
    let video = video_template(markup);
    out.push_str(&format!("{{% if video %}}{{% include \"{video}\" ignore missing %}}{{% endif %}}"));
    out
}

/// The name of `markup`'s play-links template.
pub fn video_template(markup: Markup) -> String {
    format!("builtin:video-{}", markup.as_str())
}

/// `line` shown when `variable` is set.
fn guarded(variable: &str, line: &str) -> String {
    format!("{{% if {variable} %}}\n{line}\n{{% endif %}}\n")
}

/// What a resolved notice adds: the failed TaskIds it resolves, how long after the first.
fn resolved_lines(fact: &dyn Fn(&str, &str) -> String) -> String {
    let resolves = "{% for r in resolves %}{{ r | code }}{% if not loop.last %}, {% endif %}{% endfor %}";
    let after = guarded(
        "resolved_after_secs is not none",
        &fact("Resolved after", "{{ resolved_after_secs | duration }}"),
    );
    // The loop's last tag eats its line end: the empty line gives it back.
    format!("{{% if resolved %}}\n{}\n\n{after}{{% endif %}}\n", fact("Resolves", resolves))
}

/// The nodes: a heading, then per node its marker, name, status and duration, and under a
/// failed one its error (`markup::node_error`, at render: one call per failed node).
fn nodes(markup: Markup, locale: Locale, colon: &str) -> String {
    let (status, duration) = if locale == Locale::En {
        ("node.status | md", "node.duration")
    } else {
        ("node.status | status_word | md", "node.duration_secs | duration")
    };
    let heading = markup::heading(markup, &locale::word(locale, "Nodes"), colon);
    let bullet = markup::bullet(markup);
    format!(
        "{{% if nodes %}}\n{heading}\n{{% for node in nodes %}}\n\
         {bullet}{{{{ node.status | marker }}}} {{{{ node.name | md }}}} · {{{{ {status} }}}}\
         {{% if node.duration %}} · {{{{ {duration} }}}}{{% endif %}}\n\n\
         {{% if not node.ok and (node.error_code or node.error_message) %}}\n\
         {{{{ node_error(node.error_code, node.error_message) }}}}\n{{% endif %}}\n\
         {{% endfor %}}\n{{% endif %}}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Labels are put into template text as they are: none may hold template syntax.
    #[test]
    fn labels_hold_no_template_syntax() {
        for locale in Locale::ALL {
            for label in
                ["Status", "Video ID", "Workflow ID", "Task ID", "Resolves", "Resolved after", "Duration"]
                    .into_iter()
                    .chain(["Event time", "Nodes", ":", ": "])
            {
                let word = locale::word(locale, label);
                assert!(!word.contains('{') && !word.contains('}'), "{locale:?} {label}: {word}");
            }
        }
    }

    #[test]
    fn every_markup_and_locale_compiles() {
        for markup in [Markup::Dingtalk, Markup::Wecom, Markup::Lark, Markup::Slack, Markup::Text] {
            for locale in Locale::ALL {
                let source = source(markup, locale, true);
                let mut env = minijinja::Environment::new();
                env.add_template_owned("facts", source.clone()).unwrap_or_else(|e| panic!("{e}\n{source}"));
            }
        }
    }
}
