//! Any bytes, as one delivery: envelope unwrapping, embedded JSON, typed view, summary, and the
//! short path held to the full one.
//! It must never panic or overflow the stack, and what it accepts must hold together.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vodhook::event::{Event, Limits, decode_delivery, decode_delivery_in_full};

fuzz_target!(|data: &[u8]| {
    // The short path (a bare WorkflowTaskComplete, its tree built later) says exactly what the
    // full path says: the same events (trees included), warnings, rejections and errors.
    let decoded = decode_delivery(data);
    let full = decode_delivery_in_full(data, &Limits::default());
    assert_eq!(format!("{decoded:?}"), format!("{full:?}"), "the short path disagrees");
    let Ok(delivery) = decoded else { return };
    assert!(!delivery.events.is_empty(), "Ok with no event");
    for event in &delivery.events {
        assert!(event.decoded().is_object(), "an event that is not an object");
        let _ = event.identity();
        let _ = event.activity_ids().count();
        let _ = event.failed_activity_ids().count();
        let summary = event.summary();
        // Templates render the summary: it must serialize, and say the same as the event.
        let json = serde_json::to_value(&summary).expect("summary serializes");
        assert_eq!(json["event_type"], event.event_type());
        if let Event::Workflow(w) = event {
            assert_eq!(summary.nodes.len(), w.activities.len());
            assert!(summary.failed_nodes.len() <= summary.nodes.len());
        }
    }
});
