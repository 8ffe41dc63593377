//! The built-in templates: what users see when they configure nothing.
//!
//! Each answers, in this order: did it work (a marker no one can miss), which video, where to
//! look it up (workflow and task id), how long it took, and for every node its status and
//! duration, with the error code and message under each node that failed.
//!
//! They are written with `trim_blocks` and `lstrip_blocks` on, so a line holding only a block
//! tag leaves nothing behind. Values that come from the event go through `md` (escapes them for
//! the channel's markup, on one line) or `code` (an id, as inline code where the channel has it).

/// The one-line headline: DingTalk's notification title, the Feishu card header, Slack's header
/// block and notification text, the first line of text messages. Plain text.
pub const HEADLINE: &str = r#"{{ marker }} {% if event_type == "WorkflowTaskComplete" %}VOD workflow{% else %}{{ event_type }}{% endif %} {{ outcome }}
{%- if title %}: {{ title | oneline }}{% elif video_id %}: {{ video_id | oneline }}{% endif %}"#;

/// DingTalk markdown. DingTalk documents headings, bold, links and lists, not code, so ids are
/// plain text; list items keep one fact per line whatever the client.
pub const DINGTALK: &str = r#"#### {{ headline | md }}

- Status: **{{ status | md }}**
{% if video_id %}
- Video ID: {{ video_id | code }}
{% endif %}
{% if workflow_id %}
- Workflow ID: {{ workflow_id | code }}
{% endif %}
{% if task_id %}
- Task ID: {{ task_id | code }}
{% endif %}
{% if duration %}
- Duration: {{ duration }}
{% endif %}
{% if event_time %}
- Event time: {{ event_time | md }}
{% endif %}
{% if nodes %}

**Nodes**

{% for node in nodes %}
- {{ node.status | marker }} {{ node.name | md }} · {{ node.status | md }}{% if node.duration %} · {{ node.duration }}{% endif %}

{% if not node.ok and (node.error_code or node.error_message) %}
    - {% if node.error_code %}{{ node.error_code | md }}{% if node.error_message %}: {% endif %}{% endif %}{{ node.error_message | clip(300) | md }}
{% endif %}
{% endfor %}
{% endif %}"#;

/// WeCom markdown: newlines are line breaks; `<font color>` takes `info` (green), `warning`
/// (orange-red) and `comment` (grey); inline code is supported. (No `>` quote for errors: how
/// far a quote reaches is not documented, and it could swallow the next node's line.)
pub const WECOM: &str = r#"### {{ headline | md }}
Status: <font color="{{ "info" if ok else ("warning" if failed else "comment") }}">{{ status | md }}</font>
{% if video_id %}
Video ID: {{ video_id | code }}
{% endif %}
{% if workflow_id %}
Workflow ID: {{ workflow_id | code }}
{% endif %}
{% if task_id %}
Task ID: {{ task_id | code }}
{% endif %}
{% if duration %}
Duration: {{ duration }}
{% endif %}
{% if event_time %}
Event time: {{ event_time | md }}
{% endif %}
{% if nodes %}

**Nodes**
{% for node in nodes %}
{{ node.status | marker }} {{ node.name | md }} · {{ node.status | md }}{% if node.duration %} · {{ node.duration }}{% endif %}

{% if not node.ok and (node.error_code or node.error_message) %}
　↳ {% if node.error_code %}{{ node.error_code | code }} {% endif %}{{ node.error_message | clip(300) | md }}
{% endif %}
{% endfor %}
{% endif %}"#;

/// Feishu card markdown (`lark_md`): newlines are line breaks; the plain-text card header
/// shows the headline (title included) in red or green, so the body starts with the facts.
pub const LARK: &str = r#"**Status:** <font color='{{ "green" if ok else ("red" if failed else "orange") }}'>{{ status | md }}</font>
{% if video_id %}
**Video ID:** {{ video_id | code }}
{% endif %}
{% if workflow_id %}
**Workflow ID:** {{ workflow_id | code }}
{% endif %}
{% if task_id %}
**Task ID:** {{ task_id | code }}
{% endif %}
{% if duration %}
**Duration:** {{ duration }}
{% endif %}
{% if event_time %}
**Event time:** {{ event_time | md }}
{% endif %}
{% if nodes %}

**Nodes**
{% for node in nodes %}
{{ node.status | marker }} {{ node.name | md }} · {{ node.status | md }}{% if node.duration %} · {{ node.duration }}{% endif %}

{% if not node.ok and (node.error_code or node.error_message) %}
　↳ {% if node.error_code %}{{ node.error_code | code }} {% endif %}{{ node.error_message | clip(300) | md }}
{% endif %}
{% endfor %}
{% endif %}"#;

/// Slack mrkdwn (`*bold*`, `` `code` ``, `>` quotes, which end at the line's end); the
/// plain-text header block shows the headline, title included, exactly as it is.
pub const SLACK: &str = r#"*Status:* {{ status | md }}
{% if video_id %}
*Video ID:* {{ video_id | code }}
{% endif %}
{% if workflow_id %}
*Workflow ID:* {{ workflow_id | code }}
{% endif %}
{% if task_id %}
*Task ID:* {{ task_id | code }}
{% endif %}
{% if duration %}
*Duration:* {{ duration }}
{% endif %}
{% if event_time %}
*Event time:* {{ event_time | md }}
{% endif %}
{% if nodes %}

*Nodes*
{% for node in nodes %}
{{ node.status | marker }} {{ node.name | md }} · {{ node.status | md }}{% if node.duration %} · {{ node.duration }}{% endif %}

{% if not node.ok and (node.error_code or node.error_message) %}
>{% if node.error_code %}{{ node.error_code | code }} {% endif %}{{ node.error_message | clip(300) | md }}
{% endif %}
{% endfor %}
{% endif %}"#;

/// Plain text: the generic webhook's `summary` and Feishu `post` messages (whose own title is
/// the headline, so it is not repeated).
pub const TEXT: &str = r#"{% if channel_type != "feishu" %}
{{ headline }}
{% endif %}
Status: {{ status | oneline }}
{% if video_id %}
Video ID: {{ video_id | oneline }}
{% endif %}
{% if workflow_id %}
Workflow ID: {{ workflow_id | oneline }}
{% endif %}
{% if task_id %}
Task ID: {{ task_id | oneline }}
{% endif %}
{% if duration %}
Duration: {{ duration }}
{% endif %}
{% if event_time %}
Event time: {{ event_time | oneline }}
{% endif %}
{% if nodes %}
Nodes:
{% for node in nodes %}
{{ node.status | marker }} {{ node.name | oneline }} · {{ node.status | oneline }}{% if node.duration %} · {{ node.duration }}{% endif %}

{% if not node.ok and (node.error_code or node.error_message) %}
    ↳ {% if node.error_code %}{{ node.error_code | oneline }}{% if node.error_message %}: {% endif %}{% endif %}{{ node.error_message | clip(300) | oneline }}
{% endif %}
{% endfor %}
{% endif %}"#;

/// The `log` channel: one line, greppable.
pub const LOG: &str = r#"{{ headline }}
{%- if video_id and title %} · video {{ video_id | oneline }}{% endif %}
{%- if task_id %} · task {{ task_id | oneline }}{% endif %}
{%- if duration %} · {{ duration }}{% endif %}
{%- for node in failed_nodes %}{{ " · failed: " if loop.first else ", " }}{{ node.name | oneline }}
{%- if node.error_code or node.error_message %} ({% if node.error_code %}{{ node.error_code | oneline }}{% if node.error_message %}: {% endif %}{% endif %}{{ node.error_message | clip(200) | oneline }}){% endif %}
{%- endfor %}"#;
