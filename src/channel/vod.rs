//! `vod`: a VOD OpenAPI call as the follow-up action (`SubmitWorkflowJob` to re-run a failed
//! workflow, `UpdateVideoInfo` to tag a video, ...), not a message:
//!
//! ```toml
//! [[channels]]
//! name = "rerun"
//! type = "vod"
//! action = "SubmitWorkflowJob"
//! params = { WorkflowId = "{{ workflow_id }}", MediaId = "{{ video_id }}" }
//! ```
//!
//! Each parameter is a template rendered per event, like a message; the action's body is the
//! call, `{"Action": ..., "Params": {...}}`, which `plan` shows and the outbox keeps. The call
//! itself is made by the dispatcher through the `vod` module's client (signing needs the
//! invocation's credentials), on the same claim / retry / outbox path as every channel; the
//! API's errors are classified there (`Throttling*`, 5xx → retry; anything else permanent).
//!
//! The loop guard: a re-run's own failure arrives as a new event (a new TaskId), so a channel
//! calls its action for one (VideoId, WorkflowId) at most `max_repeats` times (1) within the
//! dedup TTL; then it logs and skips (the failure is still notified by the other channels).

use serde_json::{Map, Value, json};

use super::ServiceLimits;
use crate::config::{ChannelConfig, Findings, Service};
use crate::template::Markup;

pub const LIMITS: ServiceLimits = ServiceLimits::NONE;
pub const MARKUP: Markup = Markup::Text;
/// Not rendered: a call has parameters, not a text.
pub const TEMPLATE: (&str, &str) = ("builtin:vod", "");
/// `max_repeats` when not set.
pub const DEFAULT_MAX_REPEATS: u32 = 1;

pub(super) fn check(channel: &ChannelConfig, at: &str, f: &mut Findings) {
    let Service::Vod(call) = &channel.service else { return };
    match call.action.as_deref() {
        None => {
            f.problem(format!("{at}.action"), "is required for vod channels (e.g. \"SubmitWorkflowJob\")")
        }
        Some(action) if !is_action_name(action) => f.problem(
            format!("{at}.action"),
            format!("{action:?} is not an OpenAPI action name (a capital letter, then letters and digits)"),
        ),
        Some(_) => {}
    }
    for name in call.params.keys() {
        if !name.starts_with(|c: char| c.is_ascii_alphabetic())
            || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '.')
        {
            f.problem(format!("{at}.params.{name}"), "is not a parameter name (letters, digits and dots)");
        }
    }
    if call.max_repeats == Some(0) {
        f.problem(format!("{at}.max_repeats"), "must be at least 1 (remove the channel to make no calls)");
    }
    if channel.template.is_some() {
        f.warning(format!("{at}.template"), "ignored by vod channels: the call is `action` and `params`");
    }
}

/// `SubmitWorkflowJob`, `GetPlayInfo`: a capital letter, then up to 63 letters and digits.
pub fn is_action_name(name: &str) -> bool {
    name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_uppercase())
        && name.chars().all(|c| c.is_ascii_alphanumeric())
}

/// The action's body: the call it makes.
pub fn call(action: &str, params: Map<String, Value>) -> Value {
    json!({ "Action": action, "Params": params })
}

/// The call in an action's body: (action, parameters as strings). `None` when the body is not a
/// call (an outbox entry from another version).
pub fn call_of(payload: &Value) -> Option<(&str, Vec<(String, String)>)> {
    let action = payload.get("Action")?.as_str()?;
    let params = payload
        .get("Params")?
        .as_object()?
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
        .collect();
    Some((action, params))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::channel::test_support::problems;
    use crate::config::ChannelType;

    #[test]
    fn action_names_and_params_are_checked() {
        let mut channel = ChannelConfig::new("rerun", ChannelType::Vod);
        assert_eq!(
            problems(&channel),
            ["c.action: is required for vod channels (e.g. \"SubmitWorkflowJob\")"]
        );
        let Service::Vod(call) = &mut channel.service else { unreachable!() };
        call.action = Some("submit workflow".into());
        assert!(problems(&channel)[0].contains("is not an OpenAPI action name"));
        let Service::Vod(call) = &mut channel.service else { unreachable!() };
        call.action = Some("SubmitWorkflowJob".into());
        call.params.insert("Media Id".into(), "{{ video_id }}".into());
        call.max_repeats = Some(0);
        assert_eq!(
            problems(&channel),
            [
                "c.params.Media Id: is not a parameter name (letters, digits and dots)",
                "c.max_repeats: must be at least 1 (remove the channel to make no calls)"
            ]
        );
        assert!(is_action_name("GetPlayInfo") && !is_action_name("getPlayInfo") && !is_action_name(""));
    }

    #[test]
    fn a_call_reads_back_from_its_body() {
        let mut params = Map::new();
        params.insert("MediaId".into(), json!("v1"));
        let body = call("SubmitWorkflowJob", params);
        let (action, params) = call_of(&body).unwrap();
        assert_eq!((action, params), ("SubmitWorkflowJob", vec![("MediaId".to_owned(), "v1".to_owned())]));
    }
}
