//! A report's content: the ledger's buckets of one period, added up (`vodhook report --json`
//! prints it as it is; the message is rendered from it).

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

/// How many failure groups a report lists.
pub const TOP_FAILURES: usize = 5;

/// What happened in a period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// The period, RFC 3339 in the report's offset.
    pub since: String,
    pub until: String,
    /// `store` (every instance, through Redis) or `instance` (this one's own counts).
    pub scope: &'static str,
    /// New events by type.
    pub events: BTreeMap<String, u64>,
    pub workflows: Workflows,
    /// The largest (workflow, error code) groups of failures, at most [`TOP_FAILURES`].
    pub failures: Vec<FailureGroup>,
    pub notices: Notices,
    /// VOD OpenAPI calls by action.
    pub vod_api: BTreeMap<String, Calls>,
    /// Failed events per hour of the period, oldest first.
    pub hourly_failures: Vec<u64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Workflows {
    pub succeeded: u64,
    pub failed: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FailureGroup {
    pub workflow_id: String,
    pub error_code: String,
    pub count: u64,
    pub example_video_id: String,
}

/// What became of the notices: `sent` and `digested` (held, then sent in a digest) and `held`
/// (muted or waiting for a group) in the period; `queued` and `dead` as the outbox holds them
/// now (in the period's counts when there is no outbox to ask).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Notices {
    pub sent: u64,
    pub held: u64,
    pub digested: u64,
    pub queued: u64,
    pub dead: u64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Calls {
    pub ok: u64,
    pub failed: u64,
}

/// Adds up `buckets` (oldest first, one per hour of the period).
pub fn summarize(buckets: &[HashMap<String, String>]) -> Summary {
    let mut summary = Summary::default();
    let mut failures: HashMap<(String, String), u64> = HashMap::new();
    let mut examples: HashMap<(String, String), String> = HashMap::new();
    let mut actions: HashMap<String, u64> = HashMap::new();
    for bucket in buckets {
        let count = |field: &str| bucket.get(field).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        summary.hourly_failures.push(count("failed"));
        summary.workflows.succeeded += count("w|ok");
        summary.workflows.failed += count("w|failed");
        for (field, value) in bucket {
            let n = value.parse::<u64>().unwrap_or(0);
            let mut parts = field.splitn(3, '|');
            match (parts.next(), parts.next(), parts.next()) {
                (Some("e"), Some(kind), None) => *summary.events.entry(kind.to_owned()).or_default() += n,
                (Some("a"), Some(outcome), None) => *actions.entry(outcome.to_owned()).or_default() += n,
                (Some("f"), Some(workflow), Some(code)) => {
                    *failures.entry((workflow.to_owned(), code.to_owned())).or_default() += n;
                }
                (Some("x"), Some(workflow), Some(code)) => {
                    examples.entry((workflow.to_owned(), code.to_owned())).or_insert_with(|| value.clone());
                }
                (Some("v"), Some(action), Some(result)) => {
                    let calls = summary.vod_api.entry(action.to_owned()).or_default();
                    if result == "ok" { calls.ok += n } else { calls.failed += n }
                }
                _ => {}
            }
        }
    }
    let outcome = |name: &str| actions.get(name).copied().unwrap_or(0);
    summary.notices = Notices {
        sent: outcome("sent") + outcome("resolved"),
        held: outcome("muted") + outcome("grouped"),
        digested: outcome("digested"),
        queued: outcome("queued"),
        dead: outcome("dead"),
    };
    let mut groups: Vec<FailureGroup> = failures
        .into_iter()
        .map(|(key, count)| FailureGroup {
            example_video_id: examples.get(&key).cloned().unwrap_or_default(),
            workflow_id: key.0,
            error_code: key.1,
            count,
        })
        .collect();
    groups.sort_by(|a, b| {
        (b.count, &a.workflow_id, &a.error_code).cmp(&(a.count, &b.workflow_id, &b.error_code))
    });
    groups.truncate(TOP_FAILURES);
    summary.failures = groups;
    summary
}

/// `▁▂▃▄▅▆▇█`, one per value, scaled to the largest (all `▁` when there is none).
pub fn sparkline(values: &[u64]) -> String {
    const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let max = values.iter().copied().max().unwrap_or(0);
    values
        .iter()
        .map(|&v| {
            let level = (v.saturating_mul(7) + max / 2).checked_div(max).unwrap_or(0);
            BARS[usize::try_from(level).unwrap_or(0).min(7)]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(fields: &[(&str, &str)]) -> HashMap<String, String> {
        fields.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn buckets_add_up_and_the_top_failures_come_first() {
        let buckets = [
            bucket(&[("e|WorkflowTaskComplete", "3"), ("failed", "2"), ("w|failed", "2"), ("w|ok", "1")]),
            bucket(&[]),
            bucket(&[
                ("f|wf-1|A", "2"),
                ("x|wf-1|A", "v1"),
                ("f|wf-2|B", "5"),
                ("x|wf-2|B", "v2"),
                ("failed", "7"),
                ("a|sent", "4"),
                ("a|resolved", "1"),
                ("a|digested", "2"),
                ("v|SubmitWorkflowJob|ok", "1"),
                ("v|SubmitWorkflowJob|failed", "2"),
            ]),
        ];
        let s = summarize(&buckets);
        assert_eq!(s.events.get("WorkflowTaskComplete"), Some(&3));
        assert_eq!(s.workflows, Workflows { succeeded: 1, failed: 2 });
        assert_eq!(s.hourly_failures, vec![2, 0, 7]);
        assert_eq!(s.failures[0].workflow_id, "wf-2");
        assert_eq!((s.failures[0].count, s.failures[0].example_video_id.as_str()), (5, "v2"));
        assert_eq!(s.notices.sent, 5);
        assert_eq!(s.notices.digested, 2);
        assert_eq!(s.vod_api["SubmitWorkflowJob"], Calls { ok: 1, failed: 2 });
    }

    #[test]
    fn a_sparkline_scales_to_its_largest_value() {
        assert_eq!(sparkline(&[0, 1, 7, 14]), "▁▂▅█");
        assert_eq!(sparkline(&[0, 0]), "▁▁");
        assert_eq!(sparkline(&[]), "");
    }
}
