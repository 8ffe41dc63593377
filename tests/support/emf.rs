//! CloudWatch Embedded Metric Format lines, checked as CloudWatch reads them.

use serde_json::Value;

/// Checks one EMF line the way CloudWatch reads it: the structure against the specification's
/// rules (`tests/schema/emf.schema.json`, by Python's `jsonschema`), then what a schema
/// cannot say: every metric a directive names is a member of the root holding a number (or at
/// most 100 numbers), every dimension a member holding a string.
pub fn assert_valid(line: &str) {
    const VALIDATE: &str = r#"
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.validate(json.loads(sys.stdin.read()), schema)
"#;
    let schema = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/schema/emf.schema.json");
    super::python::run(VALIDATE, &[schema.to_str().unwrap()], line);
    let root: Value = serde_json::from_str(line).unwrap();
    for directive in root["_aws"]["CloudWatchMetrics"].as_array().unwrap() {
        let metrics = directive["Metrics"].as_array().unwrap();
        assert!(!metrics.is_empty() && metrics.len() <= 100, "{line}");
        for metric in metrics {
            let name = metric["Name"].as_str().unwrap();
            match &root[name] {
                Value::Number(_) => {}
                Value::Array(values) => {
                    assert!(values.len() <= 100 && values.iter().all(Value::is_number), "{name}: {line}")
                }
                other => panic!("metric {name} is {other} at the root: {line}"),
            }
        }
        for set in directive["Dimensions"].as_array().unwrap() {
            for key in set.as_array().unwrap() {
                let key = key.as_str().unwrap();
                assert!(root[key].as_str().is_some_and(|v| !v.is_empty()), "dimension {key}: {line}");
            }
        }
    }
}
