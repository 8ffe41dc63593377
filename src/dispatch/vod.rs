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
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::Dispatcher;
use crate::action::Action;
use crate::channel::{Outcome, vod::call_of};
use crate::config::ChannelConfig;
use crate::dedup::{Claim, ClaimToken};
use crate::event::Event;
use crate::vod::{CallError, Credentials, play};

/// The least a callback keeps for sending after an enrichment.
const SEND_RESERVE: Duration = Duration::from_millis(1_000);
/// How often an instance waiting for another's `GetPlayInfo` looks in the cache.
const CACHE_POLL: Duration = Duration::from_millis(50);
/// Cached play information expires this long before its signed links do.
const LINK_MARGIN: Duration = Duration::from_secs(60);

/// What one request shares among its actions: the invocation's credentials, and each video's
/// play information, looked up once.
#[derive(Default)]
pub struct RequestScope<'a> {
    /// The credentials Function Compute gave this invocation (never set elsewhere).
    pub credentials: Option<&'a Credentials>,
    videos: HashMap<String, tokio::sync::OnceCell<Value>>,
    /// What each VOD call answered, by action key: its `RequestId`, or why it failed (what a
    /// re-run's page shows).
    answers: Mutex<HashMap<String, Result<String, String>>>,
}

impl<'a> RequestScope<'a> {
    pub fn new(credentials: Option<&'a Credentials>) -> Self {
        Self { credentials, ..Self::default() }
    }

    /// The last answer of the VOD call of action `key`, if one was made in this scope.
    pub(super) fn vod_answer(&self, key: &str) -> Option<Result<String, String>> {
        self.answers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(key).cloned()
    }

    fn record(&self, key: &str, answer: Result<String, String>) {
        self.answers.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(key.to_owned(), answer);
    }
}

impl Dispatcher {
    /// The credentials of a call: the invocation's on FC, else the environment's.
    fn credentials(&self, scope: &RequestScope<'_>) -> Option<Credentials> {
        scope.credentials.cloned().or_else(|| Credentials::from_env(|k| std::env::var(k).ok()))
    }

    /// A `vod` channel's call, one attempt within `timeout`; its answer is kept in `scope`.
    pub(super) async fn call_vod(
        &self,
        action: &Action,
        scope: &RequestScope<'_>,
        timeout: Duration,
    ) -> Outcome {
        let answer = self.vod_call(action, scope, timeout).await;
        let outcome = match &answer {
            Ok(_) => Outcome::Delivered,
            Err(CallError::Retry(reason)) => Outcome::retry(reason.clone()),
            Err(CallError::Permanent(reason)) => Outcome::permanent(reason.clone()),
        };
        let call = call_of(&action.payload).map_or("unknown", |(name, _)| name);
        let result = match &outcome {
            Outcome::Delivered => "ok",
            Outcome::Retry { .. } | Outcome::Throttled { .. } => "retry",
            Outcome::Permanent { .. } => "failed",
        };
        crate::metrics::record(|t| t.vod_call(call, result));
        scope.record(&action.key, answer.map_err(|e| e.to_string()));
        outcome
    }

    /// The call of `action`'s body: its `RequestId`.
    async fn vod_call(
        &self,
        action: &Action,
        scope: &RequestScope<'_>,
        timeout: Duration,
    ) -> Result<String, CallError> {
        let permanent = |reason: &str| CallError::Permanent(reason.to_owned());
        let (name, params) =
            call_of(&action.payload).ok_or(permanent("the action's body is not a VOD call"))?;
        let credentials = self.credentials(scope).ok_or(permanent(
            "no credentials for the VOD API: give the function a role, or set ALIBABA_CLOUD_ACCESS_KEY_ID and \
             ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        ))?;
        let api =
            self.vod.as_ref().ok_or(permanent("vod.endpoint is not a usable URL (see check-config)"))?;
        let answer = api.call(name, &params, &credentials, timeout).await?;
        let request_id = answer.get("RequestId").and_then(Value::as_str).unwrap_or_default().to_owned();
        tracing::info!(key = %action.key, action = name, %request_id, "VOD call made");
        Ok(request_id)
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

    /// `action` (as the router decided it) with its message rendered, once: with its video's
    /// play links when enrichment applies to it (looked up once per video and request), else
    /// without. `None` when it cannot be rendered at all: a configuration error no retry can
    /// mend, logged, and the claim (`token`) completed so that redeliveries do not try again.
    pub(super) async fn rendered(
        &self,
        event: &Event,
        action: &Action,
        token: Option<&ClaimToken>,
        scope: &RequestScope<'_>,
        deadline: Instant,
    ) -> Option<Action> {
        if let Some(video) = self.video_of(event, action, scope, deadline).await {
            match self.router.render(event, action, Some(video)) {
                Ok(rendered) => return Some(rendered),
                Err(err) => {
                    tracing::error!(key = %action.key, error = %err, "cannot render the message with its play links: sent without");
                }
            }
        }
        self.rendered_without_video(event, action, token).await
    }

    /// `action` rendered without play links; `None` when it cannot be rendered at all (see
    /// [`Dispatcher::rendered`]).
    pub(super) async fn rendered_without_video(
        &self,
        event: &Event,
        action: &Action,
        token: Option<&ClaimToken>,
    ) -> Option<Action> {
        match self.router.render(event, action, None) {
            Ok(rendered) => Some(rendered),
            Err(err) => {
                tracing::error!(key = %action.key, error = %err, "cannot render this message: not sent");
                self.complete(&action.key, token).await;
                None
            }
        }
    }

    /// What the VOD API says of the video of `event`, when enrichment applies to `action`.
    async fn video_of<'s>(
        &self,
        event: &Event,
        action: &Action,
        scope: &'s RequestScope<'_>,
        deadline: Instant,
    ) -> Option<&'s Value> {
        if action.channel_type.makes_calls() {
            return None;
        }
        let video_id = enrichable(event)?;
        let cell = scope.videos.get(video_id)?;
        Some(cell.get_or_init(|| self.video(video_id, scope, deadline)).await)
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
