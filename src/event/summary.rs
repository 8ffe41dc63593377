//! The flat view of an event that templates render and `plan` shows: what a person needs to
//! act (which video, which node failed, why, how long it took), without digging in the tree.

use serde::Serialize;

use super::{Event, TaskStatus};

/// Template context. Field names are the template variables; keep them stable, users' custom
/// templates depend on them.
#[derive(Debug, Clone, Serialize)]
pub struct Summary<'a> {
    pub event_type: &'a str,
    /// As VOD sent it (`Succeed`, `Failed`, `success`, ...), empty when the event has none.
    pub status: &'a str,
    /// `true` when the status says success (`Succeed`/`success`, any case).
    pub ok: bool,
    pub title: Option<&'a str>,
    pub video_id: Option<&'a str>,
    pub workflow_id: Option<&'a str>,
    pub task_id: Option<&'a str>,
    pub event_time: Option<&'a str>,
    /// Whole task, `CreateTime` to `FinishTime`.
    pub duration_secs: Option<i64>,
    pub duration: Option<String>,
    pub nodes: Vec<NodeSummary<'a>>,
    pub failed_nodes: Vec<NodeSummary<'a>>,
    /// The fully decoded event, for templates that need more.
    pub event: DecodedTree<'a>,
}

/// An event's decoded tree as a summary holds it: read (and so built, [`Event::decoded`]) only
/// when the summary is serialized with it. `none` serializes as `null`.
#[derive(Debug, Clone, Copy)]
pub struct DecodedTree<'a>(Option<&'a Event>);

impl DecodedTree<'_> {
    /// No tree: for contexts that give templates the tree their own way.
    pub fn none() -> Self {
        DecodedTree(None)
    }
}

impl Serialize for DecodedTree<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(event) => event.decoded().serialize(s),
            None => s.serialize_unit(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeSummary<'a> {
    pub name: &'a str,
    pub activity_id: &'a str,
    pub status: &'a str,
    pub ok: bool,
    pub duration_secs: Option<i64>,
    pub duration: Option<String>,
    pub error_code: Option<&'a str>,
    pub error_message: Option<&'a str>,
}

/// `75` → `1m 15s`: short enough for a chat line.
pub fn human_duration(secs: i64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    match (h, m) {
        (0, 0) => format!("{s}s"),
        (0, _) => format!("{m}m {s}s"),
        _ => format!("{h}h {m}m {s}s"),
    }
}

impl<'a> Summary<'a> {
    pub fn of(event: &'a Event) -> Self {
        let status = event.status().unwrap_or("");
        let mut summary = Summary {
            event_type: event.event_type(),
            status,
            ok: TaskStatus::parse(status).is_succeeded(),
            title: event.title(),
            video_id: event.video_id(),
            workflow_id: event.workflow_id(),
            task_id: None,
            event_time: None,
            duration_secs: None,
            duration: None,
            nodes: Vec::new(),
            failed_nodes: Vec::new(),
            event: DecodedTree(Some(event)),
        };
        match event {
            Event::Workflow(w) => {
                summary.task_id = Some(&w.task_id);
                summary.event_time = w.event_time.as_ref().map(|t| t.raw.as_str());
                summary.duration_secs = w.duration_secs();
                summary.nodes = w
                    .activities
                    .iter()
                    .map(|a| {
                        let secs = a.duration_secs();
                        let error = a.error.as_ref().filter(|_| a.status.is_failed());
                        NodeSummary {
                            name: &a.name,
                            activity_id: &a.activity_id,
                            status: a.status.as_str(),
                            ok: a.status.is_succeeded(),
                            duration_secs: secs,
                            duration: secs.map(human_duration),
                            error_code: error.and_then(|e| e.code.as_deref()),
                            error_message: error.and_then(|e| e.message.as_deref()),
                        }
                    })
                    .collect();
                summary.failed_nodes = summary.nodes.iter().filter(|n| !n.ok).cloned().collect();
            }
            Event::Generic(g) => {
                summary.event_time = g.event_time.as_ref().map(|t| t.raw.as_str());
            }
        }
        summary.duration = summary.duration_secs.map(human_duration);
        summary
    }
}

#[cfg(test)]
mod tests {
    use super::human_duration;

    #[test]
    fn durations_read_like_a_person_would_write_them() {
        assert_eq!(human_duration(4), "4s");
        assert_eq!(human_duration(75), "1m 15s");
        assert_eq!(human_duration(3 * 3600 + 5), "3h 0m 5s");
    }
}
