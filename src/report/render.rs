//! A report as a message: a headline and a few short sections, in the channel's markup and
//! language, put in the service's body as a digest is (chat), or as a JSON document (webhook).

use serde_json::{Value, json};

use super::summary::{Summary, sparkline};
use crate::channel::{self, DigestText};
use crate::config::{ChannelConfig, Locale};
use crate::template::locale::word;
use crate::template::{Markup, code, escape};

/// The body of the report on `channel` (its text from `template` when there is one, else the
/// built-in text): `None` when the channel cannot carry one.
pub fn body(
    channel: &ChannelConfig,
    summary: &Summary,
    locale: Locale,
    template: Option<&str>,
) -> Option<Value> {
    let headline = headline(summary, locale);
    if !channel.kind().is_chat() {
        return Some(json!({ "type": "vodhook.report", "headline": headline, "report": summary }));
    }
    let markup = channel::markup(channel);
    let text = match template.map(|source| templated(source, summary, locale, markup)) {
        Some(Ok(text)) => text,
        Some(Err(err)) => {
            // check-config renders the template on a sample: this is a value it did not meet.
            tracing::error!(error = %err, "[report] template failed: the built-in text is sent instead");
            self::text(summary, locale, markup)
        }
        None => self::text(summary, locale, markup),
    };
    let digest = DigestText {
        headline: &headline,
        text: &text,
        all_ok: summary.workflows.failed == 0,
        any_failed: summary.workflows.failed > 0,
        mentions: &channel.mention,
        buttons: &[],
    };
    channel::digest_message(channel, &digest)
}

/// `[report] template` rendered for `summary`: it sees the summary's fields, `sparkline` (of the
/// hourly failures), `headline`, `locale` and `markup`.
pub fn templated(source: &str, summary: &Summary, locale: Locale, markup: Markup) -> Result<String, String> {
    let env = minijinja::Environment::new();
    let context = minijinja::context! {
        sparkline => sparkline(&summary.hourly_failures),
        headline => headline(summary, locale),
        locale => locale.as_str(),
        markup => markup.as_str(),
        ..minijinja::Value::from_serialize(summary)
    };
    env.render_str(source, context).map_err(|e| e.to_string())
}

/// `📊 vodhook report 2026-12-04 09:30 → 2026-12-05 09:30`.
pub fn headline(summary: &Summary, locale: Locale) -> String {
    format!(
        "📊 {} {} → {}",
        word(locale, "vodhook report"),
        short_time(&summary.since),
        short_time(&summary.until)
    )
}

/// `2026-12-05 09:30` of an RFC 3339 time.
fn short_time(rfc3339: &str) -> String {
    rfc3339.get(..16).map(|t| t.replace('T', " ")).unwrap_or_else(|| rfc3339.to_owned())
}

/// The sections, one paragraph each.
pub fn text(s: &Summary, locale: Locale, markup: Markup) -> String {
    let t = |key: &str| word(locale, key);
    let label = |key: &str| label(key, locale, markup);
    let e = |text: &str| escape(text, markup);
    let mut sections = Vec::new();
    if matches!(markup, Markup::Dingtalk | Markup::Wecom) {
        // Their text has no title of its own (the notification shows DingTalk's `title`).
        sections.push(format!("#### {}", e(&headline(s, locale))));
    }
    let events: Vec<String> = s.events.iter().map(|(kind, n)| format!("{} {n}", e(kind))).collect();
    let events = if events.is_empty() { t("none") } else { events.join(" · ") };
    sections.push(format!("{}{events}", label("Events")));
    sections.push(format!(
        "{}{} {} · {} {}",
        label("Workflows"),
        s.workflows.succeeded,
        t("succeeded"),
        s.workflows.failed,
        t("failed")
    ));
    sections.extend(top_failures(s, locale, markup));
    sections.push(format!("{}{}", label("Failures per hour"), sparkline(&s.hourly_failures)));
    sections.push(notices(s, locale, markup));
    if !s.vod_api.is_empty() {
        let calls: Vec<String> = s
            .vod_api
            .iter()
            .map(|(action, c)| format!("{} {} {} · {} {}", e(action), c.ok, t("ok"), c.failed, t("failed")))
            .collect();
        sections.push(format!("{}{}", label("VOD API"), calls.join("; ")));
    }
    if s.scope == "instance" {
        sections
            .push(t("Counts of this instance only: without the redis store each instance counts its own."));
    }
    let separator = match markup {
        Markup::Slack | Markup::Text => "\n",
        _ => "\n\n",
    };
    sections.join(separator)
}

/// `**Events**: `, in the markup and language.
fn label(key: &str, locale: Locale, markup: Markup) -> String {
    format!("{}{}", bold(&word(locale, key), markup), word(locale, ": "))
}

/// The top failures, one numbered line each; `None` when there were none.
fn top_failures(s: &Summary, locale: Locale, markup: Markup) -> Option<String> {
    if s.failures.is_empty() {
        return None;
    }
    let lines: Vec<String> = s
        .failures
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let code_text = if f.error_code.is_empty() {
                String::new()
            } else {
                format!(" {}", code(&f.error_code, markup))
            };
            format!(
                "{}. {}{code_text} × {} ({} {})",
                i + 1,
                code(&f.workflow_id, markup),
                f.count,
                word(locale, "e.g. video"),
                code(&f.example_video_id, markup)
            )
        })
        .collect();
    Some(format!("{}\n{}", label("Top failures", locale, markup).trim_end(), lines.join("\n")))
}

/// What became of the notices: sent, held, in digests, queued, dead.
fn notices(s: &Summary, locale: Locale, markup: Markup) -> String {
    let t = |key: &str| word(locale, key);
    let n = &s.notices;
    format!(
        "{}{} {} · {} {} · {} {} · {} {} · {} {} ({} {})",
        label("Notices", locale, markup),
        n.sent,
        t("sent"),
        n.held,
        t("held"),
        n.digested,
        t("in digests"),
        n.queued,
        t("queued"),
        n.dead,
        t("dead"),
        t("see"),
        code("vodhook outbox list", markup)
    )
}

fn bold(text: &str, markup: Markup) -> String {
    match markup {
        Markup::Slack => format!("*{}*", escape(text, markup)),
        Markup::Text => text.to_owned(),
        _ => format!("**{}**", escape(text, markup)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_sees_the_summary_and_the_sparkline() {
        let summary = Summary {
            workflows: crate::report::summary::Workflows { succeeded: 3, failed: 2 },
            hourly_failures: vec![0, 2],
            ..Summary::default()
        };
        let source = "{{ workflows.failed }} of {{ workflows.succeeded + workflows.failed }} failed {{ sparkline }} ({{ locale }})";
        assert_eq!(
            templated(source, &summary, Locale::ZhCn, Markup::Slack).unwrap(),
            "2 of 5 failed ▁█ (zh-CN)"
        );
        assert!(templated("{{ x", &summary, Locale::En, Markup::Text).is_err());
    }
}
