//! The VOD event model.
//!
//! A delivery (one HTTP body or MNS message) holds one or more events. Each event is kept twice:
//! as the fully decoded JSON tree (every string that held JSON replaced by its value, nothing
//! dropped, so a later VOD version loses no data) and as a typed view of the fields that routing
//! and templates need. [`decode_delivery`] is the one entry point; it is pure. A bare
//! WorkflowTaskComplete (a VOD callback's body) takes a short path that reads the typed view
//! straight from the text and builds the tree only when something reads it (`fast`, `tree`).

mod decode;
mod embedded;
mod envelope;
mod fast;
pub(crate) mod fields;
mod generic;
mod summary;
mod time;
mod tree;
mod workflow;

pub use decode::{decode_delivery, decode_delivery_in_full, decode_delivery_with};
pub use embedded::MAX_DEPTH;
pub use fields::kind_of;
pub use generic::GenericEvent;
pub use summary::{DecodedTree, Summary, human_duration};
pub use time::VodTime;
pub use workflow::{Activity, TaskInput, TaskStatus, WorkflowTaskComplete};

use serde_json::Value;

/// The event type VOD sends when a workflow task ends.
pub const WORKFLOW_TASK_COMPLETE: &str = "WorkflowTaskComplete";

/// Everything one delivery held.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub events: Vec<Event>,
    /// Details that could not be decoded but did not cost the event (an embedded string that
    /// is not valid JSON, a timestamp that does not parse). They are logged, never fatal.
    pub warnings: Vec<Warning>,
    /// Events in this delivery that could not be decoded, while others could.
    pub rejected: Vec<DecodeError>,
}

/// A detail that stayed as it arrived.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Warning {
    /// Where in the event, e.g. `ActivityResults.VodSnapshot_53e77.Result`.
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why a delivery cannot be an event: the path where decoding stopped and what was expected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {message}", if path.is_empty() { "(root)" } else { path.as_str() })]
pub struct DecodeError {
    /// Dotted path into the delivery, empty for the document itself.
    pub path: String,
    pub message: String,
    /// Well-formed, but over one of the [`Limits`] (answered `413`, not `400`).
    pub over_limit: bool,
}

impl DecodeError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self { path: path.into(), message: message.into(), over_limit: false }
    }

    pub fn over_limit(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self { over_limit: true, ..Self::new(path, message) }
    }
}

/// Bounds on what one delivery may hold, so that no input within the body limit costs the
/// process more than it can afford (`[server] max_events_per_delivery`, `max_nodes_per_event`).
/// VOD sends one event per callback and FC's MNS trigger at most 16 messages a batch; a workflow
/// has a handful of nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_events: usize,
    pub max_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_events: 100, max_nodes: 500 }
    }
}

/// Where an event came from: VOD itself, or Intelligent Media Services (an IMS-signed callback,
/// or an event in IMS's wrapper). Routes match it as `source`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Source {
    #[default]
    Vod,
    Ims,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Vod => "vod",
            Source::Ims => "ims",
        }
    }
}

/// One decoded VOD event.
#[derive(Debug, Clone)]
pub enum Event {
    Workflow(Box<WorkflowTaskComplete>),
    Generic(Box<GenericEvent>),
}

impl Event {
    pub fn source(&self) -> Source {
        match self {
            Event::Workflow(w) => w.source,
            Event::Generic(g) => g.source,
        }
    }

    /// Marks the event as IMS's (its callback was signed with IMS's key).
    pub fn set_source(&mut self, source: Source) {
        match self {
            Event::Workflow(w) => w.source = source,
            Event::Generic(g) => g.source = source,
        }
    }

    /// `EventType` as VOD sent it.
    pub fn event_type(&self) -> &str {
        match self {
            Event::Workflow(_) => WORKFLOW_TASK_COMPLETE,
            Event::Generic(g) => &g.event_type,
        }
    }

    /// `Status` as VOD sent it (compare case-insensitively).
    pub fn status(&self) -> Option<&str> {
        match self {
            Event::Workflow(w) => Some(w.status.as_str()),
            Event::Generic(g) => g.status.as_deref(),
        }
    }

    pub fn video_id(&self) -> Option<&str> {
        match self {
            Event::Workflow(w) => w.video_id.as_deref(),
            Event::Generic(g) => g.video_id.as_deref(),
        }
    }

    pub fn workflow_id(&self) -> Option<&str> {
        match self {
            Event::Workflow(w) => w.workflow_id.as_deref(),
            Event::Generic(_) => None,
        }
    }

    /// The media title (`TaskInput.Title` for workflow events, `Title` when a generic event has one).
    pub fn title(&self) -> Option<&str> {
        match self {
            Event::Workflow(w) => w.task_input.title.as_deref(),
            Event::Generic(g) => g.decoded.get("Title").and_then(Value::as_str),
        }
    }

    /// The activity ids (`VodSnapshot`, `VideoTranslation`, ...) of every node of a workflow task.
    pub fn activity_ids(&self) -> impl Iterator<Item = &str> {
        self.activities().iter().map(|a| a.activity_id.as_str())
    }

    /// The activity ids of the nodes that did not succeed.
    pub fn failed_activity_ids(&self) -> impl Iterator<Item = &str> {
        self.activities().iter().filter(|a| a.status.is_failed()).map(|a| a.activity_id.as_str())
    }

    /// The error codes of the nodes that did not succeed (those that have one).
    pub fn error_codes(&self) -> impl Iterator<Item = &str> {
        let failed = self.activities().iter().filter(|a| a.status.is_failed());
        failed.filter_map(|a| a.error.as_ref().and_then(|e| e.code.as_deref()))
    }

    fn activities(&self) -> &[Activity] {
        match self {
            Event::Workflow(w) => &w.activities,
            Event::Generic(_) => &[],
        }
    }

    /// The event with every embedded JSON string decoded, VOD's field names kept.
    pub fn decoded(&self) -> &Value {
        match self {
            Event::Workflow(w) => w.decoded(),
            Event::Generic(g) => &g.decoded,
        }
    }

    /// What identifies this event across VOD's retries and duplicates (VOD sends no event id).
    ///
    /// - WorkflowTaskComplete: `WorkflowTaskComplete:<TaskId>`, as the VOD documentation says.
    /// - Other events: `<EventType>:<JobId>` when the event has a `JobId`, else
    ///   `<EventType>:<VideoId>:<EventTime>` (a retry repeats both).
    ///
    /// Characters that could forge a log line are escaped ([`crate::text::printable`]): the
    /// identity is logged with every action, and is part of every idempotency key.
    pub fn identity(&self) -> String {
        match self {
            Event::Workflow(w) => format!("{WORKFLOW_TASK_COMPLETE}:{}", crate::text::printable(&w.task_id)),
            Event::Generic(g) => g.identity(),
        }
    }

    /// The view templates render and routes explain themselves with.
    pub fn summary(&self) -> Summary<'_> {
        Summary::of(self)
    }
}
