//! The built-in templates every channel shares: the headline, and the facts skeleton that every
//! service's built-in message is (DingTalk, WeCom and webhooks put a heading or the headline
//! above it: `channel::<kind>`'s `TEMPLATE`). Labels are read from the locale's table when a
//! message renders (`t("Status")`); nothing is rewritten per locale.
//!
//! Built-in messages answer, in this order: did it work (a marker no one can miss), which
//! video, where to look it up (workflow and task id), how long it took, and for every node its
//! status and duration, with the error code and message under each node that failed.
//!
//! They are written with `trim_blocks` and `lstrip_blocks` on, so a line holding only a block
//! tag leaves nothing behind. Values that come from the event go through `md` (escapes them for
//! the channel's markup, on one line) or `code` (an id, as inline code where the channel has it).

/// The one-line headline: DingTalk's notification title, the Feishu card header, Slack's header
/// block and notification text, the first line of text messages. Plain text.
pub const HEADLINE: &str = r#"{{ marker }} {% if resolved %}{{ t("Resolved") }}{% else %}{% if event_type == "WorkflowTaskComplete" %}{{ t("VOD workflow ") }}{% else %}{{ event_type }} {% endif %}{{ t(outcome) }}{% endif %}
{%- if title %}{{ t(": ") }}{{ title | oneline }}{% elif video_id %}{{ t(": ") }}{{ video_id | oneline }}{% endif %}"#;

/// The facts of a message, without the headline: the one skeleton of every service's built-in
/// message (`builtin:facts`). Each line is written in the channel's markup by the filters of
/// `template::markup` (`fact`, `status_style`, `heading`, `bullet`, `node_error`) and each label
/// read from the locale's table (`t`) when it renders; the play links (`[vod] enrich`) are the
/// markup's own part (`builtin:video-<markup>`), included when compiled.
pub const FACTS: &str = r#"{{ status | status_word | md | status_style | fact(t("Status")) }}
{% if video_id %}
{{ video_id | code | fact(t("Video ID")) }}
{% endif %}
{% if workflow_id %}
{{ workflow_id | code | fact(t("Workflow ID")) }}
{% endif %}
{% if task_id %}
{{ task_id | code | fact(t("Task ID")) }}
{% endif %}
{% if resolved %}
{{ resolves | map("code") | join(", ") | fact(t("Resolves")) }}
{% if resolved_after_secs is not none %}
{{ resolved_after_secs | duration | fact(t("Resolved after")) }}
{% endif %}
{% endif %}
{% if duration %}
{{ duration_secs | duration | fact(t("Duration")) }}
{% endif %}
{% if event_time %}
{{ event_time | time | md | fact(t("Event time")) }}
{% endif %}
{% if nodes %}
{{ t("Nodes") | heading }}
{% for node in nodes %}
{{ bullet() }}{{ node.status | marker }} {{ node.name | md }} · {{ node.status | status_word | md }}{% if node.duration %} · {{ node.duration_secs | duration }}{% endif %}

{% if not node.ok and (node.error_code or node.error_message) %}
{{ node_error(node.error_code, node.error_message) }}
{% endif %}
{% endfor %}
{% endif %}
{% if video %}{% include "builtin:video-" ~ markup ignore missing %}{% endif %}"#;

/// A digest's headline: how many events it names, how many failed and succeeded, and which
/// mute intervals held them. Plain text.
pub const DIGEST_HEADLINE: &str = r#"{{ marker }} {% if muted_by %}{{ t("While muted") }} ({{ muted_by }}){% else %}{{ t("VOD digest") }}{% endif %}{{ t(": ") }}{{ count }} {{ t("events") }}
{%- if failed_count %} · {{ failed_count }} {{ t("failed") }}{% endif %}
{%- if ok_count %} · {{ ok_count }} {{ t("succeeded") }}{% endif %}
{%- if other_count %} · {{ other_count }} {{ t("other") }}{% endif %}"#;

/// The play links and cover of `[vod] enrich` in plain text (`builtin:video-text`), included at
/// the end of [`FACTS`]; compiled only when enrichment is on.
pub const PLAIN_VIDEO: &str = r#"{% if video %}
{% if video.available %}
{% for p in video.play_urls %}
{{ p.url | link(t("Watch") ~ " " ~ (p.definition or "") ~ " " ~ (p.format or "")) }}
{% endfor %}
{% if video.cover_url %}
{{ video.cover_url | link(t("Cover")) }}
{% endif %}
{{ t("Links valid until") }} {{ video.expires_at | time | oneline }}
{% else %}
{{ t("Play links unavailable") }}{{ t(": ") }}{{ video.reason | clip(200) | oneline }}
{% endif %}
{% endif %}"#;
