//! The short path for what nearly every delivery is: one bare `WorkflowTaskComplete`, the body
//! of a VOD HTTP callback. One pass over the text ([`walk`]) checks it by the embedded decoder's
//! rules and keeps what the typed view reads ([`sink`]); the decoded tree is left for later
//! ([`Tree::later`]): most deliveries never read it.
//!
//! It answers only when the full path ([`super::decode`]) would give the very same event and no
//! warning: the text decodes cleanly, every field the view reads has the type the full path
//! wants (a string holding JSON is no string there: it was decoded), no key comes twice, and the
//! limits hold. Otherwise `None`, and the full path decodes the delivery and says what is wrong.
//! Tests here and the `decode` fuzz target hold the two paths to the same result.

mod sink;
mod walk;

use serde_json::Value;

use super::embedded::decode_embedded;
use super::tree::Tree;
use super::workflow::{self, Activity, ActivityError, TaskInput, TaskStatus, WorkflowTaskComplete};
use super::{Limits, Source, VodTime, WORKFLOW_TASK_COMPLETE};
use sink::{Bail, ERROR_FIELDS, Node, Role, Shape, Sink, Slot};

/// The event in `body` when it is a bare `WorkflowTaskComplete` that the full path would decode
/// to exactly this, with no warning; `None` otherwise.
pub(super) fn workflow(body: &[u8], limits: &Limits) -> Option<WorkflowTaskComplete> {
    let text = std::str::from_utf8(body).ok()?;
    if limits.max_events == 0 {
        return None;
    }
    let mut sink = Sink::new(limits.max_nodes);
    walk::walk(text, Role::Event, 1, &mut sink).ok()?;
    typed(sink, text).ok()
}

/// The typed view of what the walk kept, or `Bail` where the full path would read it otherwise.
fn typed(mut sink: Sink, text: &str) -> Result<WorkflowTaskComplete, Bail> {
    let task_input = task_input(&mut sink)?;
    let [
        event_type,
        task_id,
        status,
        workflow_id,
        video_id,
        user_id,
        event_time,
        create_time,
        modified_time,
        finish_time,
    ] = sink.fields;
    if string(event_type)?.as_deref() != Some(WORKFLOW_TASK_COMPLETE) {
        return Err(Bail);
    }
    Ok(WorkflowTaskComplete {
        task_id: string(task_id)?.ok_or(Bail)?,
        status: TaskStatus::parse(&string(status)?.ok_or(Bail)?),
        workflow_id: string(workflow_id)?,
        video_id: string(video_id)?,
        user_id: id(user_id)?,
        event_time: time(event_time)?,
        create_time: time(create_time)?,
        modified_time: time(modified_time)?,
        finish_time: time(finish_time)?,
        activities: activities(sink.nodes_shape, sink.nodes)?,
        task_input,
        tree: Tree::later(text),
        source: Source::Vod,
    })
}

/// A string field (`Fields::opt_str`).
fn string(slot: Slot) -> Result<Option<String>, Bail> {
    match slot {
        Slot::Absent | Slot::Null => Ok(None),
        Slot::Text(text) => Ok(Some(text)),
        Slot::Number(_) | Slot::Other => Err(Bail),
    }
}

/// A string or a number (`Fields::opt_id`).
fn id(slot: Slot) -> Result<Option<String>, Bail> {
    match slot {
        Slot::Number(n) => Ok(Some(n.to_string())),
        slot => string(slot),
    }
}

/// A time that parses (one that does not is a warning on the full path).
fn time(slot: Slot) -> Result<Option<VodTime>, Bail> {
    let Some(text) = string(slot)? else { return Ok(None) };
    let time = VodTime::parse(&text);
    time.parsed.map(|_| Some(time)).ok_or(Bail)
}

fn activities(shape: Shape, nodes: Vec<Node>) -> Result<Vec<Activity>, Bail> {
    match shape {
        Shape::Map => {}
        Shape::Absent | Shape::Null | Shape::Text { blank: true } => return Ok(Vec::new()),
        Shape::Text { blank: false } | Shape::Other => return Err(Bail),
    }
    let mut out = nodes.into_iter().map(activity).collect::<Result<Vec<_>, _>>()?;
    workflow::sort_by_start(&mut out);
    Ok(out)
}

fn activity(node: Node) -> Result<Activity, Bail> {
    if node.shape != Shape::Map {
        return Err(Bail);
    }
    let [activity_id, instance_id, status, start_time, end_time] = node.fields;
    let activity_id = match string(activity_id)? {
        Some(id) => id,
        None => workflow::activity_id_of(&node.name).to_owned(),
    };
    let [top, body] = node.errors;
    let error = match (node.result, node.body) {
        (Shape::Map, Shape::Map) => error(top).or_else(|| error(body)),
        (Shape::Map, _) => error(top),
        _ => None,
    };
    Ok(Activity {
        activity_id,
        activity_instance_id: string(instance_id)?,
        status: TaskStatus::parse(string(status)?.as_deref().unwrap_or("Unknown")),
        start_time: time(start_time)?,
        end_time: time(end_time)?,
        error,
        name: node.name,
    })
}

/// The error the fields of one level name (`error_of`): the first code and the first message
/// that is a non-empty string or a number.
fn error(fields: [Slot; ERROR_FIELDS.len()]) -> Option<ActivityError> {
    let scalar = |slot: Slot| match slot {
        Slot::Text(text) if !text.is_empty() => Some(text),
        Slot::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let [error_code, err_code, code, error_message, error_msg, err_msg, message] = fields;
    let code = [error_code, err_code, code].into_iter().find_map(scalar);
    let message = [error_message, error_msg, err_msg, message].into_iter().find_map(scalar);
    (code.is_some() || message.is_some()).then_some(ActivityError { code, message })
}

/// `TaskInput`: its named fields as the walk kept them; when it has others, which the view keeps
/// as decoded values, decoded from its text and read as the full path reads it.
fn task_input(sink: &mut Sink) -> Result<TaskInput, Bail> {
    match sink.task_input {
        Shape::Map if sink.task_input_extra => {
            let text = sink.task_input_text.as_deref().ok_or(Bail)?;
            let mut input = serde_json::from_str::<Value>(text).map_err(|_| Bail)?;
            decode_embedded(&mut input, "TaskInput", &mut Vec::new()).map_err(|_| Bail)?;
            workflow::task_input(Some(&input)).map_err(|_| Bail)
        }
        Shape::Map => {
            let [r#type, media, title, storage_location] = std::mem::take(&mut sink.task_input_fields);
            Ok(TaskInput {
                r#type: string(r#type)?,
                media: string(media)?,
                title: string(title)?,
                storage_location: string(storage_location)?,
                extra: serde_json::Map::new(),
            })
        }
        Shape::Absent | Shape::Null | Shape::Text { blank: true } => Ok(TaskInput::default()),
        Shape::Text { blank: false } | Shape::Other => Err(Bail),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::{Map, Value, json};

    use super::*;
    use crate::event::Event;
    use crate::event::decode::decode_delivery_in_full as decode_in_full;

    /// Holds the short path to the full one on `body`: when it answers, the full path gives the
    /// same event (its tree built and compared too) and no warning. True when it answered.
    fn agrees(body: &[u8], limits: &Limits) -> bool {
        let full = decode_in_full(body, limits);
        let Some(fast) = workflow(body, limits) else { return false };
        let text = String::from_utf8_lossy(body);
        let full = full.unwrap_or_else(|e| panic!("the short path answered, the full path says {e}: {text}"));
        assert!(full.warnings.is_empty(), "{:?}: {text}", full.warnings);
        assert!(full.rejected.is_empty() && full.events.len() == 1, "{text}");
        let fast = Event::Workflow(Box::new(fast));
        assert_eq!(format!("{fast:?}"), format!("{:?}", full.events[0]), "{text}");
        true
    }

    fn fixtures() -> Vec<(String, Vec<u8>)> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let dirs = [root.join("tests/fixtures"), root.join("src/samples")];
        let mut out = Vec::new();
        for dir in dirs {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                out.push((path.display().to_string(), std::fs::read(&path).unwrap()));
            }
        }
        out.sort();
        out
    }

    #[test]
    fn agrees_with_the_full_path_on_every_fixture() {
        let mut answered = Vec::new();
        for (name, body) in fixtures() {
            if agrees(&body, &Limits::default()) {
                answered.push(name.rsplit('/').next().unwrap_or_default().to_owned());
            }
        }
        answered.sort();
        // The bare, clean workflow events take the short path; envelopes, other event types,
        // events with warnings (workflow-broken-details.json) and errors (a node's Status that
        // is not a string, e2e-bad-node-status.json) do not.
        let expected = [
            "e2e-failed.json",
            "e2e-succeed.json",
            "failed.json",
            "runtime-bare-event.json",
            "succeed.json",
            "workflow-doc-example.json",
            "workflow-failed.json",
            "workflow-succeed.json",
        ];
        assert_eq!(answered, expected);
    }

    fn event(extra: Value) -> Vec<u8> {
        let mut event = json!({"EventType": "WorkflowTaskComplete", "TaskId": "t1", "Status": "Failed"});
        let (Value::Object(event_map), Value::Object(extra)) = (&mut event, extra) else { unreachable!() };
        event_map.extend(extra);
        event.to_string().into_bytes()
    }

    /// Each of these is a way the full path decodes differently from a naive typed read, or
    /// says something the short path leaves to it.
    #[test]
    fn leaves_every_doubtful_case_to_the_full_path() {
        let node = |fields: Value| json!({"ActivityResults": json!({"N_1": fields}).to_string()});
        let bail = [
            json!({"Status": "{\"a\": 1}"}),
            json!({"VideoId": 5}),
            json!({"UserId": {"a": 1}}),
            json!({"EventTime": "yesterday"}),
            json!({"ActivityResults": "[1]"}),
            json!({"ActivityResults": "plain"}),
            json!({"ActivityResults": {"N_1": ["Succeed"]}}),
            json!({"TaskInput": "{\"Title\": \"{\\\"a\\\": 1}\"}"}),
            // Fields the view does not name, in an object (not a string, as VOD sends it).
            json!({"TaskInput": {"Title": "cats", "Priority": 6}}),
            json!({"TaskInput": 3}),
            node(json!({"Status": "Failed", "Result": "not json"})),
            node(json!({"EndTime": "2025-06-01 10:00:20"})),
            json!({"Extra": "{broken}"}),
        ];
        for extra in bail {
            let body = event(extra.clone());
            assert!(!agrees(&body, &Limits::default()), "answered {extra}");
        }
        let array = br#"[{"EventType": "WorkflowTaskComplete", "TaskId": "t1", "Status": "Failed"}]"#;
        let keys_twice =
            br#"{"EventType": "WorkflowTaskComplete", "TaskId": "t1", "TaskId": "t2", "Status": "Failed"}"#;
        for body in
            [&array[..], &keys_twice[..], b"", b"  ", b"[\"WorkflowTaskComplete\", \"t1\", \"Failed\"]"]
        {
            assert!(!agrees(body, &Limits::default()), "{}", String::from_utf8_lossy(body));
        }
        let three = event(json!({"ActivityResults": {"A_1": {}, "B_1": {}, "C_1": {}}}));
        assert!(!agrees(&three, &Limits { max_nodes: 2, ..Limits::default() }));
        assert!(agrees(&three, &Limits { max_nodes: 3, ..Limits::default() }));
    }

    /// And these it answers, the same as the full path.
    #[test]
    fn answers_the_shapes_vod_sends() {
        let result = |r: Value| json!({"ActivityResults": {"N_1": {"Status": "Failed", "Result": r}}});
        let answer = [
            json!({}),
            json!({"UserId": 1234567890123456_u64, "VideoId": null, "ActivityResults": ""}),
            json!({"UserId": "12", "TaskInput": json!({"Title": "[Draft] cats", "UserData": "{\"a\": [1]}"}).to_string()}),
            json!({"ActivityResults": {"N_1": "{\"Status\": \"Succeed\"}"}}),
            json!({"TaskInput": {"Title": "cats", "Type": null}}),
            json!({"TaskInput": json!({"Title": "cats", "Priority": 6, "X": "{\"a\": 1}"}).to_string()}),
            result(json!("{\"MessageBody\": \"{\\\"Code\\\": 4001, \\\"Message\\\": \\\"no audio\\\"}\"}")),
            result(json!({"ErrorCode": "", "ErrCode": "{\"x\": 1}", "Code": 7.5, "Message": ["a"]})),
            result(json!({"MessageBody": [1], "ErrorMsg": "bad"})),
            result(json!("")),
            result(json!(12)),
            json!({"ActivityResults": {"B_2": {"StartTime": "2025-04-01T02:29:46Z"}, "A_1": {}, "C_3": {"StartTime": "2025-04-01T02:29:40Z"}}}),
        ];
        for extra in answer {
            assert!(agrees(&event(extra.clone()), &Limits::default()), "left {extra} to the full path");
        }
    }

    /// A value of any of the kinds the fields above are tried with.
    fn any_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            Just(json!(42)),
            Just(json!("")),
            Just(json!("plain")),
            Just(json!("2025-04-01T02:29:46Z")),
            Just(json!("{\"Code\": \"E1\"}")),
            Just(json!("[1, 2]")),
            Just(json!("{not json}")),
        ];
        leaf.prop_recursive(3, 12, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                prop::collection::btree_map(field_name(), inner.clone(), 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
                prop::collection::btree_map(field_name(), inner, 0..4)
                    .prop_map(|m| Value::String(Value::Object(m.into_iter().collect()).to_string())),
            ]
        })
    }

    /// The names the typed view reads, and one it does not.
    fn field_name() -> impl Strategy<Value = String> {
        prop::sample::select(vec![
            "TaskId",
            "Status",
            "VideoId",
            "UserId",
            "EventTime",
            "ActivityResults",
            "TaskInput",
            "Result",
            "MessageBody",
            "ErrorCode",
            "Message",
            "Code",
            "ActivityId",
            "StartTime",
            "Title",
            "Type",
            "Priority",
            "N_1",
            "Other",
        ])
        .prop_map(str::to_owned)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        /// Random fields of random kinds on an event, and nodes of random fields: whenever the
        /// short path answers, it agrees.
        #[test]
        fn agrees_on_random_events(
            fields in prop::collection::btree_map(field_name(), any_value(), 0..6),
            nodes in prop::collection::btree_map(field_name(), prop::collection::btree_map(field_name(), any_value(), 0..5), 0..3),
            nodes_as_text in any::<bool>(),
        ) {
            let nodes: Map<String, Value> =
                nodes.into_iter().map(|(k, v)| (k, Value::Object(v.into_iter().collect()))).collect();
            let nodes = if nodes_as_text { Value::String(Value::Object(nodes).to_string()) } else { Value::Object(nodes) };
            let mut extra: Map<String, Value> = fields.into_iter().collect();
            extra.entry("ActivityResults").or_insert(nodes);
            agrees(&event(Value::Object(extra)), &Limits::default());
        }
    }
}
