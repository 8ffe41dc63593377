//! Sample events every template is rendered against when the configuration is checked, so a
//! template that cannot render fails `check-config` (and start-up), not the first real
//! callback. They are shaped like VOD's documented callbacks: JSON inside strings included.

use crate::event::{Event, decode_delivery};

/// A failed workflow task: one node succeeded, one failed with an error code and message.
pub const FAILED_WORKFLOW: &str = r#"{
  "EventType": "WorkflowTaskComplete",
  "EventTime": "2025-10-15T02:00:35Z",
  "WorkflowId": "wf-5c1e0b7d9a",
  "Status": "Failed",
  "VideoId": "b0e8a1c0f2d34e5f8a6b7c8d9e0f1a2b",
  "TaskId": "0f5da6c2e4b84f6a9d3e1c7b5a8f2e4d",
  "ActivityResults": "{\"VodTranscode_8d1c0\":{\"Status\":\"Succeed\",\"StartTime\":\"2025-10-15T01:50:30Z\",\"EndTime\":\"2025-10-15T01:58:10Z\",\"ActivityId\":\"VodTranscode\",\"ActivityInstanceId\":\"ce87026be902\",\"Result\":{\"Status\":\"Finished\",\"JobId\":\"5d2b0e1f\"}},\"VodSnapshot_53e77\":{\"Status\":\"Failed\",\"StartTime\":\"2025-10-15T01:58:11Z\",\"EndTime\":\"2025-10-15T01:58:14Z\",\"ActivityId\":\"VodSnapshot\",\"ActivityInstanceId\":\"9a41f7d2c3b1\",\"Result\":{\"Status\":\"Failed\",\"ErrorCode\":\"InvalidParameter.Width\",\"ErrorMessage\":\"The parameter \\\"Width\\\" must be between 1 and 4096.\"}}}",
  "TaskInput": "{\"Type\":\"Media\",\"Media\":\"b0e8a1c0f2d34e5f8a6b7c8d9e0f1a2b\",\"Title\":\"product-launch.mp4\",\"StorageLocation\":\"outin-example.oss-cn-shanghai.aliyuncs.com\"}",
  "CreateTime": "2025-10-15T01:50:30Z",
  "ModifiedTime": "2025-10-15T02:00:33Z",
  "FinishTime": "2025-10-15T01:58:15Z",
  "UserId": 1234567890
}"#;

/// A workflow task that succeeded.
pub const SUCCEEDED_WORKFLOW: &str = r#"{
  "EventType": "WorkflowTaskComplete",
  "EventTime": "2025-10-15T02:00:35Z",
  "WorkflowId": "wf-5c1e0b7d9a",
  "Status": "Succeed",
  "VideoId": "b0e8a1c0f2d34e5f8a6b7c8d9e0f1a2b",
  "TaskId": "7c3e9a1b2d4f4e6a8b0c1d2e3f4a5b6c",
  "ActivityResults": "{\"VodTranscode_8d1c0\":{\"Status\":\"Succeed\",\"StartTime\":\"2025-10-15T01:50:30Z\",\"EndTime\":\"2025-10-15T01:58:10Z\",\"ActivityId\":\"VodTranscode\"}}",
  "TaskInput": "{\"Type\":\"Media\",\"Media\":\"b0e8a1c0f2d34e5f8a6b7c8d9e0f1a2b\",\"Title\":\"product-launch.mp4\"}",
  "CreateTime": "2025-10-15T01:50:30Z",
  "FinishTime": "2025-10-15T01:58:15Z",
  "UserId": 1234567890
}"#;

/// Any other event type: no workflow, no nodes.
pub const UPLOAD: &str = r#"{
  "EventType": "FileUploadComplete",
  "EventTime": "2025-10-15T01:50:28Z",
  "VideoId": "b0e8a1c0f2d34e5f8a6b7c8d9e0f1a2b",
  "Status": "success",
  "Size": 10485760,
  "FileUrl": "https://outin-example.oss-cn-shanghai.aliyuncs.com/sv/product-launch.mp4"
}"#;

/// The samples, decoded, with a name for error messages.
pub fn events() -> Vec<(&'static str, Event)> {
    [("failed workflow", FAILED_WORKFLOW), ("succeeded workflow", SUCCEEDED_WORKFLOW), ("upload", UPLOAD)]
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
        assert_eq!(failed.failed_activity_ids().collect::<Vec<_>>(), ["VodSnapshot"]);
        let summary = failed.summary();
        assert_eq!(summary.failed_nodes[0].error_code, Some("InvalidParameter.Width"));
        assert_eq!(summary.duration.as_deref(), Some("7m 45s"));
    }
}
