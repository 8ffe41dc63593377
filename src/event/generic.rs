//! Every other VOD event type (FileUploadComplete, TranscodeComplete, SnapshotComplete,
//! AIMediaAuditComplete, ... about 25): the common envelope typed, everything else kept.

use serde_json::Value;

use super::fields::{Fields, kind_of};
use super::{DecodeError, VodTime, Warning};

#[derive(Debug, Clone)]
pub struct GenericEvent {
    pub event_type: String,
    pub event_time: Option<VodTime>,
    /// `VideoId`, or `MediaId` for the events that name the video so (AIMediaAuditComplete,
    /// CreateAuditComplete): templates need the video, and `identity` must tell two videos apart.
    pub video_id: Option<String>,
    pub status: Option<String>,
    /// `Extend`: the user's pass-through data, decoded when it held JSON.
    pub extend: Option<Value>,
    /// The whole event with its embedded JSON decoded; nothing dropped.
    pub decoded: Value,
    pub source: super::Source,
}

impl GenericEvent {
    pub(crate) fn from_decoded(decoded: Value, warnings: &mut Vec<Warning>) -> Result<Self, DecodeError> {
        let Value::Object(map) = &decoded else {
            return Err(DecodeError::new("", format!("expected an object, found {}", kind_of(&decoded))));
        };
        let f = Fields::new(map, "");
        let event = Self {
            event_type: f.req_str("EventType")?.to_owned(),
            event_time: f.opt_time("EventTime", warnings)?,
            video_id: match f.opt_str("VideoId")? {
                Some(id) => Some(id.to_owned()),
                // Not documented for every event: used when it is a string, never an error.
                None => map.get("MediaId").and_then(Value::as_str).map(str::to_owned),
            },
            status: f.opt_str("Status")?.map(str::to_owned),
            extend: map.get("Extend").filter(|v| !v.is_null()).cloned(),
            decoded: Value::Null,
            source: super::Source::Vod,
        };
        Ok(Self { decoded, ..event })
    }

    /// See [`super::Event::identity`].
    pub fn identity(&self) -> String {
        let field = |k: &str| match self.decoded.get(k) {
            Some(Value::String(s)) => s.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        let job_id = field("JobId");
        let identity = if job_id.is_empty() {
            let time = self.event_time.as_ref().map_or("", |t| t.raw.as_str());
            format!("{}:{}:{time}", self.event_type, self.video_id.as_deref().unwrap_or(""))
        } else {
            format!("{}:{job_id}", self.event_type)
        };
        crate::text::printable(&identity).into_owned()
    }
}
