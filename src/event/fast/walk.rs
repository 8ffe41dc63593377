//! One pass over an event's text, by the embedded decoder's rules ([`super::super::embedded`]),
//! that builds no tree: a string shaped like a JSON object or array must parse and is walked in
//! its turn, at its string's depth; a field documented as JSON text must hold some; nothing may
//! nest deeper than [`MAX_DEPTH`]. Where the decoder would warn or fail, the walk stops.
//!
//! On the way, each value is handed to the [`Sink`] with its [`Role`] (what the typed view makes
//! of it). A decoded string keeps its string's role, as its document takes the string's place
//! in the tree. Values are read with `deserialize_any`, as `serde_json::Value` reads them
//! (skipping would not check numbers).

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Number;

use super::sink::{Role, Scalar, Shape, Sink};
use crate::event::MAX_DEPTH;
use crate::event::embedded::{DOCUMENTED_AS_JSON, looks_like_json};

/// Walks the document `text` (its root at `depth`, read as `role`) into `sink`. An error when
/// the embedded decoder would not take it without a word, or the sink wants the full path.
pub(super) fn walk(text: &str, role: Role, depth: usize, sink: &mut Sink) -> Result<(), serde_json::Error> {
    let mut de = serde_json::Deserializer::from_str(text);
    Walk { sink, role, depth, documented: false }.deserialize(&mut de)?;
    de.end()
}

/// One value at `depth`; `documented`: it is the value of a key documented as JSON text.
struct Walk<'s> {
    sink: &'s mut Sink,
    role: Role,
    depth: usize,
    documented: bool,
}

impl Walk<'_> {
    fn scalar<E: de::Error>(self, scalar: Scalar<'_>) -> Result<(), E> {
        self.sink.scalar(self.role, scalar).map_err(|_| E::custom("for the full path"))
    }

    fn shape<E: de::Error>(&mut self, shape: Shape) -> Result<(), E> {
        self.sink.shape(self.role, shape).map_err(|_| E::custom("for the full path"))
    }
}

impl<'de> DeserializeSeed<'de> for Walk<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        if self.depth > MAX_DEPTH {
            return Err(de::Error::custom("nested too deep"));
        }
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Walk<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.scalar(Scalar::Other)
    }

    fn visit_i64<E: de::Error>(self, n: i64) -> Result<(), E> {
        self.scalar(Scalar::Number(n.into()))
    }

    fn visit_u64<E: de::Error>(self, n: u64) -> Result<(), E> {
        self.scalar(Scalar::Number(n.into()))
    }

    fn visit_f64<E: de::Error>(self, n: f64) -> Result<(), E> {
        // As `serde_json::Value` reads a float (JSON has no NaN to make it `None`).
        self.scalar(Number::from_f64(n).map_or(Scalar::Null, Scalar::Number))
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.scalar(Scalar::Null)
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<(), E> {
        if looks_like_json(text) {
            let role = self.sink.embedded(self.role, text).map_err(|_| E::custom("for the full path"))?;
            // The decoded document takes the place and the depth of its string.
            walk(text, role, self.depth, self.sink).map_err(E::custom)
        } else if self.documented && !text.trim_ascii().is_empty() {
            Err(E::custom("documented as JSON text, holds other text"))
        } else {
            self.scalar(Scalar::Text(text))
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut items: A) -> Result<(), A::Error> {
        self.shape(Shape::Other)?;
        let depth = self.depth + 1;
        while items
            .next_element_seed(Walk { sink: self.sink, role: Role::Ignored, depth, documented: false })?
            .is_some()
        {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        self.shape(Shape::Map)?;
        let (parent, depth) = (self.role, self.depth + 1);
        while let Some((role, documented)) = map.next_key_seed(Key { sink: self.sink, parent })? {
            map.next_value_seed(Walk { sink: self.sink, role, depth, documented })?;
        }
        Ok(())
    }
}

/// Reads a key of an object read as `parent`: the role of its value (the sink's answer), and
/// whether the VOD documentation defines the value as JSON text.
struct Key<'s> {
    sink: &'s mut Sink,
    parent: Role,
}

impl<'de> DeserializeSeed<'de> for Key<'_> {
    type Value = (Role, bool);

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(Role, bool), D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for Key<'_> {
    type Value = (Role, bool);

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<(Role, bool), E> {
        let role = self.sink.child(self.parent, key).map_err(|_| E::custom("for the full path"))?;
        Ok((role, DOCUMENTED_AS_JSON.contains(&key)))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::event::embedded::decode_embedded;

    /// What the embedded decoder itself says of `text`: true when it parses, decodes, and warns
    /// of nothing.
    fn embedded_says_clean(text: &str) -> bool {
        let Ok(mut value) = serde_json::from_str::<Value>(text) else { return false };
        let mut warnings = Vec::new();
        decode_embedded(&mut value, "", &mut warnings).is_ok() && warnings.is_empty()
    }

    fn walks(text: &str) -> bool {
        walk(text, Role::Ignored, 1, &mut Sink::default()).is_ok()
    }

    #[test]
    fn agrees_with_the_embedded_decoder() {
        let deep_inner = format!("{}1{}", "[".repeat(40), "]".repeat(40));
        let mut deep = json!({ "n": deep_inner });
        for _ in 0..30 {
            deep = json!({ "n": deep });
        }
        let cases = [
            (json!({"Result": "{\"a\": [1, \"{\\\"b\\\": 2}\"]}", "Title": "[Draft] cats"}), true),
            (json!({"Result": "{\"a\": 1"}), false),
            (json!({"TaskInput": "plain"}), false),
            (json!({"TaskInput": "  "}), true),
            (json!({"ActivityResults": 5, "X": ["Result", "plain"]}), true),
            (json!({"X": [{"Result": "ok"}]}), false),
            (json!({"n": "[1, 2] trailing]"}), false),
            (json!({ "n": deep.to_string() }), false),
            (json!({"big": 1e300, "neg": -5, "t": true, "z": null}), true),
        ];
        let texts = cases.iter().map(|(value, clean)| (value.to_string(), *clean));
        let raw = [
            ("{", false),
            ("{} {}", false),
            ("{\"a\": 1e999}", false),
            ("\"[1]\"", true),
            ("[\"{x}\"]", false),
        ];
        for (text, clean) in texts.chain(raw.map(|(text, clean)| (text.to_owned(), clean))) {
            assert_eq!(embedded_says_clean(&text), clean, "the embedded decoder on {text}");
            assert_eq!(walks(&text), clean, "{text}");
        }
    }
}
