//! Resolved notices (a route's `send_resolved`), as Alertmanager's `send_resolved` with its
//! notification log: a failure is *open* on each channel its notice was **delivered** to (not
//! merely planned: a notice still in the outbox or dead opens nothing), per (VideoId,
//! WorkflowId), in the dedup store for the route's `resolve_within`. A later successful
//! `WorkflowTaskComplete` of the same video and workflow resolves it: each channel with open
//! failures gets one resolved notice naming them, whatever route the success matches, and its
//! delivery closes them.
//!
//! Exactly once: a resolved notice is an action like any other, claimed by its key. Where the
//! success has its own message to that channel, the notice takes that message's place and its
//! key (the channel gets one message, and a redelivery of the success finds it done); else its
//! key is the success's identity with the channel. A success that arrives twice, or on two
//! instances at once, plans the same key and resolves once; after delivery the failures are
//! closed, so a later success is an ordinary event.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Dispatcher;
use crate::action::Action;
use crate::event::{Event, TaskStatus, VodTime};
use crate::template::Resolution;

/// Only workflows have a re-run that can resolve them.
const WORKFLOW_EVENT: &str = "WorkflowTaskComplete";

/// One delivered failure notice, as the store keeps it (field `<channel>|<task id>`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct OpenFailure {
    route: String,
    task_id: String,
    #[serde(default)]
    event_time: Option<String>,
}

/// The store key of (video, workflow)'s open failures.
fn open_key(video: &str, workflow: &str) -> String {
    format!("{video}|{workflow}")
}

/// The store key of the last success of (video, workflow), read by a failure notice that is
/// sent after it (from the outbox): "resolved since".
fn since_key(video: &str, workflow: &str) -> String {
    format!("since|{video}|{workflow}")
}

/// The success a failure notice still in the outbox is resolved by.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Since {
    task_id: String,
    #[serde(default)]
    event_time: Option<String>,
}

impl Dispatcher {
    /// After `action` was delivered: a failure notice of a `send_resolved` route opens; a
    /// resolved notice closes the failures it named. `resolved_since`: whether it went out
    /// marked "resolved since", when the sender knows (else it is looked up). A store error is
    /// logged: at worst a resolved notice is missed or sent again, never a failure notice lost.
    pub(super) async fn after_delivery(&self, action: &Action, resolved_since: Option<bool>) {
        let Some(brief) = &action.brief else { return };
        let (Some(video), Some(workflow)) = (&brief.video_id, &brief.workflow_id) else { return };
        let key = open_key(video, workflow);
        if let Some(resolution) = &action.resolution {
            let fields: Vec<String> =
                resolution.resolves.iter().map(|t| format!("{}|{t}", action.channel)).collect();
            if let Err(err) = self.dedup.open_close(&key, &fields).await {
                tracing::warn!(key = %action.key, error = %err, "could not close the resolved failures: a later success may resolve them again");
            }
            return;
        }
        let Some(route) = self.router.route(&action.route).filter(|r| r.send_resolved) else { return };
        let Some(task_id) =
            brief.task_id.clone().filter(|_| brief.failed && brief.event_type == WORKFLOW_EVENT)
        else {
            return;
        };
        let resolved_since = match resolved_since {
            Some(known) => known,
            None => self.resolved_since(action).await.is_some(),
        };
        if resolved_since {
            return; // it went out marked "resolved since": nothing is left to resolve
        }
        let field = format!("{}|{task_id}", action.channel);
        let open = OpenFailure { route: route.name.clone(), task_id, event_time: brief.event_time.clone() };
        let value = serde_json::to_string(&open).unwrap_or_default();
        if let Err(err) = self.dedup.open_put(&key, &field, &value, route.resolve_within()).await {
            tracing::warn!(key = %action.key, error = %err, "could not record the failure as open: its success will not be announced");
        }
    }

    /// `planned` (the actions of `event`) with the resolved notices `event` causes: when it is a
    /// successful workflow with open failures, one per channel that has some, each in the place
    /// of the success's own message to that channel.
    pub(super) async fn with_resolved(&self, event: &Event, mut planned: Vec<Action>) -> Vec<Action> {
        if !self.router.sends_resolved() {
            return planned;
        }
        let summary = event.summary();
        let succeeded = TaskStatus::parse(summary.status) == TaskStatus::Succeed;
        let (Some(video), Some(workflow)) = (summary.video_id, summary.workflow_id) else { return planned };
        if !succeeded || summary.event_type != WORKFLOW_EVENT {
            return planned;
        }
        let open = match self.dedup.open_get(&open_key(video, workflow)).await {
            Ok(open) => open,
            Err(err) => {
                tracing::warn!(error = %err, "could not read open failures: this success resolves nothing");
                return planned;
            }
        };
        self.remember_success(video, workflow, &summary).await;
        let identity = event.identity();
        for (channel, failures) in by_channel(open) {
            let resolution = resolution_of(&failures, summary.event_time);
            // The success's own messages to the channel give way to the notice (the first one's key).
            let own: Vec<Action> = planned.iter().filter(|a| a.channel == channel).cloned().collect();
            planned.retain(|a| a.channel != channel);
            let route = &failures[0].route;
            let key = own
                .first()
                .map_or_else(|| Action::key_for(&identity, "resolved", &channel), |a| a.key.clone());
            match self.router.resolved(event, route, &channel, resolution, key) {
                Ok(action) => planned.push(action),
                Err(err) => {
                    tracing::error!(error = %err, "the resolved notice cannot be made: the success goes as it is");
                    planned.extend(own);
                }
            }
        }
        planned
    }
}

impl Dispatcher {
    /// Records the success of (video, workflow), for the failure notices still in the outbox.
    async fn remember_success(&self, video: &str, workflow: &str, summary: &crate::event::Summary<'_>) {
        let Some(task_id) = summary.task_id else { return };
        let since = Since { task_id: task_id.to_owned(), event_time: summary.event_time.map(str::to_owned) };
        let value = serde_json::to_string(&since).unwrap_or_default();
        let ttl = self.router.longest_resolve_within();
        if let Err(err) = self.dedup.open_put(&since_key(video, workflow), "success", &value, ttl).await {
            tracing::warn!(error = %err, "could not record the success: failure notices still queued will not say it");
        }
    }

    /// The TaskId of the success that resolved `action`'s failure after it was planned: a
    /// failure notice of a `send_resolved` route, of a workflow that succeeded at or after it.
    pub(super) async fn resolved_since(&self, action: &Action) -> Option<String> {
        let brief = action.brief.as_ref().filter(|b| b.failed && b.event_type == WORKFLOW_EVENT)?;
        if action.resolution.is_some() {
            return None;
        }
        self.router.route(&action.route).filter(|r| r.send_resolved)?;
        let key = since_key(brief.video_id.as_deref()?, brief.workflow_id.as_deref()?);
        let stored = self.dedup.open_get(&key).await.ok()?;
        let since: Since =
            stored.iter().find(|(f, _)| f == "success").and_then(|(_, v)| serde_json::from_str(v).ok())?;
        let time = |t: Option<&str>| t.and_then(|t| VodTime::parse(t).parsed);
        // Only a success known to come at or after the failure resolves it (an earlier run's
        // success does not; without both times nothing is claimed).
        match (time(since.event_time.as_deref()), time(brief.event_time.as_deref())) {
            (Some(success), Some(failure)) if success >= failure => Some(since.task_id),
            _ => None,
        }
    }

    /// `action` marked "resolved since" when a success resolved it while it waited; `None` when
    /// none did (send it as it is).
    pub(super) async fn marked_if_resolved(&self, action: &Action) -> Option<Action> {
        let task_id = self.resolved_since(action).await?;
        let channel = self.channels.get(&action.channel)?;
        let note = self.router.resolved_since_note(&action.channel, &task_id);
        let mut marked = action.clone();
        crate::channel::annotate(channel, &mut marked.payload, &note, &task_id);
        Some(marked)
    }

    /// The notes of a digest covering `actions`, one per action: for a failure resolved since it
    /// was planned, "✅ Resolved since: task-B (task-A)"; `None` for the others.
    pub(super) async fn resolved_notes(&self, actions: &[&Action]) -> Vec<Option<String>> {
        let mut notes = Vec::with_capacity(actions.len());
        for action in actions {
            let note = self.resolved_since(action).await.map(|task_id| {
                let failed = action.brief.as_ref().and_then(|b| b.task_id.as_deref()).unwrap_or_default();
                format!("{} ({failed})", self.router.resolved_since_note(&action.channel, &task_id))
            });
            notes.push(note);
        }
        notes
    }
}

/// The open failures per channel, each channel's in the order they happened.
fn by_channel(open: Vec<(String, String)>) -> BTreeMap<String, Vec<OpenFailure>> {
    let mut channels: BTreeMap<String, Vec<OpenFailure>> = BTreeMap::new();
    for (field, value) in open {
        let (Some((channel, _)), Ok(failure)) =
            (field.split_once('|'), serde_json::from_str::<OpenFailure>(&value))
        else {
            tracing::warn!(%field, "an open failure the store holds is not one vodhook wrote: ignored");
            continue;
        };
        channels.entry(channel.to_owned()).or_default().push(failure);
    }
    for failures in channels.values_mut() {
        failures.sort_by(|a, b| (&a.event_time, &a.task_id).cmp(&(&b.event_time, &b.task_id)));
    }
    channels
}

/// What the notice says: the failures' TaskIds, and how long after the first one the success came.
fn resolution_of(failures: &[OpenFailure], success_time: Option<&str>) -> Resolution {
    let first = failures.first().and_then(|f| f.event_time.as_deref()).and_then(|t| VodTime::parse(t).parsed);
    let success = success_time.and_then(|t| VodTime::parse(t).parsed);
    let resolved_after_secs =
        first.zip(success).map(|(first, success)| (success - first).num_seconds().max(0));
    Resolution {
        resolved: true,
        resolves: failures.iter().map(|f| f.task_id.clone()).collect(),
        resolved_after_secs,
    }
}
