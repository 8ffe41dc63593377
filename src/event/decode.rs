//! From a delivery's bytes to typed events: unwrap the envelope, decode embedded JSON, build
//! the typed view. Pure: no I/O, no clock.

use serde_json::Value;

use super::embedded::decode_embedded;
use super::envelope;
use super::{
    DecodeError, Delivery, Event, GenericEvent, Limits, Source, WORKFLOW_TASK_COMPLETE, Warning,
    WorkflowTaskComplete,
};
use crate::text::join_path;

/// Decodes one delivery (an HTTP callback body or an MNS message, any envelope).
///
/// An event that cannot be decoded is an error only when the delivery holds no good event:
/// otherwise it is reported in [`Delivery::rejected`], so one broken message in an MNS batch
/// does not hold back (or endlessly re-deliver) the others.
pub fn decode_delivery(body: &[u8]) -> Result<Delivery, DecodeError> {
    decode_delivery_with(body, &Limits::default())
}

/// [`decode_delivery`] within `limits`: more events than `max_events` refuse the delivery, an
/// event with more nodes than `max_nodes` is rejected (both over-limit errors, with the numbers).
///
/// A bare WorkflowTaskComplete that decodes without a warning (nearly every VOD callback) takes
/// a short path that leaves the decoded tree to be built on first use ([`super::fast`]).
pub fn decode_delivery_with(body: &[u8], limits: &Limits) -> Result<Delivery, DecodeError> {
    if let Some(event) = super::fast::workflow(body, limits) {
        let events = vec![Event::Workflow(Box::new(event))];
        return Ok(Delivery { events, warnings: Vec::new(), rejected: Vec::new() });
    }
    decode_delivery_in_full(body, limits)
}

/// [`decode_delivery_with`] the long way, whatever the delivery holds: every envelope, every
/// event type, every warning, the decoded tree built at once: for a configuration that reads
/// every event's tree (`Router::reads_event_tree`), where building it later would cost the short
/// path's pass on top; and for the tests and the fuzz target that hold the short path
/// ([`super::fast`]) to it.
pub fn decode_delivery_in_full(body: &[u8], limits: &Limits) -> Result<Delivery, DecodeError> {
    let found = envelope::unwrap(body)?;
    if found.events.len() > limits.max_events {
        return Err(DecodeError::over_limit(
            "",
            format!(
                "{} events in one delivery; at most {} are taken ([server] max_events_per_delivery)",
                found.events.len(),
                limits.max_events
            ),
        ));
    }
    let mut delivery = Delivery {
        events: Vec::with_capacity(found.events.len()),
        warnings: Vec::new(),
        rejected: found.rejected,
    };
    for item in found.events {
        match decode_event_value(item.value, &item.path, limits, &mut delivery.warnings) {
            Ok(event) => delivery.events.push(event),
            Err(err) => delivery.rejected.push(err),
        }
    }
    if delivery.events.is_empty() {
        return Err(delivery.rejected.swap_remove(0));
    }
    Ok(delivery)
}

/// Decodes one event object found at `path` in its delivery (empty for a bare event).
fn decode_event_value(
    mut value: Value,
    path: &str,
    limits: &Limits,
    warnings: &mut Vec<Warning>,
) -> Result<Event, DecodeError> {
    decode_embedded(&mut value, path, warnings)?;
    let ims = unwrap_ims(&mut value);
    let path = &if ims { join_path(path, "MessageBody") } else { path.to_owned() };
    let nodes = value.get("ActivityResults").and_then(Value::as_object).map_or(0, |nodes| nodes.len());
    if nodes > limits.max_nodes {
        return Err(DecodeError::over_limit(
            join_path(path, "ActivityResults"),
            format!("{nodes} nodes; at most {} are taken ([server] max_nodes_per_event)", limits.max_nodes),
        ));
    }
    let is_workflow = value.get("EventType").and_then(Value::as_str) == Some(WORKFLOW_TASK_COMPLETE);
    // The typed view names paths inside the event; the delivery path goes in front, as it
    // does for the embedded decoder's warnings, so a batch's warnings say which event.
    let typed_from = warnings.len();
    let event = if is_workflow {
        WorkflowTaskComplete::from_decoded(value, warnings).map(|w| Event::Workflow(Box::new(w)))
    } else {
        GenericEvent::from_decoded(value, warnings).map(|g| Event::Generic(Box::new(g)))
    };
    if !path.is_empty() {
        for warning in &mut warnings[typed_from..] {
            warning.path = join_path(path, &warning.path);
        }
    }
    let mut event = event.map_err(|e| DecodeError { path: join_path(path, &e.path), ..e })?;
    if ims {
        event.set_source(Source::Ims);
    }
    Ok(event)
}

/// Intelligent Media Services wraps its events: `{"EventType", "UserId", "EventTime",
/// "MessageBody": {...}}`, the event's own fields in `MessageBody`. Replaces such a wrapper by its
/// `MessageBody`, keeping every wrapper field the body does not have itself, so that routing and
/// templates see one event. A VOD event never has a `MessageBody` object beside no `Status` and
/// no `TaskId` at its top level. True when it was a wrapper.
fn unwrap_ims(value: &mut Value) -> bool {
    let Value::Object(wrapper) = value else { return false };
    let is_wrapper = wrapper.get("MessageBody").is_some_and(Value::is_object)
        && !wrapper.contains_key("Status")
        && !wrapper.contains_key("TaskId");
    if !is_wrapper {
        return false;
    }
    let Some(Value::Object(mut inner)) = wrapper.remove("MessageBody") else { return false };
    for (key, field) in std::mem::take(wrapper) {
        inner.entry(key).or_insert(field);
    }
    *value = Value::Object(inner);
    true
}
