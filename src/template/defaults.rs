//! The built-in templates every channel shares: the headline, and the plain-text facts. Each
//! channel's own built-in message is in its file (`channel::<kind>::TEMPLATE`).
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

/// Plain-text facts, without the headline: the body of the generic webhook's `summary` and of
/// Feishu `post` messages, which include it (`{% include "builtin:plain" %}`).
pub const PLAIN: &str = r#"{{ t("Status") }}{{ t(": ") }}{{ status | status_word | oneline }}
{% if video_id %}
{{ t("Video ID") }}{{ t(": ") }}{{ video_id | oneline }}
{% endif %}
{% if workflow_id %}
{{ t("Workflow ID") }}{{ t(": ") }}{{ workflow_id | oneline }}
{% endif %}
{% if task_id %}
{{ t("Task ID") }}{{ t(": ") }}{{ task_id | oneline }}
{% endif %}
{% include "builtin:plain-resolved" ignore missing %}
{% if duration %}
{{ t("Duration") }}{{ t(": ") }}{{ duration_secs | duration }}
{% endif %}
{% if event_time %}
{{ t("Event time") }}{{ t(": ") }}{{ event_time | time | oneline }}
{% endif %}
{% if nodes %}
{{ t("Nodes") }}{{ t(":") }}
{% for node in nodes %}
{{ node.status | marker }} {{ node.name | oneline }} · {{ node.status | status_word | oneline }}{% if node.duration %} · {{ node.duration_secs | duration }}{% endif %}

{% if not node.ok and (node.error_code or node.error_message) %}
    ↳ {% if node.error_code %}{{ node.error_code | oneline }}{% if node.error_message %}: {% endif %}{% endif %}{{ node.error_message | clip(300) | oneline }}
{% endif %}
{% endfor %}
{% endif %}
{% include "builtin:plain-video" ignore missing %}"#;

/// A digest's headline: how many events it names, how many failed and succeeded, and which
/// mute intervals held them. Plain text.
pub const DIGEST_HEADLINE: &str = r#"{{ marker }} {% if muted_by %}{{ t("While muted") }} ({{ muted_by }}){% else %}{{ t("VOD digest") }}{% endif %}{{ t(": ") }}{{ count }} {{ t("events") }}
{%- if failed_count %} · {{ failed_count }} {{ t("failed") }}{% endif %}
{%- if ok_count %} · {{ ok_count }} {{ t("succeeded") }}{% endif %}
{%- if other_count %} · {{ other_count }} {{ t("other") }}{% endif %}"#;

/// The play links and cover of `[vod] enrich` in plain text, included at the end of
/// [`PLAIN`]; compiled only when enrichment is on.
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

/// What a resolved notice adds to [`PLAIN`] (the failed TaskIds, how long after the first
/// failure); compiled, and so included, only when a route has `send_resolved`.
pub const PLAIN_RESOLVED: &str = r#"{% if resolved %}
{{ t("Resolves") }}{{ t(": ") }}{% for r in resolves %}{{ r | oneline }}{% if not loop.last %}, {% endif %}{% endfor %}

{% if resolved_after_secs is not none %}
{{ t("Resolved after") }}{{ t(": ") }}{{ resolved_after_secs | duration }}
{% endif %}
{% endif %}"#;
