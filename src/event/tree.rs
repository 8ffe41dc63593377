//! An event's decoded tree, built when first read.
//!
//! Most deliveries are rendered from the typed view alone: the built-in templates read the
//! summary, the log line the identity. Building the whole tree (every string of JSON parsed into
//! maps, and freed again) was over half the decoding cost of a callback. An event decoded on the
//! short path ([`super::fast`]) keeps its text instead, already proven to decode without a
//! warning, and builds the tree on the first [`Tree::get`]: for a webhook, a template that reads
//! `event`, or `vodhook decode`.

use std::sync::OnceLock;

use serde_json::Value;

use super::embedded::decode_embedded;

#[derive(Clone)]
pub struct Tree {
    /// The event's JSON text when the tree is still to be built; empty once it was given.
    text: Box<str>,
    tree: OnceLock<Value>,
}

impl Tree {
    /// A tree already built.
    pub(super) fn built(tree: Value) -> Self {
        Tree { text: Box::default(), tree: OnceLock::from(tree) }
    }

    /// The tree of the event `text` holds, to be built on first use. `text` must be one event
    /// object that [`super::clean::decodes_cleanly`]: the tree then builds without a warning.
    pub(super) fn later(text: &str) -> Self {
        Tree { text: text.into(), tree: OnceLock::new() }
    }

    pub fn get(&self) -> &Value {
        self.tree.get_or_init(|| build(&self.text))
    }
}

/// The tree, however it was made: two events decoded by different paths look alike.
impl std::fmt::Debug for Tree {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Tree").field(self.get()).finish()
    }
}

/// The tree of `text`, decoded as the full path decodes a bare event (its warnings, proven to be
/// none, are not collected again). `Null` cannot happen for text that decodes cleanly; should
/// it, the tree reads as absent rather than the process stopping.
fn build(text: &str) -> Value {
    let Ok(mut tree) = serde_json::from_str::<Value>(text) else { return Value::Null };
    match decode_embedded(&mut tree, "", &mut Vec::new()) {
        Ok(()) => tree,
        Err(_) => Value::Null,
    }
}
