//! Digests: many events in one message, for a channel whose rate budget is spent (see
//! `dispatch::budget`). A bulk import gone wrong ends as hundreds of `Failed` callbacks in a minute;
//! a robot takes 20 messages a minute. Rather than queue hundreds of single messages (and be
//! blocked), the actions that find the budget spent wait in the outbox and, when budget comes
//! back, go out merged: as few messages as the service's size limit allows.
//!
//! This module is the pure part: what a digest says of each event ([`Brief`], carried by the
//! action since it was planned, so a digest can be made by any instance, later), and how briefs
//! are grouped so a person reads a digest at a glance ([`Digest`]): failures first, the same
//! failure (node, error code, message) once with its count — "287 × VideoTranslation
//! InvalidParameter: source language unsupported" — then each event's title and task id. Who
//! sends a digest and how that stays exactly-once is the dispatcher's (`dispatch::digest`).

use serde::{Deserialize, Serialize};

use crate::event::Summary;
use crate::text::truncate_chars;

/// Error messages in a digest are cut to this many characters (the group's heading shows it).
pub const MAX_ERROR_CHARS: usize = 300;
/// Titles in a digest are cut to this many characters.
pub const MAX_TITLE_CHARS: usize = 120;

/// What a digest says of one event: who, what, and for a failure where and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Brief {
    pub event_type: String,
    /// As VOD sent it; empty when the event has none.
    pub status: String,
    pub ok: bool,
    pub failed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_time: Option<String>,
    /// The first node that failed, its error code and message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

impl Brief {
    /// The brief of `event`.
    pub fn of_event(event: &crate::event::Event) -> Brief {
        let summary = event.summary();
        let failed = crate::event::TaskStatus::parse(summary.status) == crate::event::TaskStatus::Failed;
        Brief::of(&summary, failed)
    }

    /// The brief of the event `summary` describes; `failed`: its status says failure.
    pub fn of(summary: &Summary<'_>, failed: bool) -> Brief {
        let node = summary.failed_nodes.first();
        Brief {
            event_type: summary.event_type.to_owned(),
            status: summary.status.to_owned(),
            ok: summary.ok,
            failed,
            title: summary.title.map(|t| truncate_chars(t, MAX_TITLE_CHARS)),
            video_id: summary.video_id.map(str::to_owned),
            workflow_id: summary.workflow_id.map(str::to_owned),
            task_id: summary.task_id.map(str::to_owned),
            event_time: summary.event_time.map(str::to_owned),
            node: node.map(|n| n.name.to_owned()),
            error_code: node.and_then(|n| n.error_code).map(str::to_owned),
            error_message: node.and_then(|n| n.error_message).map(|m| truncate_chars(m, MAX_ERROR_CHARS)),
        }
    }

    /// What events of one group share.
    fn group_key(&self) -> GroupKey<'_> {
        GroupKey {
            failed: self.failed,
            ok: self.ok,
            status: &self.status,
            node: self.node.as_deref(),
            error_code: self.error_code.as_deref(),
            error_message: self.error_message.as_deref(),
        }
    }
}

#[derive(PartialEq, Eq)]
struct GroupKey<'a> {
    failed: bool,
    ok: bool,
    status: &'a str,
    node: Option<&'a str>,
    error_code: Option<&'a str>,
    error_message: Option<&'a str>,
}

/// Events of one outcome: same status, and for failures the same node, code and message.
#[derive(Debug, Clone, Serialize)]
pub struct Group<'a> {
    pub count: usize,
    pub status: &'a str,
    pub ok: bool,
    pub failed: bool,
    pub node: Option<&'a str>,
    pub error_code: Option<&'a str>,
    pub error_message: Option<&'a str>,
    pub items: Vec<&'a Brief>,
}

/// The template context of one digest message (see the `template` module for how it renders).
#[derive(Debug, Clone, Serialize)]
pub struct Digest<'a> {
    /// Events in this message.
    pub count: usize,
    pub failed_count: usize,
    pub ok_count: usize,
    pub other_count: usize,
    /// ❌ when any failed, ✅ when all succeeded, ⚠️ otherwise.
    pub marker: &'static str,
    /// Largest group first (failures before the rest).
    pub groups: Vec<Group<'a>>,
    /// The mute intervals that held every event of this message (`None`: not all were held
    /// by the same ones, or none was): the headline says "While muted (night)".
    pub muted_by: Option<&'a str>,
}

impl<'a> Digest<'a> {
    /// The digest of `briefs`, grouped.
    pub fn of(briefs: &[&'a Brief]) -> Digest<'a> {
        let mut groups: Vec<Group<'a>> = Vec::new();
        for &brief in briefs {
            match groups.iter_mut().find(|g| g.items[0].group_key() == brief.group_key()) {
                Some(group) => {
                    group.count += 1;
                    group.items.push(brief);
                }
                None => groups.push(Group {
                    count: 1,
                    status: &brief.status,
                    ok: brief.ok,
                    failed: brief.failed,
                    node: brief.node.as_deref(),
                    error_code: brief.error_code.as_deref(),
                    error_message: brief.error_message.as_deref(),
                    items: vec![brief],
                }),
            }
        }
        // Stable: equal groups keep the order their first events came in.
        groups.sort_by_key(|g| (!g.failed, std::cmp::Reverse(g.count)));
        let failed_count = briefs.iter().filter(|b| b.failed).count();
        let ok_count = briefs.iter().filter(|b| b.ok).count();
        let marker = if failed_count > 0 {
            "❌"
        } else if ok_count == briefs.len() {
            "✅"
        } else {
            "⚠️"
        };
        Digest {
            count: briefs.len(),
            failed_count,
            ok_count,
            other_count: briefs.len() - failed_count - ok_count,
            marker,
            groups,
            muted_by: None,
        }
    }
}

/// `items` reordered so that the events of one group are next to each other, largest group
/// first: cutting this list into messages then splits as few groups as possible.
pub fn grouped_order<T>(items: Vec<T>, brief: impl Fn(&T) -> &Brief) -> Vec<T> {
    let ranks: Vec<usize> = {
        let briefs: Vec<&Brief> = items.iter().map(&brief).collect();
        let groups = Digest::of(&briefs).groups;
        briefs
            .iter()
            .map(|b| {
                groups.iter().position(|g| g.items[0].group_key() == b.group_key()).unwrap_or(usize::MAX)
            })
            .collect()
    };
    let mut ranked: Vec<(usize, T)> = ranks.into_iter().zip(items).collect();
    ranked.sort_by_key(|(rank, _)| *rank);
    ranked.into_iter().map(|(_, item)| item).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failure(task: &str, node: &str, code: &str) -> Brief {
        Brief {
            event_type: "WorkflowTaskComplete".into(),
            status: "Failed".into(),
            ok: false,
            failed: true,
            title: Some(format!("video {task}")),
            video_id: None,
            workflow_id: None,
            task_id: Some(task.into()),
            event_time: None,
            node: Some(node.into()),
            error_code: Some(code.into()),
            error_message: Some("source language unsupported".into()),
        }
    }

    fn success(task: &str) -> Brief {
        Brief {
            status: "Succeed".into(),
            ok: true,
            failed: false,
            node: None,
            error_code: None,
            error_message: None,
            ..failure(task, "", "")
        }
    }

    #[test]
    fn the_same_failure_is_one_group_largest_first_failures_before_successes() {
        let mut briefs = vec![success("s1"), failure("a1", "Transcode", "E1")];
        briefs.extend((0..3).map(|i| failure(&format!("b{i}"), "VideoTranslation", "InvalidParameter")));
        briefs.push(success("s2"));
        let refs: Vec<&Brief> = briefs.iter().collect();
        let digest = Digest::of(&refs);
        assert_eq!((digest.count, digest.failed_count, digest.ok_count, digest.other_count), (6, 4, 2, 0));
        assert_eq!(digest.marker, "❌");
        let shape: Vec<(usize, Option<&str>, Option<&str>)> =
            digest.groups.iter().map(|g| (g.count, g.node, g.error_code)).collect();
        assert_eq!(
            shape,
            [
                (3, Some("VideoTranslation"), Some("InvalidParameter")),
                (1, Some("Transcode"), Some("E1")),
                (2, None, None)
            ]
        );
        let tasks: Vec<&str> = digest.groups[2].items.iter().filter_map(|b| b.task_id.as_deref()).collect();
        assert_eq!(tasks, ["s1", "s2"]);
    }

    #[test]
    fn grouped_order_puts_each_group_together() {
        let briefs = vec![
            failure("a", "N", "X"),
            failure("b", "N", "Y"),
            failure("c", "N", "X"),
            success("d"),
            failure("e", "N", "X"),
        ];
        let ordered = grouped_order(briefs, |b| b);
        let tasks: Vec<&str> = ordered.iter().filter_map(|b| b.task_id.as_deref()).collect();
        assert_eq!(tasks, ["a", "c", "e", "b", "d"]);
    }
}
