//! Realistic built-in events: what `vodhook simulate --example` sends, and what a new user can
//! try everything on without a VOD account.

/// A WorkflowTaskComplete that succeeded: snapshot, transcode and AI audit nodes.
pub const SUCCEED: &str = include_str!("samples/succeed.json");
/// A WorkflowTaskComplete that failed: the transcode node has an error code and message.
pub const FAILED: &str = include_str!("samples/failed.json");

#[cfg(test)]
mod tests {
    use crate::event::{Event, decode_delivery};

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
