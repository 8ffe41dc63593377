//! What the walk ([`super::walk`]) keeps of an event: the values the typed view reads, each by
//! its [`Role`], and the shape of the objects that hold them. Anything the full path would
//! read differently (a key twice, a map where the view wants a string, too many nodes) ends the
//! walk, and the full path decodes the event.

use serde_json::Number;

/// The fields of the event the typed view reads as scalars, in [`Role::Field`]'s numbering.
pub(super) const EVENT_FIELDS: [&str; 10] = [
    "EventType",
    "TaskId",
    "Status",
    "WorkflowId",
    "VideoId",
    "UserId",
    "EventTime",
    "CreateTime",
    "ModifiedTime",
    "FinishTime",
];

/// The fields of a node the typed view reads, in [`Role::NodeField`]'s numbering.
pub(super) const NODE_FIELDS: [&str; 5] =
    ["ActivityId", "ActivityInstanceId", "Status", "StartTime", "EndTime"];

/// The error fields of a node's `Result` (and of its `MessageBody`), codes then messages, each
/// group in the order `error_of` prefers them.
pub(super) const ERROR_FIELDS: [&str; 7] =
    ["ErrorCode", "ErrCode", "Code", "ErrorMessage", "ErrorMsg", "ErrMsg", "Message"];

/// The fields of `TaskInput` the typed view names, in [`Role::TaskField`]'s numbering.
pub(super) const TASK_INPUT_FIELDS: [&str; 4] = ["Type", "Media", "Title", "StorageLocation"];

/// What the typed view makes of a value. Node numbers index [`Sink::nodes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    /// Read only to be checked.
    Ignored,
    /// The event object itself.
    Event,
    /// `EVENT_FIELDS[i]`.
    Field(usize),
    /// `ActivityResults`.
    Nodes,
    Node(usize),
    /// `NODE_FIELDS[j]` of node `i`.
    NodeField(usize, usize),
    /// A node's `Result`.
    Result(usize),
    /// A node's `Result.MessageBody`.
    Body(usize),
    /// `ERROR_FIELDS[k]` of node `i`'s `Result` (`level` 0) or its `MessageBody` (1).
    Error {
        node: usize,
        level: usize,
        k: usize,
    },
    TaskInput,
    /// `TASK_INPUT_FIELDS[j]`.
    TaskField(usize),
}

impl Role {
    /// Whether the view reads the value as a scalar ([`Slot`]) rather than a container
    /// ([`Shape`]).
    fn is_scalar(self) -> bool {
        matches!(self, Role::Field(_) | Role::NodeField(..) | Role::Error { .. } | Role::TaskField(_))
    }
}

/// A value the view reads as a scalar, as it arrived.
#[derive(Debug, Default)]
pub(super) enum Slot {
    #[default]
    Absent,
    Null,
    Text(String),
    Number(Number),
    /// A boolean, an object or an array (a string holding JSON is one of the last two).
    Other,
}

/// What a value the view reads as an object turned out to be.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) enum Shape {
    #[default]
    Absent,
    Null,
    /// A string holding no JSON; `blank` when only white space.
    Text {
        blank: bool,
    },
    Map,
    /// A number, a boolean or an array.
    Other,
}

/// A scalar met on the walk (a string here holds no JSON).
pub(super) enum Scalar<'a> {
    Null,
    Text(&'a str),
    Number(Number),
    /// A boolean.
    Other,
}

/// The walk stops: the full path decides.
#[derive(Debug)]
pub(super) struct Bail;

/// The bits of the event's keys in `Sink::seen` after its scalar fields: `ActivityResults`,
/// `TaskInput`, then `TaskInput`'s fields.
const NODES_BIT: usize = EVENT_FIELDS.len();
const TASK_INPUT_BIT: usize = NODES_BIT + 1;

/// The bits of a node's keys in [`Node::seen`] after its fields: `Result`, `Result.MessageBody`,
/// then the error fields of each level.
const RESULT_BIT: usize = NODE_FIELDS.len();
const BODY_BIT: usize = RESULT_BIT + 1;
const ERROR_BITS: usize = BODY_BIT + 1;

#[derive(Debug, Default)]
pub(super) struct Node {
    pub name: String,
    /// The keys met, by their bit (see [`Sink::child`]): a key twice is left to the full path.
    seen: u32,
    pub shape: Shape,
    pub fields: [Slot; NODE_FIELDS.len()],
    pub result: Shape,
    pub body: Shape,
    pub errors: [[Slot; ERROR_FIELDS.len()]; 2],
}

#[derive(Debug, Default)]
pub(super) struct Sink {
    max_nodes: usize,
    seen: u32,
    pub fields: [Slot; EVENT_FIELDS.len()],
    pub nodes_shape: Shape,
    pub nodes: Vec<Node>,
    pub task_input: Shape,
    pub task_input_fields: [Slot; TASK_INPUT_FIELDS.len()],
    /// `TaskInput` has fields the view does not name (kept as decoded values).
    pub task_input_extra: bool,
    /// `TaskInput`'s text, when it is a string holding an object (as VOD sends it): its extra
    /// fields are decoded from it.
    pub task_input_text: Option<String>,
}

impl Sink {
    /// A sink for an event of at most `max_nodes` nodes (more are left to the full path, which
    /// says so; the bound also keeps the check for repeated node names cheap).
    pub fn new(max_nodes: usize) -> Self {
        Sink { max_nodes, ..Sink::default() }
    }

    /// The role of the value of `key` in an object read as `parent`.
    pub fn child(&mut self, parent: Role, key: &str) -> Result<Role, Bail> {
        let position = |names: &[&str]| names.iter().position(|name| *name == key);
        match parent {
            Role::Event => match key {
                "ActivityResults" => once(&mut self.seen, NODES_BIT).map(|()| Role::Nodes),
                "TaskInput" => once(&mut self.seen, TASK_INPUT_BIT).map(|()| Role::TaskInput),
                _ => match position(&EVENT_FIELDS) {
                    Some(i) => once(&mut self.seen, i).map(|()| Role::Field(i)),
                    None => Ok(Role::Ignored),
                },
            },
            Role::Nodes => {
                if self.nodes.len() >= self.max_nodes || self.nodes.iter().any(|node| node.name == key) {
                    return Err(Bail);
                }
                self.nodes.push(Node { name: key.to_owned(), ..Node::default() });
                Ok(Role::Node(self.nodes.len() - 1))
            }
            Role::Node(i) => {
                let seen = &mut self.nodes[i].seen;
                match (key, position(&NODE_FIELDS)) {
                    (_, Some(j)) => once(seen, j).map(|()| Role::NodeField(i, j)),
                    ("Result", None) => once(seen, RESULT_BIT).map(|()| Role::Result(i)),
                    _ => Ok(Role::Ignored),
                }
            }
            Role::Result(node) | Role::Body(node) => {
                let level = usize::from(matches!(parent, Role::Body(_)));
                let seen = &mut self.nodes[node].seen;
                match (key, position(&ERROR_FIELDS)) {
                    (_, Some(k)) => once(seen, ERROR_BITS + level * ERROR_FIELDS.len() + k)
                        .map(|()| Role::Error { node, level, k }),
                    ("MessageBody", None) if level == 0 => once(seen, BODY_BIT).map(|()| Role::Body(node)),
                    _ => Ok(Role::Ignored),
                }
            }
            Role::TaskInput => match position(&TASK_INPUT_FIELDS) {
                Some(j) => once(&mut self.seen, TASK_INPUT_BIT + 1 + j).map(|()| Role::TaskField(j)),
                None => {
                    self.task_input_extra = true;
                    Ok(Role::Ignored)
                }
            },
            _ => Ok(Role::Ignored),
        }
    }

    /// A string holding JSON, as `role`: the role its document is walked as.
    pub fn embedded(&mut self, role: Role, text: &str) -> Result<Role, Bail> {
        match role {
            // A message encoded once more: an envelope, for the full path.
            Role::Event => Err(Bail),
            // Its text is kept in case it has fields the view does not name.
            Role::TaskInput => {
                self.task_input_text = Some(text.to_owned());
                Ok(role)
            }
            role => Ok(role),
        }
    }

    /// An object (`Shape::Map`) or array (`Shape::Other`) read as `role`.
    pub fn shape(&mut self, role: Role, shape: Shape) -> Result<(), Bail> {
        match role {
            Role::Ignored => {}
            Role::Event if shape == Shape::Map => {}
            // An array at the root is a batch.
            Role::Event => return Err(Bail),
            role if role.is_scalar() => self.set_slot(role, Slot::Other),
            role => self.set_shape(role, shape),
        }
        Ok(())
    }

    /// A scalar read as `role`.
    pub fn scalar(&mut self, role: Role, scalar: Scalar<'_>) -> Result<(), Bail> {
        match role {
            Role::Ignored => {}
            Role::Event => return Err(Bail),
            role if role.is_scalar() => {
                let slot = match scalar {
                    Scalar::Null => Slot::Null,
                    Scalar::Text(text) => Slot::Text(text.to_owned()),
                    Scalar::Number(n) => Slot::Number(n),
                    Scalar::Other => Slot::Other,
                };
                self.set_slot(role, slot);
            }
            role => {
                let shape = match scalar {
                    Scalar::Null => Shape::Null,
                    Scalar::Text(text) => Shape::Text { blank: text.trim_ascii().is_empty() },
                    Scalar::Number(_) | Scalar::Other => Shape::Other,
                };
                self.set_shape(role, shape);
            }
        }
        Ok(())
    }

    fn set_slot(&mut self, role: Role, slot: Slot) {
        match role {
            Role::Field(i) => self.fields[i] = slot,
            Role::NodeField(i, j) => self.nodes[i].fields[j] = slot,
            Role::Error { node, level, k } => self.nodes[node].errors[level][k] = slot,
            Role::TaskField(j) => self.task_input_fields[j] = slot,
            _ => {}
        }
    }

    fn set_shape(&mut self, role: Role, shape: Shape) {
        match role {
            Role::Nodes => self.nodes_shape = shape,
            Role::Node(i) => self.nodes[i].shape = shape,
            Role::Result(i) => self.nodes[i].result = shape,
            Role::Body(i) => self.nodes[i].body = shape,
            Role::TaskInput => self.task_input = shape,
            _ => {}
        }
    }
}

/// Marks key `bit` as met; a key met twice is an error (`serde_json::Value` keeps the last).
fn once(seen: &mut u32, bit: usize) -> Result<(), Bail> {
    let mask = 1 << bit;
    if *seen & mask != 0 {
        return Err(Bail);
    }
    *seen |= mask;
    Ok(())
}
