//! `WorkflowTaskComplete`: sent when a VOD workflow task ends, successfully or not.

use serde::Serialize;
use serde_json::{Map, Value};

use super::fields::{Fields, kind_of};
use super::tree::Tree;
use super::{DecodeError, VodTime, Warning};

/// A task's or node's `Status`. VOD sends `Succeed`/`Failed` (compared case-insensitively);
/// anything else is kept as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskStatus {
    Succeed,
    Failed,
    Other(String),
}

impl TaskStatus {
    pub fn parse(raw: &str) -> Self {
        if raw.eq_ignore_ascii_case("succeed") || raw.eq_ignore_ascii_case("success") {
            TaskStatus::Succeed
        } else if raw.eq_ignore_ascii_case("failed") || raw.eq_ignore_ascii_case("fail") {
            TaskStatus::Failed
        } else {
            TaskStatus::Other(raw.to_owned())
        }
    }

    pub fn as_str(&self) -> &str {
        match self {
            TaskStatus::Succeed => "Succeed",
            TaskStatus::Failed => "Failed",
            TaskStatus::Other(raw) => raw,
        }
    }

    pub fn is_succeeded(&self) -> bool {
        matches!(self, TaskStatus::Succeed)
    }

    /// A node counts as failed unless it succeeded: `Other` statuses are worth a look.
    pub fn is_failed(&self) -> bool {
        !self.is_succeeded()
    }
}

impl Serialize for TaskStatus {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The typed view of a WorkflowTaskComplete event. Fields VOD documents as required but that
/// routing does not need are `Option`: their absence is tolerated, never invented.
#[derive(Debug, Clone)]
pub struct WorkflowTaskComplete {
    pub task_id: String,
    pub status: TaskStatus,
    pub workflow_id: Option<String>,
    pub video_id: Option<String>,
    pub user_id: Option<String>,
    pub event_time: Option<VodTime>,
    pub create_time: Option<VodTime>,
    pub modified_time: Option<VodTime>,
    pub finish_time: Option<VodTime>,
    /// The nodes of `ActivityResults`, in the order they started.
    pub activities: Vec<Activity>,
    pub task_input: TaskInput,
    /// The whole event with its embedded JSON decoded; nothing dropped ([`Self::decoded`]).
    pub(crate) tree: Tree,
    pub source: super::Source,
}

/// One node of the workflow (`ActivityResults.<node instance name>`).
#[derive(Debug, Clone, Serialize)]
pub struct Activity {
    /// The node instance name, e.g. `VodSnapshot_53e77`.
    pub name: String,
    /// The node type, e.g. `VodSnapshot`; derived from the name when VOD leaves it out.
    pub activity_id: String,
    pub activity_instance_id: Option<String>,
    pub status: TaskStatus,
    pub start_time: Option<VodTime>,
    pub end_time: Option<VodTime>,
    /// The error code and message found in `Result`, when it has them.
    pub error: Option<ActivityError>,
}

impl Activity {
    /// How long the node ran, in seconds.
    pub fn duration_secs(&self) -> Option<i64> {
        self.start_time.as_ref()?.seconds_until(self.end_time.as_ref()?)
    }
}

/// What went wrong in a node, as its `Result` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActivityError {
    pub code: Option<String>,
    pub message: Option<String>,
}

/// `TaskInput`: what the task ran on. Unknown fields are kept in `extra`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TaskInput {
    #[serde(rename = "Type")]
    pub r#type: Option<String>,
    #[serde(rename = "Media")]
    pub media: Option<String>,
    #[serde(rename = "Title")]
    pub title: Option<String>,
    #[serde(rename = "StorageLocation")]
    pub storage_location: Option<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl WorkflowTaskComplete {
    /// Builds the typed view from an event whose embedded JSON is already decoded.
    pub(crate) fn from_decoded(decoded: Value, warnings: &mut Vec<Warning>) -> Result<Self, DecodeError> {
        let Value::Object(map) = &decoded else {
            return Err(DecodeError::new("", format!("expected an object, found {}", kind_of(&decoded))));
        };
        let f = Fields::new(map, "");
        let event = Self {
            task_id: f.req_str("TaskId")?.to_owned(),
            status: TaskStatus::parse(f.req_str("Status")?),
            workflow_id: f.opt_str("WorkflowId")?.map(str::to_owned),
            video_id: f.opt_str("VideoId")?.map(str::to_owned),
            user_id: f.opt_id("UserId")?,
            event_time: f.opt_time("EventTime", warnings)?,
            create_time: f.opt_time("CreateTime", warnings)?,
            modified_time: f.opt_time("ModifiedTime", warnings)?,
            finish_time: f.opt_time("FinishTime", warnings)?,
            activities: activities(map.get("ActivityResults"), warnings)?,
            task_input: task_input(map.get("TaskInput"))?,
            tree: Tree::built(Value::Null),
            source: super::Source::Vod,
        };
        Ok(Self { tree: Tree::built(decoded), ..event })
    }

    /// The whole event with its embedded JSON decoded, VOD's field names kept (built on first
    /// use when the event was decoded on the short path: [`super::tree`]).
    pub fn decoded(&self) -> &Value {
        self.tree.get()
    }

    /// From `CreateTime` to `FinishTime`, in seconds.
    pub fn duration_secs(&self) -> Option<i64> {
        self.create_time.as_ref()?.seconds_until(self.finish_time.as_ref()?)
    }

    /// A node's `Result`, decoded (an object in VOD's table, a string holding one in its
    /// example). Read from the decoded tree rather than copied into [`Activity`]: a deep copy per
    /// node was a sixth of the decoding cost of a 50-node task.
    pub fn result_of(&self, activity: &Activity) -> Option<&Value> {
        self.decoded().get("ActivityResults")?.get(&activity.name)?.get("Result").filter(|r| !r.is_null())
    }

    pub fn failed_activities(&self) -> impl Iterator<Item = &Activity> {
        self.activities.iter().filter(|a| a.status.is_failed())
    }
}

fn activities(value: Option<&Value>, warnings: &mut Vec<Warning>) -> Result<Vec<Activity>, DecodeError> {
    let nodes = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(nodes)) => nodes,
        // A string here did not hold valid JSON: the embedded decoder already warned.
        Some(Value::String(_)) => return Ok(Vec::new()),
        Some(other) => {
            return Err(DecodeError::new(
                "ActivityResults",
                format!(
                    "expected an object keyed by node name (or a string holding one), found {}",
                    kind_of(other)
                ),
            ));
        }
    };
    let mut out = Vec::with_capacity(nodes.len());
    for (name, node) in nodes {
        let path = format!("ActivityResults.{name}");
        let Value::Object(node) = node else {
            return Err(DecodeError::new(path, format!("expected an object, found {}", kind_of(node))));
        };
        out.push(activity(name, Fields::new(node, path), warnings)?);
    }
    sort_by_start(&mut out);
    Ok(out)
}

/// Nodes that started earlier come first; nodes without a start time last, by name.
pub(super) fn sort_by_start(activities: &mut [Activity]) {
    activities.sort_by(|a, b| {
        let start = |x: &Activity| x.start_time.as_ref().and_then(|t| t.parsed);
        match (start(a), start(b)) {
            (Some(x), Some(y)) => x.cmp(&y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        }
        .then_with(|| a.name.cmp(&b.name))
    });
}

/// A node's type from its instance name when VOD leaves `ActivityId` out: `VodSnapshot_53e77`
/// is a `VodSnapshot`.
pub(super) fn activity_id_of(name: &str) -> &str {
    name.rsplit_once('_').map_or(name, |(prefix, _)| prefix)
}

fn activity(name: &str, f: Fields<'_>, warnings: &mut Vec<Warning>) -> Result<Activity, DecodeError> {
    let activity_id = match f.opt_str("ActivityId")? {
        Some(id) => id.to_owned(),
        None => activity_id_of(name).to_owned(),
    };
    let result = f.map.get("Result").filter(|r| !r.is_null());
    Ok(Activity {
        name: name.to_owned(),
        activity_id,
        activity_instance_id: f.opt_str("ActivityInstanceId")?.map(str::to_owned),
        status: TaskStatus::parse(f.opt_str("Status")?.unwrap_or("Unknown")),
        start_time: f.opt_time("StartTime", warnings)?,
        end_time: f.opt_time("EndTime", warnings)?,
        error: result.and_then(error_of),
    })
}

/// Finds an error code and message in a node's `Result`, at its top level or in its
/// `MessageBody` (where VOD's own event results nest them). Field names seen in VOD results:
/// `ErrorCode`/`Code`/`ErrCode` and `ErrorMessage`/`Message`/`ErrMsg`/`ErrorMsg`.
fn error_of(result: &Value) -> Option<ActivityError> {
    const CODES: [&str; 3] = ["ErrorCode", "ErrCode", "Code"];
    const MESSAGES: [&str; 4] = ["ErrorMessage", "ErrorMsg", "ErrMsg", "Message"];
    let scalar = |obj: &Map<String, Value>, keys: &[&str]| {
        keys.iter().find_map(|k| match obj.get(*k)? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    };
    let top = result.as_object()?;
    [Some(top), top.get("MessageBody").and_then(Value::as_object)].into_iter().flatten().find_map(|obj| {
        let (code, message) = (scalar(obj, &CODES), scalar(obj, &MESSAGES));
        (code.is_some() || message.is_some()).then_some(ActivityError { code, message })
    })
}

pub(super) fn task_input(value: Option<&Value>) -> Result<TaskInput, DecodeError> {
    let map = match value {
        None | Some(Value::Null) | Some(Value::String(_)) => return Ok(TaskInput::default()),
        Some(Value::Object(map)) => map,
        Some(other) => {
            return Err(DecodeError::new(
                "TaskInput",
                format!("expected an object (or a string holding one), found {}", kind_of(other)),
            ));
        }
    };
    let f = Fields::new(map, "TaskInput");
    const KNOWN: [&str; 4] = ["Type", "Media", "Title", "StorageLocation"];
    Ok(TaskInput {
        r#type: f.opt_str("Type")?.map(str::to_owned),
        media: f.opt_str("Media")?.map(str::to_owned),
        title: f.opt_str("Title")?.map(str::to_owned),
        storage_location: f.opt_str("StorageLocation")?.map(str::to_owned),
        extra: map
            .iter()
            .filter(|(k, _)| !KNOWN.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn status_is_case_insensitive_and_keeps_unknown_values() {
        assert_eq!(TaskStatus::parse("SUCCEED"), TaskStatus::Succeed);
        assert_eq!(TaskStatus::parse("failed"), TaskStatus::Failed);
        assert_eq!(TaskStatus::parse("Canceled").as_str(), "Canceled");
        assert!(TaskStatus::parse("Canceled").is_failed());
    }

    #[test]
    fn error_found_at_top_or_in_message_body() {
        let top = json!({"ErrorCode": "InvalidParameter", "ErrorMessage": "bad width"});
        assert_eq!(
            error_of(&top),
            Some(ActivityError { code: Some("InvalidParameter".into()), message: Some("bad width".into()) })
        );
        let nested = json!({"MessageBody": {"Code": 4001, "Message": "no audio"}});
        assert_eq!(error_of(&nested).unwrap().code.as_deref(), Some("4001"));
        assert_eq!(error_of(&json!({"RequestId": "x"})), None);
    }

    #[test]
    fn activity_id_falls_back_to_the_node_name() {
        let event = json!({"TaskId": "t", "Status": "Failed",
            "ActivityResults": {"VodSnapshot_53e77": {"Status": "Failed"}}});
        let w = WorkflowTaskComplete::from_decoded(event, &mut Vec::new()).unwrap();
        assert_eq!(w.activities[0].activity_id, "VodSnapshot");
    }

    #[test]
    fn task_input_keeps_unknown_fields() {
        let event = json!({"TaskId": "t", "Status": "Succeed",
            "TaskInput": {"Type": "Media", "Title": "猫", "Extra": [1]}});
        let w = WorkflowTaskComplete::from_decoded(event, &mut Vec::new()).unwrap();
        assert_eq!(w.task_input.title.as_deref(), Some("猫"));
        assert_eq!(w.task_input.extra.get("Extra"), Some(&json!([1])));
    }

    #[test]
    fn wrong_types_are_errors_with_paths() {
        let event = json!({"TaskId": "t", "Status": "Succeed", "ActivityResults": 3});
        let err = WorkflowTaskComplete::from_decoded(event, &mut Vec::new()).unwrap_err();
        assert_eq!(err.path, "ActivityResults");
        let event = json!({"TaskId": "t", "Status": "Succeed",
            "ActivityResults": {"N_1": {"EndTime": 5}}});
        let err = WorkflowTaskComplete::from_decoded(event, &mut Vec::new()).unwrap_err();
        assert_eq!(err.path, "ActivityResults.N_1.EndTime");
    }
}
