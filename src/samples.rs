//! Realistic built-in events, shaped like VOD's documented callbacks (JSON inside strings, a
//! node's result nested once more): what `vodhook simulate --example` sends, what a new user can
//! try everything on without a VOD account, and what every template is rendered against when
//! the configuration is checked, so that a template that cannot render fails `check-config`
//! (and start-up), not the first real callback.

use crate::event::{Event, decode_delivery};

/// A WorkflowTaskComplete that succeeded: snapshot, transcode and AI audit nodes.
pub const SUCCEED: &str = include_str!("samples/succeed.json");
/// A WorkflowTaskComplete that failed: the transcode node has an error code and message.
pub const FAILED: &str = include_str!("samples/failed.json");

/// Any other event type: no workflow, no nodes.
pub const UPLOAD: &str = r#"{
  "EventType": "FileUploadComplete",
  "EventTime": "2025-10-15T01:50:28Z",
  "VideoId": "b0e8a1c0f2d34e5f8a6b7c8d9e0f1a2b",
  "Status": "success",
  "Size": 10485760,
  "FileUrl": "https://outin-example.oss-cn-shanghai.aliyuncs.com/sv/product-launch.mp4"
}"#;

/// The samples, decoded, with a name for error messages: a failed workflow, a succeeded one, an
/// upload.
pub fn events() -> Vec<(&'static str, Event)> {
    [("failed workflow", FAILED), ("succeeded workflow", SUCCEED), ("upload", UPLOAD)]
        .into_iter()
        .filter_map(|(name, json)| {
            let event = decode_delivery(json.as_bytes()).ok()?.events.into_iter().next()?;
            Some((name, event))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_sample_decodes() {
        let events = events();
        assert_eq!(events.len(), 3);
        let failed = &events[0].1;
        assert_eq!(failed.status(), Some("Failed"));
        assert_eq!(failed.failed_activity_ids().collect::<Vec<_>>(), ["VodTranscode"]);
        let summary = failed.summary();
        assert_eq!(summary.failed_nodes[0].error_code, Some("InvalidMedia.AudioStreamMissing"));
        assert_eq!(summary.duration.as_deref(), Some("3m 29s"));
    }

    #[test]
    fn samples_decode_to_what_they_claim() {
        let ok = decode_delivery(super::SUCCEED.as_bytes()).unwrap();
        assert!(ok.warnings.is_empty(), "{:?}", ok.warnings);
        let Event::Workflow(w) = &ok.events[0] else { panic!("not a workflow event") };
        assert!(w.status.is_succeeded());
        assert_eq!(w.activities.len(), 3);
        let failed = decode_delivery(super::FAILED.as_bytes()).unwrap();
        let Event::Workflow(w) = &failed.events[0] else { panic!("not a workflow event") };
        let failed_nodes: Vec<_> = w.failed_activities().collect();
        assert_eq!(failed_nodes.len(), 1);
        let error = failed_nodes[0].error.as_ref().unwrap();
        assert_eq!(error.code.as_deref(), Some("InvalidMedia.AudioStreamMissing"));
    }
}
