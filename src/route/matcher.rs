//! Route matchers: which events a route takes.
//!
//! Two spellings, one meaning:
//! - the `match` table: `match = { status = "Failed", title = "*预告*" }`, each entry an equality;
//! - `matchers`, in Alertmanager's syntax: `status!="Succeed"`, `workflow_id=~"^wf-"`,
//!   `title!~".*test.*"`, with `=`, `!=`, `=~` (regex) and `!~`.
//!
//! Semantics, chosen so a rule reads the way a person expects:
//! - `status` compares case-insensitively, for regexes too, and `=`/`!=` treat VOD's spellings
//!   of one outcome alike (`Succeed` = `success`, `Failed` = `fail`: workflow events say
//!   `Succeed`, most others `success`);
//! - `source` is `vod` or `ims` (an IMS-signed callback, or an event in IMS's wrapper);
//! - `title` with `=`/`!=` is a glob: `*` any run of characters, `?` one, `\` makes the next
//!   character literal; a title without those characters is plain equality;
//! - regexes are anchored at both ends, as in Alertmanager: `=~"wf-"` matches only `wf-`, write
//!   `=~"wf-.*"` for a prefix;
//! - a field the event lacks is the empty string (Alertmanager's missing label), so
//!   `workflow_id!="x"` matches events that have no workflow;
//! - `activity_id`, `failed_activity_id` and `error_code` (a failed node's error code) look at
//!   every node: `=`/`=~` match when *any* node matches, `!=`/`!~` when *none* does;
//! - silences (see the `silence` module) match the action too: `route` and `channel` (its names), which
//!   routes cannot use (a route does not choose itself).
//!
//! Quoted values take `\"` for a quote and `\\` for a backslash; every other backslash is kept as
//! written, so `=~"^wf-\d+$"` works as typed (and Alertmanager's `\\d` means the same).

use regex::Regex;

use crate::event::{Event, TaskStatus};

/// A field of the event a matcher can look at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    EventType,
    Status,
    WorkflowId,
    VideoId,
    ActivityId,
    FailedActivityId,
    Title,
    /// Where the event came from: `vod` or `ims`.
    Source,
    /// The error code of any node that failed (like `failed_activity_id`, any-node).
    ErrorCode,
    /// The route an action goes through: silences only (routes are what match events).
    Route,
    /// The channel an action goes to: silences only.
    Channel,
}

impl Field {
    /// The fields of an event: what routes match on.
    pub const ALL: [Field; 9] = [
        Field::EventType,
        Field::Status,
        Field::WorkflowId,
        Field::VideoId,
        Field::ActivityId,
        Field::FailedActivityId,
        Field::Title,
        Field::Source,
        Field::ErrorCode,
    ];

    /// What a silence matches on: an event's fields and where its action goes.
    pub const SILENCE: [Field; 11] = {
        let mut fields = [Field::Route; 11];
        let mut i = 0;
        while i < Field::ALL.len() {
            fields[i] = Field::ALL[i];
            i += 1;
        }
        fields[10] = Field::Channel;
        fields
    };

    pub fn name(self) -> &'static str {
        match self {
            Field::EventType => "event_type",
            Field::Status => "status",
            Field::WorkflowId => "workflow_id",
            Field::VideoId => "video_id",
            Field::ActivityId => "activity_id",
            Field::FailedActivityId => "failed_activity_id",
            Field::Title => "title",
            Field::Source => "source",
            Field::ErrorCode => "error_code",
            Field::Route => "route",
            Field::Channel => "channel",
        }
    }

    /// The field's one value in `event` (`""` when it has none); `None` for the fields that can
    /// hold several (the any-node ones), which `group_by` refuses.
    pub fn single_value(self, event: &Event) -> Option<&str> {
        match self {
            Field::EventType => Some(event.event_type()),
            Field::Status => Some(event.status().unwrap_or("")),
            Field::WorkflowId => Some(event.workflow_id().unwrap_or("")),
            Field::VideoId => Some(event.video_id().unwrap_or("")),
            Field::Title => Some(event.title().unwrap_or("")),
            Field::Source => Some(event.source().as_str()),
            Field::ActivityId | Field::FailedActivityId | Field::ErrorCode => None,
            Field::Route | Field::Channel => None,
        }
    }

    /// Whether the field has one value per event (what `group_by` takes).
    pub fn is_single(self) -> bool {
        !matches!(self, Field::ActivityId | Field::FailedActivityId | Field::ErrorCode)
    }

    /// The event field `name` (what routes take).
    pub fn parse(name: &str) -> Result<Field, String> {
        Field::parse_in(name, &Field::ALL)
    }

    /// The field `name`, one of `known`.
    pub fn parse_in(name: &str, known: &[Field]) -> Result<Field, String> {
        known.iter().copied().find(|f| f.name() == name).ok_or_else(|| {
            let names: Vec<&str> = known.iter().map(|f| f.name()).collect();
            format!("unknown field `{name}` (known: {})", names.join(", "))
        })
    }
}

/// The event types VOD documents (its event-notification list) and IMS's `ProduceMediaComplete`:
/// an `event_type` matcher naming another is probably a typo (new types do appear, so it is a
/// warning, not a refusal).
pub const KNOWN_EVENT_TYPES: &[&str] = &[
    "FileUploadComplete",
    "ImageUploadComplete",
    "StreamTranscodeComplete",
    "TranscodeComplete",
    "SnapshotComplete",
    "DynamicImageComplete",
    "AddLiveRecordVideoComplete",
    "LiveRecordVideoComposeStart",
    "UploadByURLComplete",
    "CreateAuditComplete",
    "AIMediaAuditComplete",
    "VideoAnalysisComplete",
    "AIMediaDNAComplete",
    "AIVideoTagComplete",
    "AttachedMediaUploadComplete",
    "ProduceMediaComplete",
    "DeleteMediaComplete",
    "MediaBaseChangeComplete",
    "WorkflowTaskComplete",
];

/// The statuses VOD sends (workflow events the first two, most others the last two).
const STATUSES: [&str; 4] = ["Succeed", "Failed", "success", "fail"];

/// What a source can be.
const SOURCES: [&str; 2] = ["vod", "ims"];

/// The comparison of a matcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    NotEq,
    Re,
    NotRe,
}

impl Op {
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Eq => "=",
            Op::NotEq => "!=",
            Op::Re => "=~",
            Op::NotRe => "!~",
        }
    }

    fn negated(self) -> bool {
        matches!(self, Op::NotEq | Op::NotRe)
    }
}

/// One compiled matcher. Compiled once, when the router is built.
#[derive(Debug, Clone)]
pub struct Matcher {
    pub field: Field,
    pub op: Op,
    pub value: String,
    test: Test,
}

#[derive(Debug, Clone)]
enum Test {
    Exact(String),
    /// An outcome, whatever its spelling.
    Status(TaskStatus),
    Pattern(Regex),
}

impl Test {
    fn passes(&self, value: &str) -> bool {
        match self {
            Test::Exact(expected) => value == expected,
            Test::Status(expected) => match (TaskStatus::parse(value), expected) {
                (TaskStatus::Other(a), TaskStatus::Other(b)) => a.to_lowercase() == b.to_lowercase(),
                (a, b) => a == *b,
            },
            Test::Pattern(re) => re.is_match(value),
        }
    }
}

impl Matcher {
    /// Builds the matcher `field op value`.
    pub fn new(field: Field, op: Op, value: &str) -> Result<Matcher, String> {
        let test = match (op, field) {
            (Op::Eq | Op::NotEq, Field::Status) => Test::Status(TaskStatus::parse(value)),
            (Op::Eq | Op::NotEq, Field::Title) if value.contains(['*', '?', '\\']) => {
                Test::Pattern(anchored(&glob_to_regex(value), false)?)
            }
            (Op::Eq | Op::NotEq, _) => Test::Exact(value.to_owned()),
            (Op::Re | Op::NotRe, _) => Test::Pattern(anchored(value, field == Field::Status)?),
        };
        Ok(Matcher { field, op, value: value.to_owned(), test })
    }

    /// What is wrong with an equality's value on an enumerated field: `Err` for a value no
    /// event can have (`status = "Faild"`, `source = "oss"`: the route would never fire),
    /// `Ok(Some(warning))` for an event type VOD does not document. Regexes are not judged.
    pub fn check_value(&self) -> Result<Option<String>, String> {
        if !matches!(self.op, Op::Eq | Op::NotEq) || self.value.is_empty() {
            return Ok(None);
        }
        let value = self.value.as_str();
        let hint = |known: &[&'static str]| match crate::text::nearest(value, known.iter().copied()) {
            Some(near) => format!(": did you mean {near:?}?"),
            None => String::new(),
        };
        match self.field {
            Field::Status if matches!(TaskStatus::parse(value), TaskStatus::Other(_)) => Err(format!(
                "{value:?} is not a status VOD sends{} (Succeed or Failed; success and fail mean the same)",
                hint(&STATUSES)
            )),
            Field::Source if !SOURCES.contains(&value) => {
                Err(format!("{value:?} is not a source{} (vod or ims)", hint(&SOURCES)))
            }
            Field::EventType if !KNOWN_EVENT_TYPES.contains(&value) => Ok(Some(format!(
                "{value:?} is not an event type VOD documents{}; the route takes only events of exactly that type",
                hint(KNOWN_EVENT_TYPES)
            ))),
            _ => Ok(None),
        }
    }

    /// A `match` table entry: `field = "value"`.
    pub fn from_pair(field: &str, value: &str) -> Result<Matcher, String> {
        Matcher::new(Field::parse(field)?, Op::Eq, value)
    }

    /// Parses Alertmanager's `field op "value"` (quotes optional when the value has no spaces).
    pub fn parse(text: &str) -> Result<Matcher, String> {
        Matcher::parse_in(text, &Field::ALL)
    }

    /// [`Matcher::parse`] with the fields `known` (a silence's take `route` and `channel`).
    pub fn parse_in(text: &str, known: &[Field]) -> Result<Matcher, String> {
        let text = text.trim();
        let name_end = text.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(text.len());
        let (name, rest) = text.split_at(name_end);
        if name.is_empty() {
            return Err(format!(
                "expected `field op \"value\"` (e.g. `status=\"Failed\"`), found `{}`",
                shorten(text)
            ));
        }
        let field = Field::parse_in(name, known)?;
        let rest = rest.trim_start();
        let (op, rest) = [("=~", Op::Re), ("!~", Op::NotRe), ("!=", Op::NotEq), ("=", Op::Eq)]
            .into_iter()
            .find_map(|(token, op)| rest.strip_prefix(token).map(|r| (op, r)))
            .ok_or_else(|| format!("expected an operator (=, !=, =~, !~) after `{name}`"))?;
        let value = parse_value(rest.trim())?;
        Matcher::new(field, op, &value)
    }

    /// Whether `event` passes this matcher (`route` and `channel` are then empty).
    pub fn matches(&self, event: &Event) -> bool {
        self.matches_action(event, "", "")
    }

    /// Whether the action sending `event` through `route` to `channel` passes this matcher.
    pub fn matches_action(&self, event: &Event, route: &str, channel: &str) -> bool {
        let hit = match self.field {
            Field::EventType => self.test.passes(event.event_type()),
            Field::Status => self.test.passes(event.status().unwrap_or("")),
            Field::WorkflowId => self.test.passes(event.workflow_id().unwrap_or("")),
            Field::VideoId => self.test.passes(event.video_id().unwrap_or("")),
            Field::Title => self.test.passes(event.title().unwrap_or("")),
            Field::Source => self.test.passes(event.source().as_str()),
            Field::ActivityId => self.any(event.activity_ids()),
            Field::FailedActivityId => self.any(event.failed_activity_ids()),
            Field::ErrorCode => self.any(event.error_codes()),
            Field::Route => self.test.passes(route),
            Field::Channel => self.test.passes(channel),
        };
        hit != self.op.negated()
    }

    /// Whether an empty value (a field the event lacks) passes: a silence needs one matcher
    /// that does not, or it would silence everything.
    pub fn matches_empty(&self) -> bool {
        self.test.passes("") != self.op.negated()
    }

    /// Any of `values` passes; no values at all counts as one empty value.
    fn any<'a>(&self, values: impl Iterator<Item = &'a str>) -> bool {
        let mut seen = false;
        for value in values {
            if self.test.passes(value) {
                return true;
            }
            seen = true;
        }
        !seen && self.test.passes("")
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let quoted = self.value.replace('\\', "\\\\").replace('"', "\\\"");
        write!(f, "{}{}\"{quoted}\"", self.field.name(), self.op.as_str())
    }
}

/// The value part: a quoted string, or the bare rest of the text.
fn parse_value(text: &str) -> Result<String, String> {
    let Some(quoted) = text.strip_prefix('"') else {
        if text.is_empty() {
            return Err("expected a value after the operator (write \"\" for an empty value)".to_owned());
        }
        if text.contains('"') {
            return Err(format!("unbalanced quotes in `{}`", shorten(text)));
        }
        return Ok(text.to_owned());
    };
    let mut out = String::with_capacity(quoted.len());
    let mut chars = quoted.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                let trailing = quoted[i + 1..].trim();
                if !trailing.is_empty() {
                    return Err(format!("unexpected `{}` after the closing quote", shorten(trailing)));
                }
                return Ok(out);
            }
            '\\' => match chars.next() {
                Some((_, '"')) => out.push('"'),
                Some((_, '\\')) => out.push('\\'),
                Some((_, other)) => {
                    out.push('\\');
                    out.push(other);
                }
                None => break,
            },
            c => out.push(c),
        }
    }
    Err("missing closing quote".to_owned())
}

fn anchored(pattern: &str, ignore_case: bool) -> Result<Regex, String> {
    let flags = if ignore_case { "(?i)" } else { "" };
    Regex::new(&format!("^{flags}(?:{pattern})$")).map_err(|e| {
        // The parser's message draws a caret under the (wrapped) pattern; its last line says it.
        let text = e.to_string();
        let reason = text.lines().last().unwrap_or("").trim().trim_start_matches("error: ");
        format!("invalid regex `{}`: {reason}", shorten(pattern))
    })
}

/// `*.mp4` → `.*\.mp4`; `\` quotes the next character.
fn glob_to_regex(glob: &str) -> String {
    let mut out = String::from("(?s)");
    let mut chars = glob.chars();
    while let Some(c) = chars.next() {
        match c {
            '*' => out.push_str(".*"),
            '?' => out.push('.'),
            '\\' => {
                if let Some(next) = chars.next() {
                    out.push_str(&regex::escape(next.encode_utf8(&mut [0; 4])));
                }
            }
            c => out.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
        }
    }
    out
}

fn shorten(text: &str) -> String {
    let mut short: String = text.chars().take(60).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(json: &str) -> Event {
        crate::event::decode_delivery(json.as_bytes()).unwrap().events.remove(0)
    }

    fn failed() -> Event {
        event(
            r#"{"EventType":"WorkflowTaskComplete","Status":"Failed","TaskId":"t1","WorkflowId":"wf-12",
            "VideoId":"v1","TaskInput":"{\"Title\":\"Launch *final* 预告.mp4\"}",
            "ActivityResults":"{\"VodTranscode_a\":{\"Status\":\"Succeed\"},\"VodSnapshot_b\":{\"Status\":\"Failed\"}}"}"#,
        )
    }

    fn m(text: &str) -> bool {
        Matcher::parse(text).unwrap().matches(&failed())
    }

    #[test]
    fn parses_alertmanager_syntax() {
        let matcher = Matcher::parse(r#"  workflow_id =~ "^wf-\d+"  "#).unwrap();
        assert_eq!(
            (matcher.field, matcher.op, matcher.value.as_str()),
            (Field::WorkflowId, Op::Re, r"^wf-\d+")
        );
        assert_eq!(Matcher::parse(r#"title="say \"hi\"""#).unwrap().value, r#"say "hi""#);
        assert_eq!(Matcher::parse(r#"title="a\\b""#).unwrap().value, r"a\b");
        assert_eq!(Matcher::parse("status!=Succeed").unwrap().op, Op::NotEq);
        assert_eq!(Matcher::parse(r#"status="""#).unwrap().value, "");
    }

    #[test]
    fn display_round_trips() {
        for text in [r#"title!~"a\"b""#, r#"status="Failed""#, r#"workflow_id=~"^wf-\\d+""#] {
            let matcher = Matcher::parse(text).unwrap();
            let again = Matcher::parse(&matcher.to_string()).unwrap();
            assert_eq!((again.field, again.op, again.value), (matcher.field, matcher.op, matcher.value));
        }
    }

    #[test]
    fn syntax_errors_say_what_is_wrong() {
        assert!(Matcher::parse(r#"titel="x""#).unwrap_err().contains("unknown field `titel`"));
        assert!(Matcher::parse(r#"status=="x""#).unwrap_err().contains("unbalanced quotes"));
        assert!(Matcher::parse(r#"status<"x""#).unwrap_err().contains("operator"));
        assert!(Matcher::parse(r#"status="x"#).unwrap_err().contains("closing quote"));
        assert!(Matcher::parse(r#"status="x" y"#).unwrap_err().contains("after the closing quote"));
        assert!(Matcher::parse(r#"status=~"(""#).unwrap_err().contains("invalid regex"));
        assert!(Matcher::parse("status=").unwrap_err().contains("expected a value"));
        assert!(Matcher::parse(r#"="x""#).unwrap_err().contains("expected `field op"));
    }

    #[test]
    fn status_is_case_insensitive() {
        assert!(m(r#"status="failed""#));
        assert!(m(r#"status="FAILED""#));
        assert!(!m(r#"status!="Failed""#));
        assert!(m(r#"status=~"fail.*""#));
        assert!(m(r#"status!~"succeed|success""#));
    }

    #[test]
    fn regexes_are_anchored() {
        assert!(!m(r#"workflow_id=~"wf-""#));
        assert!(m(r#"workflow_id=~"wf-.*""#));
        assert!(m(r#"workflow_id=~"^wf-\d+$""#));
        assert!(!m(r#"workflow_id=~"12""#));
    }

    #[test]
    fn title_is_a_glob() {
        assert!(m(r#"title="*预告*""#));
        assert!(m(r#"title="Launch \*final\* ??.mp4""#));
        assert!(!m(r#"title="Launch""#));
        assert!(m(r#"title!="*test*""#));
        assert!(m(r#"title="Launch *final* 预告.mp4""#), "a glob that is also the exact title");
        assert!(m(r#"title=~".*final.*""#));
    }

    #[test]
    fn node_fields_mean_any_and_none() {
        assert!(m(r#"activity_id="VodTranscode""#));
        assert!(m(r#"activity_id="VodSnapshot""#));
        assert!(!m(r#"failed_activity_id="VodTranscode""#));
        assert!(m(r#"failed_activity_id="VodSnapshot""#));
        assert!(m(r#"activity_id!="VideoTranslation""#));
        assert!(!m(r#"activity_id!="VodSnapshot""#));
        assert!(m(r#"failed_activity_id!~"VodTranscode|AIMediaAudit""#));
    }

    #[test]
    fn missing_fields_are_empty() {
        let generic = event(r#"{"EventType":"FileUploadComplete","VideoId":"v9","Status":"success"}"#);
        let check = |text: &str| Matcher::parse(text).unwrap().matches(&generic);
        assert!(check(r#"workflow_id!="wf-1""#));
        assert!(check(r#"workflow_id="""#));
        assert!(!check(r#"workflow_id=~".+""#));
        assert!(check(r#"activity_id!="VodSnapshot""#));
        assert!(check(r#"failed_activity_id="""#));
        assert!(check(r#"status="SUCCESS""#));
        assert!(check(r#"status="Succeed""#), "one outcome, two spellings");
        assert!(!check(r#"status!="succeed""#));
    }

    proptest::proptest! {
        #[test]
        fn parsing_never_panics(text in "\\PC{0,60}") {
            let _ = Matcher::parse(&text);
        }

        #[test]
        fn display_round_trips_any_value(value in "\\PC{0,30}") {
            let matcher = Matcher::new(Field::VideoId, Op::Eq, &value).unwrap();
            let again = Matcher::parse(&matcher.to_string()).unwrap();
            proptest::prop_assert_eq!(again.value, value);
        }
    }
}
