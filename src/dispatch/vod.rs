//! The VOD API in the pipeline: `vod` channels' calls (with their loop guard), and enrichment,
//! the play links and cover of a successful event's video (`[vod] enrich`).
//!
//! Enrichment costs at most one `GetPlayInfo` per video, whatever the number of channels,
//! duplicates or instances: it runs after an action's claim (a duplicate whose actions are done
//! asks nothing), once per request and video (the channels of one event share the answer),
//! through the dedup store's cache (instances share it, for as long as the signed links stay
//! valid) and behind a claim on the video (while one instance asks, the others wait for its
//! answer in the cache). It never costs the notification: it is bounded by `[vod] timeout_ms`
//! and by the callback's deadline, and a slow or failing API gives the message without links,
//! saying why (`video.available` false, `video.reason`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::Dispatcher;
use crate::action::Action;
use crate::channel::{Outcome, vod::call_of};
use crate::config::ChannelConfig;
use crate::dedup::Claim;
use crate::event::Event;
use crate::vod::{CallError, Credentials, play};

/// The least a callback keeps for sending after an enrichment.
const SEND_RESERVE: Duration = Duration::from_millis(1_000);
/// How often an instance waiting for another's `GetPlayInfo` looks in the cache.
const CACHE_POLL: Duration = Duration::from_millis(50);
/// Cached play information expires this long before its signed links do.
const LINK_MARGIN: Duration = Duration::from_secs(60);

/// A re-run from a link (see [`Dispatcher::rerun`]).
#[derive(Debug, Clone, Copy)]
pub struct Rerun<'a> {
    /// The link's claim: the loop guard counts distinct links.
    pub key: &'a str,
    pub video_id: &'a str,
    pub workflow_id: &'a str,
    pub max: u32,
    /// The invocation's credentials (Function Compute); else the environment's.
    pub credentials: Option<&'a Credentials>,
}

/// What one request shares among its actions: the invocation's credentials, and each video's
/// play information, looked up once.
#[derive(Default)]
pub struct RequestScope<'a> {
    /// The credentials Function Compute gave this invocation (never set elsewhere).
    pub credentials: Option<&'a Credentials>,
    videos: HashMap<String, tokio::sync::OnceCell<Value>>,
}

impl<'a> RequestScope<'a> {
    pub fn new(credentials: Option<&'a Credentials>) -> Self {
        Self { credentials, videos: HashMap::new() }
    }
}

impl Dispatcher {
    /// The credentials of a call: the invocation's on FC, else the environment's.
    fn credentials(&self, scope: &RequestScope<'_>) -> Option<Credentials> {
        scope.credentials.cloned().or_else(|| Credentials::from_env(|k| std::env::var(k).ok()))
    }

    /// A `vod` channel's call, one attempt within `timeout`.
    pub(super) async fn call_vod(
        &self,
        action: &Action,
        scope: &RequestScope<'_>,
        timeout: Duration,
    ) -> Outcome {
        let Some((name, params)) = call_of(&action.payload) else {
            return Outcome::permanent("the action's body is not a VOD call");
        };
        let Some(credentials) = self.credentials(scope) else {
            return Outcome::permanent(
                "no credentials for the VOD API: give the function a role, or set ALIBABA_CLOUD_ACCESS_KEY_ID and \
                 ALIBABA_CLOUD_ACCESS_KEY_SECRET",
            );
        };
        let Some(api) = &self.vod else {
            return Outcome::permanent("vod.endpoint is not a usable URL (see check-config)");
        };
        match api.call(name, &params, &credentials, timeout).await {
            Ok(answer) => {
                let request_id = answer.get("RequestId").and_then(Value::as_str).unwrap_or("");
                tracing::info!(key = %action.key, action = name, request_id, "VOD call made");
                Outcome::Delivered
            }
            Err(CallError::Retry(reason)) => Outcome::retry(reason),
            Err(CallError::Permanent(reason)) => Outcome::permanent(reason),
        }
    }

    /// A re-run a person confirmed on a link's page (the `links` module): `SubmitWorkflowJob` for the
    /// video and workflow, behind a loop guard like a `vod` channel's (at most `max` re-runs of
    /// one video and workflow within the dedup TTL), retried with the channels' backoff until
    /// `deadline`. The call's `RequestId`, or why it was not made (in words, for the page).
    pub async fn rerun(&self, rerun: Rerun<'_>, deadline: Instant) -> Result<String, String> {
        let guard = format!("vod|links|SubmitWorkflowJob|{}|{}", rerun.video_id, rerun.workflow_id);
        if let Ok(false) = self.dedup.admit(&guard, rerun.key, rerun.max, self.timing.done_ttl).await {
            return Err(format!(
                "this workflow was re-run for this video {} times already (the loop guard, [links] max_reruns)",
                rerun.max
            ));
        }
        let credentials =
            rerun.credentials.cloned().or_else(|| Credentials::from_env(|k| std::env::var(k).ok()));
        let credentials = credentials.ok_or(
            "no credentials for the VOD API: give the function a role, or set ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        )?;
        let api = self.vod.as_ref().ok_or("vod.endpoint is not a usable URL (see check-config)")?;
        let params = [("WorkflowId", rerun.workflow_id), ("MediaId", rerun.video_id)]
            .map(|(k, v)| (k.to_owned(), v.to_owned()));
        let mut attempts = 0;
        loop {
            attempts += 1;
            let timeout = deadline.saturating_duration_since(Instant::now());
            match api.call("SubmitWorkflowJob", &params, &credentials, timeout).await {
                Ok(answer) => {
                    let request_id =
                        answer.get("RequestId").and_then(Value::as_str).unwrap_or_default().to_owned();
                    tracing::info!(workflow_id = rerun.workflow_id, video_id = rerun.video_id, %request_id, "re-run from a link");
                    return Ok(request_id);
                }
                Err(CallError::Permanent(reason)) => return Err(reason),
                Err(CallError::Retry(reason)) if !self.backed_off(attempts, None, deadline).await => {
                    return Err(reason);
                }
                Err(CallError::Retry(_)) => {}
            }
        }
    }

    /// The loop guard of a `vod` channel: whether `action` may call the channel's action for its
    /// event's (VideoId, WorkflowId), at most `max_repeats` different events within the dedup
    /// TTL. A store that cannot be asked allows it (the claim protects against duplicates).
    pub(super) async fn repeat_allowed(&self, channel: &ChannelConfig, action: &Action) -> bool {
        let Some(brief) = &action.brief else { return true };
        let call = channel.call();
        let max = call.and_then(|c| c.max_repeats).unwrap_or(crate::channel::vod::DEFAULT_MAX_REPEATS);
        let guard = format!(
            "vod|{}|{}|{}|{}",
            channel.name,
            call.and_then(|c| c.action.as_deref()).unwrap_or(""),
            brief.video_id.as_deref().unwrap_or(""),
            brief.workflow_id.as_deref().unwrap_or("")
        );
        match self.dedup.admit(&guard, &action.key, max, self.timing.done_ttl).await {
            Ok(true) => true,
            Ok(false) => {
                tracing::warn!(
                    key = %action.key, channel = %channel.name, max_repeats = max,
                    "loop guard: this call was made max_repeats times for the video and workflow; skipped"
                );
                false
            }
            Err(err) => {
                tracing::warn!(key = %action.key, error = %err, "loop guard unavailable: calling");
                true
            }
        }
    }

    /// The videos of `events` that enrichment would look up, for a request's scope.
    pub(super) fn videos_to_enrich(&self, events: &[Event], scope: &mut RequestScope<'_>) {
        if !self.vod_config.enrich {
            return;
        }
        for event in events {
            if let Some(id) = enrichable(event) {
                scope.videos.entry(id.to_owned()).or_default();
            }
        }
    }

    /// `action` with its video's play links, when enrichment applies to it; `None` when not
    /// (the action goes as it is).
    pub(super) async fn enriched(
        &self,
        event: &Event,
        action: &Action,
        scope: &RequestScope<'_>,
        deadline: Instant,
    ) -> Option<Action> {
        if action.channel_type.makes_calls() {
            return None;
        }
        let video_id = enrichable(event)?;
        let cell = scope.videos.get(video_id)?;
        let video = cell.get_or_init(|| self.video(video_id, scope, deadline)).await;
        match self.router.payload_with_video(event, action, video) {
            Ok(payload) => Some(Action { payload, ..action.clone() }),
            Err(err) => {
                tracing::error!(key = %action.key, error = %err, "cannot render the message with its play links: sent without");
                None
            }
        }
    }

    /// What templates see as `video`: the play information, or why there is none.
    async fn video(&self, video_id: &str, scope: &RequestScope<'_>, deadline: Instant) -> Value {
        let until = (Instant::now() + Duration::from_millis(self.vod_config.timeout_ms))
            .min(deadline.checked_sub(SEND_RESERVE).unwrap_or(deadline));
        match self.play_info(video_id, scope, until).await {
            Ok(info) => {
                let mut value = serde_json::to_value(info).unwrap_or(Value::Null);
                value["available"] = json!(true);
                value
            }
            Err(reason) => {
                tracing::warn!(video_id, %reason, "no play links: the message goes without them");
                json!({ "available": false, "video_id": video_id, "reason": reason })
            }
        }
    }

    /// The play information of `video_id`: from the cache, else from the API (one instance
    /// asks, the others wait for its answer), by `until`.
    async fn play_info(
        &self,
        video_id: &str,
        scope: &RequestScope<'_>,
        until: Instant,
    ) -> Result<play::VideoInfo, String> {
        let cache_key = format!("vodplay|{video_id}");
        if let Some(info) = self.cached(&cache_key).await {
            return Ok(info);
        }
        let lease = until.saturating_duration_since(Instant::now()).max(Duration::from_millis(100));
        match self.dedup.claim(&format!("{cache_key}|lookup"), lease).await {
            Ok(Claim::Acquired(token)) => {
                let result = self.fetch_play_info(video_id, scope, until, &cache_key).await;
                self.release(&format!("{cache_key}|lookup"), Some(&token)).await;
                result
            }
            Ok(_) => {
                while Instant::now() + CACHE_POLL < until {
                    tokio::time::sleep(CACHE_POLL).await;
                    if let Some(info) = self.cached(&cache_key).await {
                        return Ok(info);
                    }
                }
                Err("another instance was still looking the video up".to_owned())
            }
            Err(_) => self.fetch_play_info(video_id, scope, until, &cache_key).await,
        }
    }

    async fn cached(&self, cache_key: &str) -> Option<play::VideoInfo> {
        let json = self.dedup.cache_get(cache_key).await.ok().flatten()?;
        serde_json::from_str(&json).ok()
    }

    async fn fetch_play_info(
        &self,
        video_id: &str,
        scope: &RequestScope<'_>,
        until: Instant,
        cache_key: &str,
    ) -> Result<play::VideoInfo, String> {
        let credentials = self.credentials(scope).ok_or("no credentials for the VOD API")?;
        let timeout = until.saturating_duration_since(Instant::now());
        if timeout.is_zero() {
            return Err("no time left in the callback's deadline".to_owned());
        }
        let params = play::request(video_id, &self.vod_config);
        let api = self.vod.as_ref().ok_or("vod.endpoint is not a usable URL")?;
        let answer =
            api.call("GetPlayInfo", &params, &credentials, timeout).await.map_err(|e| e.to_string())?;
        let valid = Duration::from_secs(self.vod_config.auth_timeout_secs);
        let expires_at = (chrono::Utc::now() + valid).format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let info = play::parse(video_id, &answer, expires_at)?;
        if let Ok(json) = serde_json::to_string(&info) {
            let ttl = valid.saturating_sub(LINK_MARGIN).max(Duration::from_secs(1));
            if let Err(err) = self.dedup.cache_put(cache_key, &json, ttl).await {
                tracing::warn!(video_id, error = %err, "could not cache the play information");
            }
        }
        Ok(info)
    }
}

/// The video a successful event names, if enrichment applies to it.
fn enrichable(event: &Event) -> Option<&str> {
    crate::event::TaskStatus::parse(event.status().unwrap_or("")).is_succeeded().then_some(())?;
    event.video_id().filter(|id| !id.is_empty())
}
