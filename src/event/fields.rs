//! Typed reads from a decoded JSON object that name the exact path when a field has the wrong
//! type: "strict with structure", so `ActivityResults.VodSnapshot_53e77.EndTime: expected ...`.

use serde_json::{Map, Value};

use super::{DecodeError, VodTime, Warning};

/// A JSON object being read, with the path that leads to it.
pub(crate) struct Fields<'a> {
    pub map: &'a Map<String, Value>,
    pub path: String,
}

/// What a JSON value is, for error messages.
pub fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl<'a> Fields<'a> {
    pub fn new(map: &'a Map<String, Value>, path: impl Into<String>) -> Self {
        Self { map, path: path.into() }
    }

    pub fn path_of(&self, key: &str) -> String {
        crate::text::join_path(&self.path, key)
    }

    fn wrong_type(&self, key: &str, expected: &str, found: &Value) -> DecodeError {
        DecodeError::new(self.path_of(key), format!("expected {expected}, found {}", kind_of(found)))
    }

    /// A string field that may be absent (or null).
    pub fn opt_str(&self, key: &str) -> Result<Option<&'a str>, DecodeError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(self.wrong_type(key, "a string", other)),
        }
    }

    /// A string field without which the event cannot be handled.
    pub fn req_str(&self, key: &str) -> Result<&'a str, DecodeError> {
        self.opt_str(key)?.ok_or_else(|| DecodeError::new(self.path_of(key), "required field is missing"))
    }

    /// An id that VOD documents as a string but sends as a number in practice (`UserId`).
    pub fn opt_id(&self, key: &str) -> Result<Option<String>, DecodeError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(other) => Err(self.wrong_type(key, "a string or a number", other)),
        }
    }

    /// A timestamp: the wrong type is an error, text that does not parse is a warning.
    pub fn opt_time(&self, key: &str, warnings: &mut Vec<Warning>) -> Result<Option<VodTime>, DecodeError> {
        let Some(raw) = self.opt_str(key).map_err(|e| DecodeError {
            message: format!("{} (UTC time like 2025-04-01T02:29:50Z)", e.message),
            ..e
        })?
        else {
            return Ok(None);
        };
        let time = VodTime::parse(raw);
        if time.parsed.is_none() {
            warnings.push(Warning {
                path: self.path_of(key),
                message: format!("{raw:?} is not a UTC time like 2025-04-01T02:29:50Z; kept as text"),
            });
        }
        Ok(Some(time))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wrong_type_names_the_path() {
        let v = json!({"EndTime": 5, "UserId": 123, "Name": null});
        let f = Fields::new(v.as_object().unwrap(), "ActivityResults.VodSnapshot_53e77");
        let err = f.opt_time("EndTime", &mut Vec::new()).unwrap_err();
        assert_eq!(err.path, "ActivityResults.VodSnapshot_53e77.EndTime");
        assert!(err.message.contains("expected a string"), "{}", err.message);
        assert!(err.message.contains("found a number"), "{}", err.message);
        assert_eq!(f.opt_id("UserId").unwrap().as_deref(), Some("123"));
        assert_eq!(f.opt_str("Name").unwrap(), None);
        assert_eq!(f.req_str("Missing").unwrap_err().message, "required field is missing");
    }

    #[test]
    fn unparsable_time_is_a_warning() {
        let v = json!({"EventTime": "soon"});
        let f = Fields::new(v.as_object().unwrap(), "");
        let mut warnings = Vec::new();
        let t = f.opt_time("EventTime", &mut warnings).unwrap().unwrap();
        assert_eq!(t.raw, "soon");
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].path, "EventTime");
    }
}
