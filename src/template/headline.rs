//! The one-line headline every message starts with: DingTalk's notification title, the Feishu
//! card header, Slack's header block and notification text, the first line of text messages.
//! `❌ VOD workflow failed: launch.mp4`, `✅ Resolved: launch.mp4`, `⚠️ FileUploadComplete
//! processing: 2c5e…`. Users' templates read it as `headline`.
//!
//! Written out rather than as a template: it is built for every event, and minijinja took
//! ~21 k instructions of a fresh callback's ~419 k to render it (BENCHMARKS.md, "Round 3,
//! session 8"). Its words come from the locale's table, as the templates' `t("…")` do.

use super::locale;
use super::{MAX_HEADLINE_CHARS, Prepared, status_marker};
use crate::config::Locale;
use crate::event::WORKFLOW_TASK_COMPLETE;
use crate::text;

/// The headline of `prepared` in `locale`, on one line, cut to [`MAX_HEADLINE_CHARS`].
pub(super) fn headline(prepared: &Prepared<'_>, locale: Locale) -> String {
    let summary = &prepared.summary;
    let t = |key| locale::translated(locale, key).unwrap_or(key);
    let mut line = String::with_capacity(96);
    line.push_str(status_marker(summary.status));
    line.push(' ');
    if prepared.resolution.is_some() {
        line.push_str(t("Resolved"));
    } else {
        if summary.event_type == WORKFLOW_TASK_COMPLETE {
            line.push_str(t("VOD workflow "));
        } else {
            line.push_str(summary.event_type);
            line.push(' ');
        }
        line.push_str(t(&prepared.outcome));
    }
    // As a template's `{% if title %}`: an empty title counts as none.
    let name = [summary.title, summary.video_id].into_iter().flatten().find(|value| !value.is_empty());
    if let Some(name) = name {
        line.push_str(t(": "));
        line.push_str(&text::one_line(name));
    }
    text::truncate_chars(&text::one_line(line.trim()), MAX_HEADLINE_CHARS)
}

#[cfg(test)]
mod tests {
    use minijinja::context;

    use super::super::{Resolution, Templates, environment};
    use super::*;
    use crate::config::Config;
    use crate::event::{Event, decode_delivery};

    /// The template the headline was until it was written out: the Rust must say the same.
    const TEMPLATE: &str = r#"{{ marker }} {% if resolved %}{{ t("Resolved") }}{% else %}{% if event_type == "WorkflowTaskComplete" %}{{ t("VOD workflow ") }}{% else %}{{ event_type }} {% endif %}{{ t(outcome) }}{% endif %}
{%- if title %}{{ t(": ") }}{{ title | oneline }}{% elif video_id %}{{ t(": ") }}{{ video_id | oneline }}{% endif %}"#;

    fn events() -> Vec<Event> {
        let bodies = [
            r#"{"EventType":"WorkflowTaskComplete","TaskId":"t1","Status":"Failed","VideoId":"v1"}"#,
            r#"{"EventType":"WorkflowTaskComplete","TaskId":"t2","Status":"Succeed","VideoId":"v2","TaskInput":"{\"Title\":\"\"}"}"#,
            r#"{"EventType":"WorkflowTaskComplete","TaskId":"t3","Status":"Processing","TaskInput":"{\"Title\":\"a\\nb\"}"}"#,
            r#"{"EventType":"FileUploadComplete","VideoId":"v4","Status":"success"}"#,
            r#"{"EventType":"StreamTranscodeComplete","Status":"fail"}"#,
            r#"{"EventType":"AddLiveRecordVideoComplete"}"#,
        ];
        let mut events: Vec<Event> = crate::samples::events().into_iter().map(|(_, event)| event).collect();
        for body in bodies {
            events.extend(decode_delivery(body.as_bytes()).unwrap().events);
        }
        events
    }

    #[test]
    fn says_what_the_template_said() {
        let templates = Templates::compile(&Config::default(), &[], &[]).unwrap();
        let mut env = environment();
        env.add_template("headline", TEMPLATE).unwrap();
        let template = env.get_template("headline").unwrap();
        let resolution =
            Resolution { resolved: true, resolves: vec!["t0".into()], resolved_after_secs: Some(60) };
        let mut seen = 0;
        for event in events() {
            for resolution in [None, Some(&resolution)] {
                let prepared = templates.prepare_with(&event, resolution);
                for locale in Locale::ALL {
                    let ctx = context! { locale => locale.as_str(), ..prepared.base().clone() };
                    let old = template.render(ctx).unwrap();
                    let old = text::truncate_chars(&text::one_line(old.trim()), MAX_HEADLINE_CHARS);
                    assert_eq!(
                        headline(&prepared, locale),
                        old,
                        "{} {resolution:?} {locale:?}",
                        event.identity()
                    );
                    seen += 1;
                }
            }
        }
        assert_eq!(seen, 36, "{seen} headlines compared");
    }
}
