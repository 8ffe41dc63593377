//! The built-in templates every channel shares: the digest headline and plain text's play
//! links (the headline itself is written out: `template::headline`). The facts every built-in
//! message shows are one list in `template::facts` (DingTalk, WeCom and webhooks put a heading or
//! the headline above them: `channel::<kind>`'s `TEMPLATE`). Labels here are read from the
//! locale's table as they render (`t("…")`).
//!
//! Built-in messages answer, in this order: did it work (a marker no one can miss), which
//! video, where to look it up (workflow and task id), how long it took, and for every node its
//! status and duration, with the error code and message under each node that failed.
//!
//! They are written with `trim_blocks` and `lstrip_blocks` on, so a line holding only a block
//! tag leaves nothing behind. Values that come from the event go through `md` (escapes them for
//! the channel's markup, on one line) or `code` (an id, as inline code where the channel has it).

/// A digest's headline: how many events it names, how many failed and succeeded, and which
/// mute intervals held them. Plain text.
pub const DIGEST_HEADLINE: &str = r#"{{ marker }} {% if muted_by %}{{ t("While muted") }} ({{ muted_by }}){% else %}{{ t("VOD digest") }}{% endif %}{{ t(": ") }}{{ count }} {{ t("events") }}
{%- if failed_count %} · {{ failed_count }} {{ t("failed") }}{% endif %}
{%- if ok_count %} · {{ ok_count }} {{ t("succeeded") }}{% endif %}
{%- if other_count %} · {{ other_count }} {{ t("other") }}{% endif %}"#;

/// The play links and cover of `[vod] enrich` in plain text (`builtin:video-text`), included
/// after the facts; compiled only when enrichment is on.
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
