//! Re-runs a person confirmed on a link's page (the `links` module): `SubmitWorkflowJob` with
//! the event's VideoId as `MediaId` and its WorkflowId, made exactly as a `vod` channel makes
//! its calls — because it *is* one: a channel of its own, [`RERUN_CHANNEL`], added when
//! `[links]` is configured, with `[links] max_reruns` as its loop guard. So a re-run gets the
//! action's claim, the retries while the page may wait, the outbox (and the drain, the dead
//! letters, `vodhook outbox`) when VOD does not answer in time, and the invocation's
//! credentials, with no second copy of any of them.

use std::collections::BTreeMap;
use std::time::Instant;

use serde_json::{Map, Value};

use super::vod::RequestScope;
use super::{Dispatcher, Settled};
use crate::action::Action;
use crate::channel::vod::call;
use crate::config::{ChannelConfig, ChannelType, LinksConfig, RERUN_CHANNEL, Service, VodCall};
use crate::dedup::Claim;
use crate::template::digest::Brief;
use crate::vod::Credentials;

/// The OpenAPI action a re-run link calls.
const SUBMIT: &str = "SubmitWorkflowJob";

/// A re-run from a link (see [`Dispatcher::rerun`]).
#[derive(Debug, Clone, Copy)]
pub struct Rerun<'a> {
    /// The link's claim: one link makes at most one re-run, and the loop guard counts links.
    pub key: &'a str,
    pub video_id: &'a str,
    pub workflow_id: &'a str,
    /// The invocation's credentials (Function Compute); else the environment's.
    pub credentials: Option<&'a Credentials>,
}

/// What a re-run came to, for the page; each is final for its link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reran {
    /// VOD took it: its `RequestId`.
    Submitted { request_id: String },
    /// This link's re-run was submitted before (its claim is done).
    AlreadySubmitted,
    /// VOD did not take it before the page had to answer: the outbox tries again (`why`: the
    /// last answer).
    Queued { why: String },
    /// The loop guard: the workflow was re-run this often for the video already.
    Guarded { max: u32 },
}

/// The channel re-runs go through, for a configuration with `[links]`.
pub(super) fn rerun_channel(links: &LinksConfig) -> ChannelConfig {
    let mut channel = ChannelConfig::new(RERUN_CHANNEL, ChannelType::Vod);
    channel.service = Service::Vod(VodCall {
        action: Some(SUBMIT.to_owned()),
        params: BTreeMap::new(),
        max_repeats: Some(links.max_reruns),
    });
    channel
}

impl Rerun<'_> {
    /// The re-run as an action of [`RERUN_CHANNEL`]: its brief names the video and workflow,
    /// which is what the loop guard counts by.
    fn action(&self) -> Action {
        let params: Map<String, Value> = [("MediaId", self.video_id), ("WorkflowId", self.workflow_id)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Value::from(v)))
            .collect();
        Action {
            key: format!("{}|rerun", self.key),
            event: self.key.to_owned(),
            route: "links".to_owned(),
            channel: RERUN_CHANNEL.to_owned(),
            channel_type: ChannelType::Vod,
            payload: call(SUBMIT, params),
            brief: Some(Brief {
                event_type: "LinkRerun".to_owned(),
                status: String::new(),
                ok: false,
                failed: false,
                title: None,
                video_id: Some(self.video_id.to_owned()),
                workflow_id: Some(self.workflow_id.to_owned()),
                task_id: None,
                event_time: None,
                node: None,
                error_code: None,
                error_message: None,
            }),
            resolution: None,
            group: None,
        }
    }
}

impl Dispatcher {
    /// Submits `rerun` through [`RERUN_CHANNEL`], retrying until `deadline`, then leaving it to
    /// the outbox. `Err`: not submitted and not queued (in words, for the page); the link may
    /// be used again.
    pub async fn rerun(&self, rerun: Rerun<'_>, deadline: Instant) -> Result<Reran, String> {
        let channel = self.channels.get(RERUN_CHANNEL).ok_or("re-runs need [links] in the configuration")?;
        let max = channel.call().and_then(|c| c.max_repeats).unwrap_or(1);
        let action = rerun.action();
        let token = match self.dedup.claim(&action.key, self.timing.lease).await {
            Ok(Claim::Acquired(token)) => token,
            Ok(Claim::AlreadyDone) => return Ok(Reran::AlreadySubmitted),
            Ok(Claim::InFlight) => return Err("this re-run is being submitted right now".to_owned()),
            Err(err) => return Err(format!("the store is unreachable: {err}")),
        };
        let scope = RequestScope::new(rerun.credentials);
        let (settled, _, _) = self.deliver(&action, Some(&token), deadline, &scope).await;
        let answer = scope.vod_answer(&action.key);
        let last_error = || match &answer {
            Some(Err(reason)) => reason.clone(),
            _ => "no attempt fitted before the page had to answer".to_owned(),
        };
        match settled {
            Settled::Delivered => {
                let request_id = answer.and_then(Result::ok).unwrap_or_default();
                tracing::info!(workflow_id = rerun.workflow_id, video_id = rerun.video_id, %request_id, "re-run from a link");
                Ok(Reran::Submitted { request_id })
            }
            Settled::Skipped => Ok(Reran::Guarded { max }),
            Settled::Queued => Ok(Reran::Queued { why: last_error() }),
            Settled::FailedPermanently if self.outbox.is_some() => {
                Err(format!("{} (kept as a dead letter: vodhook outbox list)", last_error()))
            }
            _ => Err(last_error()),
        }
    }
}
