//! JSON inside strings. VOD nests documents in string fields (`ActivityResults`, `TaskInput`,
//! each node's `Result`, and deeper: `UserData`, `MessageBody.TriggerSource`). This walks a tree
//! and replaces every string that holds a JSON object or array with the decoded value,
//! recursively, so users and templates see one plain tree.

use serde_json::Value;

use super::{DecodeError, Warning};

/// The deepest a decoded event may nest, counting the levels of every embedded document.
/// `serde_json` bounds each single parse at 128 levels; this bounds the sum, so a string that
/// holds a string that holds ... cannot exhaust the stack, and errors name the path instead.
pub const MAX_DEPTH: usize = 64;

/// Fields the VOD documentation defines as JSON text: when they hold something else, say so.
pub(super) const DOCUMENTED_AS_JSON: [&str; 3] = ["ActivityResults", "TaskInput", "Result"];

/// One step of a path into the tree.
#[derive(Clone, Copy)]
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

/// Renders a path like `ActivityResults.VodSnapshot_53e77.Result.Items[2]`, after `prefix`.
fn render(prefix: &str, segs: &[Seg<'_>]) -> String {
    let mut out = prefix.to_owned();
    for seg in segs {
        match seg {
            Seg::Key(k) => out = crate::text::join_path(&out, k),
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Whether `text` has the shape of a JSON object or array (so it is worth parsing, and worth a
/// warning when it does not parse). A title like `[Draft] cats` is not.
pub(super) fn looks_like_json(text: &str) -> bool {
    let t = text.trim_ascii();
    (t.starts_with('{') && t.ends_with('}')) || (t.starts_with('[') && t.ends_with(']'))
}

/// Decodes every embedded JSON string in `value`, in place. `prefix` is the path of `value`
/// inside the delivery (empty for a bare event); warnings and errors carry full paths.
pub(crate) fn decode_embedded(
    value: &mut Value,
    prefix: &str,
    warnings: &mut Vec<Warning>,
) -> Result<(), DecodeError> {
    let mut path = Vec::new();
    Walker { prefix, warnings }.walk(value, &mut path, 1)
}

struct Walker<'w> {
    prefix: &'w str,
    warnings: &'w mut Vec<Warning>,
}

impl Walker<'_> {
    fn walk<'a>(
        &mut self,
        value: &'a mut Value,
        path: &mut Vec<Seg<'a>>,
        depth: usize,
    ) -> Result<(), DecodeError> {
        if depth > MAX_DEPTH {
            return Err(DecodeError::new(
                render(self.prefix, path),
                format!("nesting deeper than {MAX_DEPTH} levels (counting JSON held in strings)"),
            ));
        }
        if let Value::String(text) = &*value {
            // The decoded document takes the place and the depth of its string.
            if let Some(decoded) = self.embedded(text, path) {
                *value = decoded;
            }
        }
        match value {
            Value::Array(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    path.push(Seg::Index(i));
                    self.walk(item, path, depth + 1)?;
                    path.pop();
                }
            }
            Value::Object(map) => {
                for (key, item) in map.iter_mut() {
                    path.push(Seg::Key(key));
                    self.walk(item, path, depth + 1)?;
                    path.pop();
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
        }
        Ok(())
    }

    /// The document `text` holds, or `None` (with a warning when it should have held one).
    fn embedded(&mut self, text: &str, path: &[Seg<'_>]) -> Option<Value> {
        let documented = matches!(path.last(), Some(Seg::Key(k)) if DOCUMENTED_AS_JSON.contains(k));
        if !looks_like_json(text) {
            if documented && !text.trim_ascii().is_empty() {
                self.warn(path, "expected JSON text (an object or array); kept as it arrived".to_owned());
            }
            return None;
        }
        match serde_json::from_str::<Value>(text) {
            Ok(decoded) => Some(decoded),
            Err(err) => {
                self.warn(path, format!("holds text that is not valid JSON ({err}); kept as it arrived"));
                None
            }
        }
    }

    fn warn(&mut self, path: &[Seg<'_>], message: String) {
        self.warnings.push(Warning { path: render(self.prefix, path), message });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn decode(mut v: Value) -> (Value, Vec<Warning>) {
        let mut warnings = Vec::new();
        decode_embedded(&mut v, "", &mut warnings).unwrap();
        (v, warnings)
    }

    #[test]
    fn decodes_strings_within_strings() {
        let inner = json!({"BizType": "ice-workflow"}).to_string();
        let middle = json!({"MessageBody": {"TriggerSource": inner}}).to_string();
        let (v, warnings) = decode(json!({"Result": middle, "Title": "[Draft] cats"}));
        assert_eq!(v["Result"]["MessageBody"]["TriggerSource"]["BizType"], "ice-workflow");
        assert_eq!(v["Title"], "[Draft] cats");
        assert!(warnings.is_empty());
    }

    #[test]
    fn broken_embedded_json_stays_as_text_with_a_warning() {
        let (v, warnings) = decode(json!({"A": [{"Result": "{\"x\": 1"}], "TaskInput": "plain"}));
        assert_eq!(v["A"][0]["Result"], "{\"x\": 1");
        let paths: Vec<_> = warnings.iter().map(|w| w.path.as_str()).collect();
        assert_eq!(paths, ["A[0].Result", "TaskInput"]);
    }

    #[test]
    fn depth_is_bounded_across_embedded_levels() {
        // Each part stays under serde_json's own limit; only together are they too deep.
        let inner = format!("{}1{}", "[".repeat(40), "]".repeat(40));
        let mut v = json!({ "n": inner });
        for _ in 0..30 {
            v = json!({ "n": v });
        }
        let mut v = json!({ "n": v.to_string() });
        let mut warnings = Vec::new();
        let err = decode_embedded(&mut v, "[0].data", &mut warnings).unwrap_err();
        assert!(err.path.starts_with("[0].data.n.n.n"), "{}", err.path);
        assert!(err.message.contains("deeper than 64"), "{}", err.message);
    }
}
