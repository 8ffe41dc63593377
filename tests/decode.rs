//! Decoding every shape a VOD callback arrives in, end to end through `decode_delivery`:
//! the shipped fixtures (typed fields, durations, failed nodes), what bad input gets (exact
//! paths, warnings, never a panic), and properties over generated events and envelopes.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;
use serde_json::{Value, json};
use vodhook::event::{
    DecodeError, Delivery, Event, GenericEvent, MAX_DEPTH, TaskStatus, Warning, WorkflowTaskComplete,
    decode_delivery,
};

// --- helpers ---------------------------------------------------------------------------------

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn fixture(name: &str) -> Vec<u8> {
    let path = fixtures_dir().join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn decode(name: &str) -> Delivery {
    decode_delivery(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The one event a fixture holds, with the warnings it caused.
fn only_event(name: &str) -> (Event, Vec<Warning>) {
    let mut delivery = decode(name);
    assert_eq!(delivery.events.len(), 1, "{name}");
    assert!(delivery.rejected.is_empty(), "{name}: {:?}", delivery.rejected);
    (delivery.events.remove(0), delivery.warnings)
}

fn workflow(event: &Event) -> &WorkflowTaskComplete {
    match event {
        Event::Workflow(w) => w,
        Event::Generic(g) => panic!("expected WorkflowTaskComplete, got {}", g.event_type),
    }
}

fn generic(event: &Event) -> &GenericEvent {
    match event {
        Event::Generic(g) => g,
        Event::Workflow(w) => panic!("expected a generic event, got workflow task {}", w.task_id),
    }
}

/// A JSON pointer into the decoded tree that must exist.
fn at<'a>(event: &'a Event, pointer: &str) -> &'a Value {
    event.decoded().pointer(pointer).unwrap_or_else(|| panic!("no {pointer} in {:#}", event.decoded()))
}

fn paths(warnings: &[Warning]) -> BTreeSet<&str> {
    warnings.iter().map(|w| w.path.as_str()).collect()
}

fn err(body: impl AsRef<[u8]>) -> DecodeError {
    match decode_delivery(body.as_ref()) {
        Ok(d) => {
            panic!("expected an error for {:?}, got {:?}", String::from_utf8_lossy(body.as_ref()), d.events)
        }
        Err(e) => e,
    }
}

fn b64(text: impl AsRef<[u8]>) -> String {
    STANDARD.encode(text)
}

/// Whether `text` has the shape the decoder parses: an object or an array, ASCII-trimmed.
fn looks_like_json(text: &str) -> bool {
    let t = text.trim_ascii();
    (t.starts_with('{') && t.ends_with('}')) || (t.starts_with('[') && t.ends_with(']'))
}

/// Every string in `value` that still holds a JSON document (a decoding miss).
fn undecoded_strings(value: &Value, path: &str, out: &mut Vec<String>) {
    match value {
        Value::String(s) if looks_like_json(s) && serde_json::from_str::<Value>(s).is_ok() => {
            out.push(path.to_owned())
        }
        Value::Array(items) => {
            items.iter().enumerate().for_each(|(i, v)| undecoded_strings(v, &format!("{path}[{i}]"), out))
        }
        Value::Object(map) => map.iter().for_each(|(k, v)| undecoded_strings(v, &format!("{path}.{k}"), out)),
        _ => {}
    }
}

// --- the documentation's own example ----------------------------------------------------------

#[test]
fn doc_example_decodes_three_levels_deep() {
    let (event, warnings) = only_event("workflow-doc-example.json");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(
        at(&event, "/ActivityResults/VodSnapshot_53e77/Result/MessageBody/TriggerSource/BizType"),
        "ice-workflow"
    );
    assert_eq!(at(&event, "/ActivityResults/VodSnapshot_53e77/Result/UserId"), 123);
    assert_eq!(at(&event, "/TaskInput/StorageLocation"), "xxx");

    let w = workflow(&event);
    assert_eq!(w.task_id, "xxx");
    assert_eq!(w.status, TaskStatus::Succeed);
    assert_eq!(w.user_id.as_deref(), Some("xxx"));
    assert_eq!(w.workflow_id.as_deref(), Some("xxx"));
    assert_eq!(w.task_input.r#type.as_deref(), Some("Media"));
    assert_eq!(w.duration_secs(), Some(209), "02:29:43 to 02:33:12");
    assert_eq!(w.activities.len(), 1);
    let node = &w.activities[0];
    assert_eq!((node.name.as_str(), node.activity_id.as_str()), ("VodSnapshot_53e77", "VodSnapshot"));
    assert_eq!(node.activity_instance_id.as_deref(), Some("xxxx"));
    assert_eq!(node.duration_secs(), Some(4));
    assert_eq!(node.error, None);
    assert_eq!(event.identity(), "WorkflowTaskComplete:xxx");

    let summary = event.summary();
    assert!(summary.ok);
    assert_eq!(summary.duration.as_deref(), Some("3m 29s"));
    assert_eq!(summary.event_time, Some("2025-04-01T02:33:12Z"));
    assert!(summary.failed_nodes.is_empty());
}

// --- WorkflowTaskComplete ---------------------------------------------------------------------

#[test]
fn succeeded_workflow_with_four_nodes() {
    let (event, warnings) = only_event("workflow-succeed.json");
    assert!(warnings.is_empty(), "{warnings:?}");
    let w = workflow(&event);
    assert_eq!(w.status, TaskStatus::Succeed);
    assert_eq!(event.title(), Some("春季发布会 🎬 精彩回顾"));
    assert_eq!(w.user_id.as_deref(), Some("1234567890123456"), "a number in practice");
    assert_eq!(w.task_input.extra.get("Priority"), Some(&json!(6)), "unknown TaskInput fields kept");

    // In start order; equal starts by name.
    let nodes: Vec<_> =
        w.activities.iter().map(|a| (a.name.as_str(), a.activity_id.as_str(), a.duration_secs())).collect();
    assert_eq!(
        nodes,
        [
            ("VodSnapshot_53e77", "VodSnapshot", Some(4)),
            ("VodTranscode_1a2b3", "VodTranscode", Some(75)),
            ("VodAIAudit_9c0d1", "VodAIAudit", Some(68)),
            ("VideoTranslation_e4f5a", "VideoTranslation", Some(54)),
        ]
    );
    assert_eq!(event.failed_activity_ids().count(), 0);

    // Strings inside strings inside strings, all decoded.
    let transcode = "/ActivityResults/VodTranscode_1a2b3/Result";
    assert_eq!(at(&event, &format!("{transcode}/MessageBody/StreamInfos/0/Definition")), "HD");
    assert_eq!(at(&event, &format!("{transcode}/MessageBody/TriggerSource/BizType")), "ice-workflow");
    assert_eq!(at(&event, &format!("{transcode}/UserData/Extend/project")), "春季发布会");
    assert_eq!(
        w.result_of(&w.activities[1]).and_then(|r| r.pointer("/UserData/Extend/tenant")),
        Some(&json!(42)),
        "the typed node's Result is the decoded one"
    );

    let summary = event.summary();
    assert!(summary.ok);
    assert_eq!(summary.duration_secs, Some(209));
    let durations: Vec<_> = summary.nodes.iter().map(|n| n.duration.as_deref().unwrap_or("-")).collect();
    assert_eq!(durations, ["4s", "1m 15s", "1m 8s", "54s"]);
}

#[test]
fn failed_workflow_names_its_failed_nodes_and_why() {
    let (event, warnings) = only_event("workflow-failed.json");
    assert!(warnings.is_empty(), "{warnings:?}");
    let w = workflow(&event);
    assert_eq!(w.status, TaskStatus::Failed);
    assert_eq!(event.status(), Some("Failed"));
    assert_eq!(event.title(), Some("🚀 Launch day — 发布日"));
    assert_eq!(w.user_id.as_deref(), Some("1234567890123456"), "a string, as documented");
    assert_eq!(event.video_id(), Some("0f1e2d3c4b5a69788796a5b4c3d2e1f0"));
    assert_eq!(w.duration_secs(), Some(105));

    let failed: Vec<_> = event.failed_activity_ids().collect();
    assert_eq!(failed, ["VodTranscode", "VideoTranslation"]);
    // ActivityResults arrived as a real object: its object Result is used as is, its string
    // Result is decoded.
    assert_eq!(at(&event, "/ActivityResults/VodSnapshot_77aa2/Result/MessageBody/Status"), "success");

    let summary = event.summary();
    assert!(!summary.ok);
    assert_eq!(summary.duration.as_deref(), Some("1m 45s"));
    let failed: Vec<_> = summary
        .failed_nodes
        .iter()
        .map(|n| (n.name, n.status, n.duration.as_deref(), n.error_code, n.error_message))
        .collect();
    assert_eq!(
        failed,
        [
            (
                "VodTranscode_77aa1",
                "Failed",
                Some("30s"),
                Some("InvalidParameter.ResolutionNotSupported"),
                Some("The source resolution 8192x4320 is not supported.")
            ),
            (
                "VideoTranslation_77aa3",
                "Failed",
                Some("1m 4s"),
                Some("Translation.NoSpeech"),
                Some("未检测到语音 (no speech detected)")
            ),
        ]
    );
    let ok_node = summary.nodes.iter().find(|n| n.name == "VodSnapshot_77aa2").unwrap();
    assert!(ok_node.ok && ok_node.error_code.is_none());
}

#[test]
fn broken_details_are_warnings_and_kept_as_they_arrived() {
    let (event, warnings) = only_event("workflow-broken-details.json");
    assert_eq!(
        paths(&warnings),
        BTreeSet::from([
            "FinishTime",
            "ActivityResults.VodTranscode_b0001.EndTime",
            "ActivityResults.VodTranscode_b0001.Result",
        ]),
        "{warnings:#?}"
    );
    let finish = warnings.iter().find(|w| w.path == "FinishTime").unwrap();
    assert!(finish.message.contains("yesterday at noon"), "{finish}");

    let w = workflow(&event);
    assert_eq!(w.finish_time.as_ref().map(|t| t.raw.as_str()), Some("yesterday at noon"));
    assert_eq!(w.finish_time.as_ref().and_then(|t| t.parsed), None);
    assert_eq!(w.duration_secs(), None);
    assert_eq!(w.activities[0].duration_secs(), None);
    let raw = "{\"ErrorCode\": \"InternalError\", \"ErrorMessage\": \"cut off";
    assert_eq!(at(&event, "/ActivityResults/VodTranscode_b0001/Result"), raw);
    assert_eq!(event.title(), Some("[Draft] broken details"), "not JSON, and no warning for it");

    // The notification still goes out, and says which node failed.
    let summary = event.summary();
    assert_eq!(summary.failed_nodes.len(), 1);
    assert_eq!(summary.failed_nodes[0].error_code, None);
    assert_eq!(summary.duration, None);
}

#[test]
fn embedded_text_that_only_looks_like_json_is_a_warning_at_its_path() {
    let event = json!({"EventType": "FileUploadComplete", "VideoId": "v", "Status": "success",
        "Extend": "{\"a\": [1, 2}", "Items": [{"Note": "[not json]"}, {"Note": "[1, 2]"}]});
    let delivery = decode_delivery(event.to_string().as_bytes()).unwrap();
    assert_eq!(paths(&delivery.warnings), BTreeSet::from(["Extend", "Items[0].Note"]));
    assert!(delivery.warnings[0].message.contains("not valid JSON"), "{}", delivery.warnings[0]);
    let event = &delivery.events[0];
    assert_eq!(at(event, "/Extend"), "{\"a\": [1, 2}");
    assert_eq!(at(event, "/Items/0/Note"), "[not json]");
    assert_eq!(at(event, "/Items/1/Note"), &json!([1, 2]));
}

#[test]
fn twelve_levels_of_json_in_strings_decode() {
    let mut inner = json!({"BizType": "ice-workflow"});
    for _ in 0..12 {
        inner = json!({ "n": inner.to_string() });
    }
    let body = json!({"EventType": "Custom", "Payload": inner.to_string()}).to_string();
    let delivery = decode_delivery(body.as_bytes()).unwrap();
    assert!(delivery.warnings.is_empty());
    let pointer = format!("/Payload{}/BizType", "/n".repeat(12));
    assert_eq!(at(&delivery.events[0], &pointer), "ice-workflow");
}

// --- the other VOD events ---------------------------------------------------------------------

#[test]
fn file_upload_complete() {
    let (event, warnings) = only_event("generic-file-upload-complete.json");
    assert!(warnings.is_empty(), "{warnings:?}");
    let g = generic(&event);
    assert_eq!(g.event_type, "FileUploadComplete");
    assert_eq!(event.status(), Some("success"));
    assert_eq!(event.video_id(), Some("a1b2c3d4e5f60718293a4b5c6d7e8f90"));
    assert_eq!(g.extend, Some(json!({"uploader": "小王", "batch": 7})), "Extend decoded");
    assert_eq!(at(&event, "/Size"), 18_311_222);
    assert_eq!(event.identity(), "FileUploadComplete:a1b2c3d4e5f60718293a4b5c6d7e8f90:2025-04-01T02:20:11Z");
    let summary = event.summary();
    assert!(summary.ok, "`success` is a success");
    assert_eq!(summary.event_time, Some("2025-04-01T02:20:11Z"));
    assert!(summary.nodes.is_empty() && summary.task_id.is_none());
}

#[test]
fn transcode_complete_keeps_every_stream() {
    let (event, warnings) = only_event("generic-transcode-complete.json");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(event.event_type(), "TranscodeComplete");
    assert_eq!(at(&event, "/StreamInfos/0/Definition"), "HD");
    assert_eq!(at(&event, "/StreamInfos/0/Duration"), 62.04);
    assert_eq!(at(&event, "/StreamInfos/1/ErrorCode"), "InvalidParameter.ResolutionNotSupported");
    assert_eq!(generic(&event).extend, Some(json!({"tenant": 42})));
    assert_eq!(event.activity_ids().count(), 0);
}

#[test]
fn snapshot_complete() {
    let (event, warnings) = only_event("generic-snapshot-complete.json");
    assert!(warnings.is_empty(), "{warnings:?}");
    assert_eq!(event.event_type(), "SnapshotComplete");
    assert_eq!(at(&event, "/SubType"), "SpecifiedTime");
    assert_eq!(at(&event, "/SnapshotInfos/0/Count"), 3);
    let regular = at(&event, "/SnapshotInfos/0/SnapshotRegular").as_str().unwrap();
    assert!(regular.ends_with("snapshot-{SnapshotCount}.jpg"), "a template, not JSON: {regular}");
    let time = generic(&event).event_time.as_ref().and_then(|t| t.parsed).map(|t| t.timestamp());
    assert_eq!(time, Some(1_743_474_588));
}

#[test]
fn ai_media_audit_complete() {
    let (event, warnings) = only_event("generic-ai-media-audit-complete.json");
    // VOD documents this event's time as `yyyy-MM-ddTHH:mm:ss:SSSZ` (a colon before the
    // milliseconds): accepted as it is documented, no warning.
    assert!(warnings.is_empty(), "{warnings:?}");
    let g = generic(&event);
    let time = g.event_time.as_ref().and_then(|t| t.parsed).map(|t| t.timestamp_millis());
    assert_eq!(time, Some(1_666_261_786_540));
    assert_eq!(event.identity(), "AIMediaAuditComplete:audit-job-88");
    assert_eq!(event.video_id(), Some("a1b2c3d4e5f60718293a4b5c6d7e8f90"), "from MediaId");
    assert_eq!(at(&event, "/Data/VideoResult/PornResult/TopList/0/Score"), "99.91", "Data decoded");
    assert_eq!(at(&event, "/Code"), "0");
}

// --- envelopes --------------------------------------------------------------------------------

/// The decoded trees of a fixture's events.
fn trees(name: &str) -> Vec<Value> {
    let delivery = decode(name);
    assert!(delivery.rejected.is_empty(), "{name}: {:?}", delivery.rejected);
    delivery.events.iter().map(|e| e.decoded().clone()).collect()
}

#[test]
fn every_envelope_yields_the_same_event_as_the_bare_body() {
    let cases: [(&str, &[&str]); 7] = [
        ("mns-base64.txt", &["workflow-succeed.json"]),
        ("fc-mns-queue-batch.json", &["workflow-failed.json", "generic-file-upload-complete.json"]),
        ("fc-mns-queue-single.json", &["generic-snapshot-complete.json"]),
        ("mns-topic-json.json", &["workflow-failed.json"]),
        ("mns-topic-json-base64.json", &["generic-transcode-complete.json"]),
        ("mns-topic-stream-raw.txt", &["generic-transcode-complete.json"]),
        ("mns-topic-stream-attrs.json", &["workflow-succeed.json"]),
    ];
    for (envelope, bare) in cases {
        let expected: Vec<Value> = bare.iter().flat_map(|b| trees(b)).collect();
        assert_eq!(trees(envelope), expected, "{envelope}");
    }
}

#[test]
fn cloud_events_batch_carries_two_events_of_different_types() {
    let delivery = decode("fc-mns-queue-batch.json");
    let types: Vec<_> = delivery.events.iter().map(Event::event_type).collect();
    assert_eq!(types, ["WorkflowTaskComplete", "FileUploadComplete"]);
    assert!(delivery.warnings.is_empty(), "{:?}", delivery.warnings);
}

#[test]
fn one_bad_event_in_a_batch_does_not_hold_back_the_others() {
    let good = String::from_utf8(fixture("workflow-failed.json")).unwrap();
    let bad = json!({"EventType": "WorkflowTaskComplete", "TaskId": "t", "Status": "Failed",
        "ActivityResults": json!({"N_1": {"EndTime": 5}}).to_string()})
    .to_string();
    let ce = |body: String| {
        json!({"id": "1", "source": "MNS-f", "specversion": "1.0",
        "type": "mns:Queue:SendMessage", "data": {"requestId": "r", "messageId": "m", "messageBody": body}})
    };
    let batch = json!([ce(good), ce(b64(&bad))]).to_string();
    let delivery = decode_delivery(batch.as_bytes()).unwrap();
    assert_eq!(delivery.events.len(), 1);
    assert_eq!(delivery.rejected.len(), 1);
    assert_eq!(delivery.rejected[0].path, "[1].data.messageBody.ActivityResults.N_1.EndTime");
    assert!(delivery.rejected[0].message.contains("expected a string, found a number"));

    // When no event is good, the first error is the delivery's.
    let batch = json!([ce(bad.clone()), ce(bad)]).to_string();
    assert_eq!(err(batch).path, "[0].data.messageBody.ActivityResults.N_1.EndTime");
}

#[test]
fn warnings_name_the_envelope_path_too() {
    let broken = String::from_utf8(fixture("workflow-broken-details.json")).unwrap();
    let topic = json!({"TopicOwner": "1", "TopicName": "t", "MessageId": "m", "Message": b64(broken)});
    let delivery = decode_delivery(topic.to_string().as_bytes()).unwrap();
    assert_eq!(
        paths(&delivery.warnings),
        BTreeSet::from([
            "Message.FinishTime",
            "Message.ActivityResults.VodTranscode_b0001.EndTime",
            "Message.ActivityResults.VodTranscode_b0001.Result",
        ])
    );
}

// --- fixtures, all of them --------------------------------------------------------------------

#[test]
fn every_fixture_decodes_fully() {
    let mut names: Vec<_> = std::fs::read_dir(fixtures_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        // Not deliveries: Lambda request payloads and the FC timer tick; `*-bad-*`: wrong on purpose.
        .filter(|name| {
            !name.starts_with("lambda-") && !name.contains("-bad-") && name != "runtime-fc-timer.json"
        })
        .collect();
    names.sort();
    assert!(names.len() >= 15, "{names:?}");
    for name in &names {
        let delivery = decode(name);
        assert!(delivery.rejected.is_empty(), "{name}: {:?}", delivery.rejected);
        if name != "workflow-broken-details.json" {
            assert!(delivery.warnings.is_empty(), "{name}: {:?}", delivery.warnings);
        }
        for event in &delivery.events {
            let mut missed = Vec::new();
            undecoded_strings(event.decoded(), "", &mut missed);
            assert!(missed.is_empty(), "{name}: JSON left in strings at {missed:?}");
            serde_json::to_value(event.summary()).unwrap();
        }
    }
}

// --- what bad input gets ----------------------------------------------------------------------

#[test]
fn bad_input_gets_an_error_naming_the_path() {
    let doc = fixture("workflow-doc-example.json");
    let doc = std::str::from_utf8(&doc).unwrap();
    let nested_type = json!([{"specversion": "1.0", "data": {"messageBody": r#"{"EventType": [1]}"#}}]);
    let wrong_time = doc.replacen(r#"\"EndTime\":\"2025-04-01T02:29:50Z\""#, r#"\"EndTime\":1743474590"#, 1);
    assert_ne!(wrong_time, doc);
    let no_task = json!({"EventType": "WorkflowTaskComplete", "Status": "Succeed"});
    let cases: Vec<(&str, String, &str, &str)> = vec![
        ("empty", String::new(), "", "empty"),
        ("blank", " \n\t ".into(), "", "empty"),
        ("not JSON", "hello, world".into(), "", "expected a VOD event as JSON"),
        ("truncated", doc[..doc.len() / 2].to_owned(), "", "truncated"),
        ("a number", "42".into(), "", "found a number"),
        ("null", "null".into(), "", "found null"),
        ("an object without EventType", r#"{"TaskId":"x"}"#.into(), "", "EventType"),
        ("EventType not a string", r#"{"EventType": 5}"#.into(), "EventType", "expected a string"),
        ("EventType deep in a batch", nested_type.to_string(), "[0].data.messageBody.EventType", "string"),
        ("empty array", "[]".into(), "", "empty array"),
        ("missing TaskId", no_task.to_string(), "TaskId", "required field is missing"),
        ("a node time of the wrong type", wrong_time, "ActivityResults.VodSnapshot_53e77.EndTime", "string"),
        ("base64 of a truncated event", b64(&doc[..400]), "", "truncated"),
        (
            "a CloudEvent without data",
            json!({"specversion": "1.0", "type": "mns:Queue:SendMessage"}).to_string(),
            "data",
            "missing",
        ),
    ];
    for (what, body, path, message) in cases {
        let e = err(&body);
        assert_eq!(e.path, path, "{what}: {e}");
        assert!(e.message.contains(message), "{what}: {e:?} should say {message:?}");
        assert!(!e.to_string().is_empty());
    }
}

#[test]
fn invalid_utf8_is_an_error_saying_where() {
    let mut body = fixture("workflow-doc-example.json");
    body[10] = 0xff;
    let e = err(&body);
    assert_eq!(e.path, "");
    assert!(e.message.contains("UTF-8") && e.message.contains("byte 10"), "{e}");
}

#[test]
fn nesting_is_bounded_with_the_path_where_it_stopped() {
    // 70 levels inside one embedded string: the decoder stops at MAX_DEPTH, naming the path.
    let mut deep = json!(1);
    for _ in 0..70 {
        deep = json!({ "a": deep });
    }
    let body = json!({"EventType": "Custom", "Data": deep.to_string()}).to_string();
    let e = err(&body);
    // The root is level 1, `Data` level 2, so the first `a` too deep is the 63rd.
    assert_eq!(e.path, format!("Data{}", ".a".repeat(MAX_DEPTH - 1)));
    assert!(e.message.contains(&format!("deeper than {MAX_DEPTH}")), "{e}");

    // Far deeper raw JSON, plain and base64: an error, not a stack overflow.
    let raw = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    for body in [raw.clone(), b64(&raw), format!("{{\"EventType\":\"X\",\"D\":{raw}}}")] {
        let e = err(&body);
        assert!(e.message.contains("recursion limit"), "{e}");
    }
}

#[test]
fn envelopes_nest_only_so_deep() {
    let mut body = String::from_utf8(fixture("workflow-doc-example.json")).unwrap();
    for _ in 0..10 {
        body = json!({"body": b64(&body)}).to_string();
    }
    let e = err(&body);
    assert!(e.path.starts_with("body.body.body"), "{e}");
    assert!(e.message.contains("envelopes"), "{e}");
}

/// Every prefix of every fixture, and every fixture with bytes overwritten: decoding returns
/// (an error or events), it never panics.
#[test]
fn truncated_and_corrupted_fixtures_never_panic() {
    for entry in std::fs::read_dir(fixtures_dir()).unwrap() {
        let body = std::fs::read(entry.unwrap().path()).unwrap();
        for end in 0..body.len() {
            if let Err(e) = decode_delivery(&body[..end]) {
                assert!(!e.message.is_empty());
            }
        }
        let mut copy = body.clone();
        for i in (0..body.len()).step_by(7) {
            for b in [b'"', b'\\', b'{', b']', b'0', 0xff] {
                copy[i] = b;
                let _ = decode_delivery(&copy);
            }
            copy[i] = body[i];
        }
    }
}

// --- properties -------------------------------------------------------------------------------

/// Text that does not itself look like a JSON document: arbitrary Unicode, and soups of JSON
/// punctuation that stop short of an object or array.
fn plain_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[ \\[\\]{}\":,a-z0-9\\\\]{0,12}",
        Just("[Draft] cats".to_owned()),
        Just("{not json".to_owned()),
        Just("春季发布会 🎬".to_owned()),
    ]
    .prop_filter("looks like JSON", |s| !looks_like_json(s))
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof!["[A-Za-z][A-Za-z0-9_]{0,8}", any::<String>()]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        // Eighths print and parse back exactly.
        (-1_000_000i32..1_000_000).prop_map(|n| Value::from(f64::from(n) / 8.0)),
        plain_text().prop_map(Value::String),
    ]
}

fn tree() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 40, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(key(), inner, 0..5)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Extra fields for an object whose typed fields are `typed`: anything, under other names.
fn extras(typed: &'static [&'static str]) -> impl Strategy<Value = Vec<(String, Value)>> {
    prop::collection::vec(
        (key().prop_filter("a typed field", move |k| !typed.contains(&k.as_str())), tree()),
        0..4,
    )
}

fn time() -> impl Strategy<Value = String> {
    prop_oneof![
        (0i64..4_000_000_000).prop_map(|t| {
            chrono::DateTime::from_timestamp(t, 0).unwrap().format("%Y-%m-%dT%H:%M:%SZ").to_string()
        }),
        plain_text(),
    ]
}

fn object(fields: Vec<(String, Value)>) -> Value {
    Value::Object(fields.into_iter().collect())
}

fn generic_event() -> impl Strategy<Value = Value> {
    const TYPED: &[&str] = &["EventType", "EventTime", "VideoId", "Status", "MediaId"];
    let event_type = prop_oneof![
        Just("FileUploadComplete"),
        Just("TranscodeComplete"),
        Just("SnapshotComplete"),
        Just("AIMediaAuditComplete"),
        Just("SomethingNew")
    ];
    (event_type, time(), plain_text(), plain_text(), extras(TYPED)).prop_map(
        |(event_type, time, video, status, mut fields)| {
            fields.extend([
                ("EventType".to_owned(), json!(event_type)),
                ("EventTime".to_owned(), json!(time)),
                ("VideoId".to_owned(), json!(video)),
                ("Status".to_owned(), json!(status)),
            ]);
            object(fields)
        },
    )
}

fn node() -> impl Strategy<Value = Value> {
    const TYPED: &[&str] = &["ActivityId", "ActivityInstanceId", "Status", "StartTime", "EndTime", "Result"];
    let status = prop_oneof![Just("Succeed"), Just("Failed"), Just("success")];
    (plain_text(), status, time(), time(), tree(), extras(TYPED)).prop_map(
        |(id, status, start, end, result, mut fields)| {
            fields.extend([
                ("ActivityId".to_owned(), json!(id)),
                ("Status".to_owned(), json!(status)),
                ("StartTime".to_owned(), json!(start)),
                ("EndTime".to_owned(), json!(end)),
                ("Result".to_owned(), result),
            ]);
            object(fields)
        },
    )
}

fn workflow_event() -> impl Strategy<Value = Value> {
    const TYPED: &[&str] = &[
        "EventType",
        "EventTime",
        "TaskId",
        "Status",
        "WorkflowId",
        "VideoId",
        "UserId",
        "CreateTime",
        "ModifiedTime",
        "FinishTime",
        "ActivityResults",
        "TaskInput",
    ];
    const INPUT: &[&str] = &["Type", "Media", "Title", "StorageLocation"];
    let user_id = prop_oneof![any::<u64>().prop_map(Value::from), plain_text().prop_map(Value::from)];
    let nodes = prop::collection::btree_map(key(), node(), 0..4);
    let input = (plain_text(), extras(INPUT)).prop_map(|(title, mut fields)| {
        fields.extend([("Type".to_owned(), json!("Media")), ("Title".to_owned(), json!(title))]);
        object(fields)
    });
    let status = prop_oneof![Just("Succeed"), Just("Failed"), Just("Canceled")];
    (plain_text(), status, user_id, time(), time(), nodes, input, extras(TYPED)).prop_map(
        |(task, status, user, create, finish, nodes, input, mut fields)| {
            fields.extend([
                ("EventType".to_owned(), json!("WorkflowTaskComplete")),
                ("TaskId".to_owned(), json!(task)),
                ("Status".to_owned(), json!(status)),
                ("UserId".to_owned(), user),
                ("CreateTime".to_owned(), json!(create)),
                ("FinishTime".to_owned(), json!(finish)),
                ("ActivityResults".to_owned(), Value::Object(nodes.into_iter().collect())),
                ("TaskInput".to_owned(), input),
            ]);
            object(fields)
        },
    )
}

/// `value` with some of its objects and arrays (never the root) replaced by their JSON text,
/// innermost first, so strings end up holding strings that hold JSON.
fn stringify(value: &Value, choices: &[bool], next: &mut usize, root: bool) -> Value {
    let mut out = match value {
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| stringify(v, choices, next, false)).collect())
        }
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), stringify(v, choices, next, false))).collect())
        }
        leaf => return leaf.clone(),
    };
    let pick = choices[*next % choices.len()];
    *next += 1;
    if pick && !root {
        out = Value::String(out.to_string());
    }
    out
}

/// Every way the event text arrives, and how many events each carries.
fn envelopes(event: &str) -> Vec<(&'static str, String, usize)> {
    let ce = |body: String| {
        json!({"id": "1", "source": "MNS-f", "specversion": "1.0", "type": "mns:Queue:SendMessage",
               "subject": "acs:mns:cn-shanghai:1:queues/q", "time": "2025-04-01T02:33:12Z",
               "aliyunaccountid": "1", "data": {"requestId": "r", "messageId": "m", "messageBody": body}})
    };
    let topic = |message: String| {
        json!({"TopicOwner": "1", "Message": message, "Subscriber": "1", "PublishTime": 1,
               "SubscriptionName": "s", "MessageMD5": "x", "TopicName": "t", "MessageId": "m"})
    };
    let text = event.to_owned();
    vec![
        ("raw", text.clone(), 1),
        ("base64", b64(&text), 1),
        ("CloudEvents array", json!([ce(text.clone()), ce(b64(&text))]).to_string(), 2),
        ("single CloudEvent", ce(b64(&text)).to_string(), 1),
        ("topic JSON", topic(text.clone()).to_string(), 1),
        ("topic JSON, base64", topic(b64(&text)).to_string(), 1),
        ("STREAM with attrs", json!({"body": text.clone(), "attrs": {"Extend": "{}"}}).to_string(), 1),
        ("CloudEvent of base64 topic JSON", ce(b64(topic(b64(&text)).to_string())).to_string(), 1),
    ]
}

fn round_trips(tree: &Value, choices: &[bool]) -> Result<(), TestCaseError> {
    let encoded = stringify(tree, choices, &mut 0, true);
    for (shape, body, count) in envelopes(&encoded.to_string()) {
        let delivery =
            decode_delivery(body.as_bytes()).map_err(|e| TestCaseError::fail(format!("{shape}: {e}")))?;
        prop_assert!(delivery.rejected.is_empty(), "{}: {:?}", shape, delivery.rejected);
        prop_assert_eq!(delivery.events.len(), count, "{}", shape);
        for event in &delivery.events {
            prop_assert_eq!(event.decoded(), tree, "{}", shape);
            let _ = serde_json::to_value(event.summary()).unwrap();
            let _ = event.identity();
        }
    }
    Ok(())
}

fn choices() -> impl Strategy<Value = Vec<bool>> {
    prop_oneof![prop::collection::vec(any::<bool>(), 1..16), Just(vec![true])]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn generic_events_round_trip_through_every_envelope(event in generic_event(), choices in choices()) {
        round_trips(&event, &choices)?;
    }

    #[test]
    fn workflow_events_round_trip_through_every_envelope(event in workflow_event(), choices in choices()) {
        round_trips(&event, &choices)?;
        let delivery = decode_delivery(stringify(&event, &choices, &mut 0, true).to_string().as_bytes()).unwrap();
        let w = workflow(&delivery.events[0]);
        prop_assert_eq!(w.activities.len(), event["ActivityResults"].as_object().unwrap().len());
        prop_assert_eq!(w.task_input.title.as_deref(), event["TaskInput"]["Title"].as_str());
    }

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Err(e) = decode_delivery(&body) {
            prop_assert!(!e.message.is_empty());
        }
    }

    #[test]
    fn json_shaped_noise_never_panics(body in "[\\[\\]{}\":,\\\\ A-Za-z0-9=+/]{0,200}") {
        let _ = decode_delivery(body.as_bytes());
        let _ = decode_delivery(b64(&body).as_bytes());
    }
}

/// IMS wraps its events (`{"EventType", "UserId", "EventTime", "MessageBody"}`): decoding sees
/// the inner event, with the wrapper's fields kept where the body has none, and marks it IMS's.
#[test]
fn ims_wrapped_events_decode_to_their_inner_event() {
    let body =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ims-workflow-wrapped.json"))
            .unwrap();
    let delivery = decode_delivery(&body).unwrap();
    let Event::Workflow(w) = &delivery.events[0] else { panic!("not a workflow event") };
    assert_eq!(w.task_id, "ims-task-5b2c9e1f");
    assert_eq!(w.user_id.as_deref(), Some("1234567890123456"), "the wrapper's UserId kept");
    assert_eq!(w.decoded()["EventTime"], "2025-05-12T08:01:45Z");
    assert_eq!(w.activities[0].error.as_ref().and_then(|e| e.code.as_deref()), Some("InvalidParameter"));
    assert_eq!(delivery.events[0].source(), vodhook::event::Source::Ims);
    // A VOD event stays VOD's.
    let vod = decode_delivery(vodhook::samples::FAILED.as_bytes()).unwrap();
    assert_eq!(vod.events[0].source(), vodhook::event::Source::Vod);
    // A bad inner event names its path inside MessageBody.
    let bad = r#"{"EventType":"WorkflowTaskComplete","UserId":1,"MessageBody":{"Status":"Failed"}}"#;
    assert_eq!(decode_delivery(bad.as_bytes()).unwrap_err().path, "MessageBody.TaskId");
}
