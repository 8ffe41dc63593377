//! `s.yaml` (Function Compute), `template.yml` (Lambda), `scripts/package` and the binary must
//! agree: the port FC connects to, the file FC and Lambda start, the env var names vodhook reads,
//! the triggers that feed the handler. A rename on one side fails here rather than on deploy.
//!
//! The fc3 schema check of `s.yaml` and `cfn-lint` of `template.yml` run from `scripts/test`
//! (they need Python tools and, for the schema, `../shared/reference/`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_norway::Value;
use vodhook::config::{self, DEFAULT_PORT, DeliveryConfig, env};

/// Every variable vodhook reads for its own configuration. A `VODHOOK_*` name in a deploy file
/// that is not here would be set and silently ignored.
const BINARY_VARS: &[&str] = &[
    env::CONFIG,
    env::CALLBACK_URL,
    env::AUTH_KEY,
    env::AUTH_KEY_PREVIOUS,
    env::IMS_AUTH_KEY,
    env::IMS_AUTH_KEY_PREVIOUS,
    env::LISTEN,
    env::LOG,
];

/// Variables both deploy files must set: callback authentication, the config file, the log filter.
const REQUIRED_VARS: &[&str] = &[
    env::CALLBACK_URL,
    env::AUTH_KEY,
    env::AUTH_KEY_PREVIOUS,
    env::IMS_AUTH_KEY,
    env::IMS_AUTH_KEY_PREVIOUS,
    env::CONFIG,
    env::LOG,
];

/// The auth key variables: secrets, never literals in a deploy file.
const SECRET_VARS: &[&str] =
    &[env::AUTH_KEY, env::AUTH_KEY_PREVIOUS, env::IMS_AUTH_KEY, env::IMS_AUTH_KEY_PREVIOUS];

/// What the FC timer trigger sends as its `payload`: the drain request the handler recognises on
/// `/invoke` (agreed with the handler's owner).
const DRAIN_PAYLOAD: &str = r#"{"vodhook":"drain"}"#;

/// The prefix that comments out the optional MNS trigger in `s.yaml`; removing it enables it.
const MNS_MARKER: &str = "#mns ";
/// What enables the buttons' pages in s.yaml: GET on the http trigger and a custom domain.
const LINKS_MARKER: &str = "#links ";

fn repo_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(name)
}

fn read(name: &str) -> String {
    let path = repo_path(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn parse(name: &str, text: &str) -> Value {
    serde_norway::from_str(text).unwrap_or_else(|e| panic!("{name} is not valid YAML: {e}"))
}

/// `value` at a dotted path, or a failure naming the file and the path.
fn at<'a>(file: &str, value: &'a Value, path: &str) -> &'a Value {
    let mut cur = value;
    for key in path.split('.') {
        cur = match key.parse::<usize>() {
            Ok(i) if cur.is_sequence() => cur.get(i),
            _ => cur.get(key),
        }
        .unwrap_or_else(|| panic!("{file}: `{path}` is missing (at `{key}`)"));
    }
    cur
}

fn str_at<'a>(file: &str, value: &'a Value, path: &str) -> &'a str {
    at(file, value, path).as_str().unwrap_or_else(|| panic!("{file}: `{path}` should be a string"))
}

/// `s.yaml` as shipped (MNS trigger commented out) and with the MNS trigger enabled, the way its
/// header tells users to enable it.
fn s_yaml_variants() -> Vec<(String, Value)> {
    let text = read("s.yaml");
    assert!(text.contains(MNS_MARKER), "s.yaml: the commented MNS trigger (`{MNS_MARKER}`) is missing");
    assert!(text.contains(LINKS_MARKER), "s.yaml: the commented link pages (`{LINKS_MARKER}`) are missing");
    let enabled = text.replace(MNS_MARKER, "");
    let links = text.replace(LINKS_MARKER, "");
    vec![
        ("s.yaml".to_owned(), parse("s.yaml", &text)),
        ("s.yaml (MNS enabled)".to_owned(), parse("s.yaml (MNS enabled)", &enabled)),
        ("s.yaml (links enabled)".to_owned(), parse("s.yaml (links enabled)", &links)),
    ]
}

/// The `props` of every fc3 resource (at least one).
fn fc3_functions(file: &str, doc: &Value) -> Vec<(String, Value)> {
    assert_eq!(str_at(file, doc, "edition"), "3.0.0", "{file}: Serverless Devs edition");
    let resources = at(file, doc, "resources")
        .as_mapping()
        .unwrap_or_else(|| panic!("{file}: `resources` should be a mapping"));
    let functions: Vec<(String, Value)> = resources
        .iter()
        .filter(|(_, r)| r.get("component").and_then(Value::as_str) == Some("fc3"))
        .map(|(name, r)| {
            let name = format!("{file}: resources.{}", name.as_str().unwrap_or("?"));
            let props = at(&name, r, "props").clone();
            (name, props)
        })
        .collect();
    assert!(!functions.is_empty(), "{file}: no fc3 resource");
    functions
}

fn triggers_of_type<'a>(file: &str, props: &'a Value, kind: &str) -> Vec<&'a Value> {
    at(file, props, "triggers")
        .as_sequence()
        .unwrap_or_else(|| panic!("{file}: `triggers` should be a list"))
        .iter()
        .filter(|t| t.get("triggerType").and_then(Value::as_str) == Some(kind))
        .collect()
}

fn template() -> Value {
    parse("template.yml", &read("template.yml"))
}

/// The one `AWS::Serverless::Function` in `template.yml`: (logical id, resource).
fn sam_function(doc: &Value) -> (String, Value) {
    let resources = at("template.yml", doc, "Resources").as_mapping().expect("Resources is a mapping");
    let functions: Vec<_> = resources
        .iter()
        .filter(|(_, r)| r.get("Type").and_then(Value::as_str) == Some("AWS::Serverless::Function"))
        .collect();
    assert_eq!(functions.len(), 1, "template.yml: expected exactly one AWS::Serverless::Function");
    let (id, resource) = functions[0];
    (id.as_str().expect("logical ids are strings").to_owned(), resource.clone())
}

fn env_names(file: &str, vars: &Value) -> BTreeSet<String> {
    vars.as_mapping()
        .unwrap_or_else(|| panic!("{file}: environment variables should be a mapping"))
        .keys()
        .map(|k| k.as_str().unwrap_or_else(|| panic!("{file}: env var names are strings")).to_owned())
        .collect()
}

/// Parameters a CloudFormation value refers to with `!Ref X` or `{Ref: X}` (not `AWS::*`).
fn referenced_parameters(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Tagged(tagged) if tagged.tag == "Ref" => {
            if let Some(name) = tagged.value.as_str() {
                out.push(name.to_owned());
            }
        }
        Value::Tagged(tagged) => referenced_parameters(&tagged.value, out),
        Value::Sequence(items) => items.iter().for_each(|v| referenced_parameters(v, out)),
        Value::Mapping(map) => {
            for (k, v) in map {
                match (k.as_str(), v.as_str()) {
                    (Some("Ref"), Some(name)) => out.push(name.to_owned()),
                    _ => referenced_parameters(v, out),
                }
            }
        }
        _ => {}
    }
    out.retain(|name| !name.starts_with("AWS::"));
}

#[test]
fn fc_starts_the_packaged_bootstrap_on_the_binarys_port() {
    let package = read("scripts/package");
    for (file, doc) in s_yaml_variants() {
        for (name, props) in fc3_functions(&file, &doc) {
            assert_eq!(str_at(&name, &props, "runtime"), "custom.debian10", "{name}: runtime");

            let port = at(&name, &props, "customRuntimeConfig.port").as_u64();
            assert_eq!(port, Some(u64::from(DEFAULT_PORT)), "{name}: customRuntimeConfig.port");

            let command: Vec<&str> = at(&name, &props, "customRuntimeConfig.command")
                .as_sequence()
                .unwrap_or_else(|| panic!("{name}: customRuntimeConfig.command should be a list"))
                .iter()
                .map(|v| v.as_str().unwrap_or("<not a string>"))
                .collect();
            assert_eq!(command, ["/code/bootstrap"], "{name}: customRuntimeConfig.command");
            if let Some(args) = props.get("customRuntimeConfig").and_then(|c| c.get("args")) {
                let first = args.get(0).and_then(Value::as_str);
                assert_eq!(first, Some("serve"), "{name}: the only subcommand FC may start is `serve`");
            }

            // FC unpacks `code` into /code: it must be the directory scripts/package fills.
            let code = str_at(&name, &props, "code");
            let dir = code.trim_start_matches("./").trim_end_matches('/');
            for file in ["bootstrap", "vodhook.toml"] {
                let written = format!("{dir}/{file}");
                assert!(
                    package.contains(&written),
                    "{name}: code is {code}, but scripts/package never writes {written}"
                );
            }
            let config_path = str_at(&name, &props, &format!("environmentVariables.{}", env::CONFIG));
            assert_eq!(config_path, "/code/vodhook.toml", "{name}: {} must be the shipped file", env::CONFIG);
        }
    }
}

#[test]
fn fc_http_trigger_takes_anonymous_posts_and_gets_for_links() {
    for (file, doc) in s_yaml_variants() {
        for (name, props) in fc3_functions(&file, &doc) {
            let http = triggers_of_type(&name, &props, "http");
            assert_eq!(http.len(), 1, "{name}: expected one http trigger");
            // Anonymous: the handler checks VOD's own signature, FC must not demand its own.
            assert_eq!(
                str_at(&name, http[0], "triggerConfig.authType"),
                "anonymous",
                "{name}: http authType"
            );
            let methods: Vec<&str> = at(&name, http[0], "triggerConfig.methods")
                .as_sequence()
                .unwrap_or_else(|| panic!("{name}: http methods should be a list"))
                .iter()
                .filter_map(Value::as_str)
                .collect();
            // VOD callbacks are POSTs; link pages (`/actions/<token>`) are opened with GET.
            let expected: &[&str] = if file.contains("links") { &["POST", "GET"] } else { &["POST"] };
            assert_eq!(methods, expected, "{name}: http methods");
        }
    }
}

#[test]
fn fc_timer_trigger_sends_the_drain_request() {
    let expected: serde_json::Value = serde_json::from_str(DRAIN_PAYLOAD).expect("the constant is JSON");
    for (file, doc) in s_yaml_variants() {
        for (name, props) in fc3_functions(&file, &doc) {
            let timers = triggers_of_type(&name, &props, "timer");
            assert_eq!(timers.len(), 1, "{name}: expected one timer trigger (the outbox drain)");
            let timer = timers[0];
            assert_eq!(
                at(&name, timer, "triggerConfig.enable").as_bool(),
                Some(true),
                "{name}: timer enabled"
            );
            assert!(!str_at(&name, timer, "triggerConfig.cronExpression").trim().is_empty());
            let payload = str_at(&name, timer, "triggerConfig.payload");
            let payload: serde_json::Value = serde_json::from_str(payload)
                .unwrap_or_else(|e| panic!("{name}: timer payload is not JSON ({e}): {payload}"));
            assert_eq!(payload, expected, "{name}: timer payload");
        }
    }
}

#[test]
fn fc_mns_trigger_is_optional_and_posts_json_with_retries() {
    let variants = s_yaml_variants();
    let count = |file: &str, doc: &Value| -> usize {
        fc3_functions(file, doc)
            .iter()
            .map(|(name, props)| triggers_of_type(name, props, "mns_topic").len())
            .sum()
    };
    let (shipped_name, shipped) = &variants[0];
    assert_eq!(count(shipped_name, shipped), 0, "{shipped_name}: `s deploy` must not need an MNS topic");

    let (file, doc) = &variants[1];
    assert_eq!(count(file, doc), 1, "{file}: expected one mns_topic trigger");
    for (name, props) in fc3_functions(file, doc) {
        for mns in triggers_of_type(&name, &props, "mns_topic") {
            // JSON: the handler unwraps FC's MNS envelope; STREAM would hand over the bare body.
            assert_eq!(str_at(&name, mns, "triggerConfig.notifyContentFormat"), "JSON");
            assert_eq!(str_at(&name, mns, "triggerConfig.notifyStrategy"), "EXPONENTIAL_DECAY_RETRY");
            let arn = str_at(&name, mns, "sourceArn");
            assert!(arn.starts_with("acs:mns:") && arn.contains("/topics/"), "{name}: sourceArn {arn}");
        }
    }
}

#[test]
fn sam_function_is_the_same_bootstrap() {
    let doc = template();
    let (id, function) = sam_function(&doc);
    let file = format!("template.yml: Resources.{id}");
    assert_eq!(str_at(&file, &function, "Properties.Runtime"), "provided.al2023");
    assert_eq!(str_at(&file, &function, "Properties.Handler"), "bootstrap");
    // The code is the zip scripts/package writes (the binary and the configuration beside it).
    let code = str_at(&file, &function, "Properties.CodeUri");
    assert_eq!(code, "target/lambda/vodhook.zip", "{file}: CodeUri");
    let package = read("scripts/package");
    assert!(
        package.contains("$out/lambda/vodhook.zip") && package.contains("out=target\n"),
        "scripts/package writes no {code}"
    );
    let binary = Path::new(env!("CARGO_BIN_EXE_vodhook")).file_stem().and_then(|s| s.to_str());
    assert!(
        binary.is_some_and(|b| package.contains(&format!("bin_name={b}\n"))),
        "scripts/package builds another binary"
    );

    // scripts/package builds x86_64 only.
    let arches =
        at(&file, &function, "Properties.Architectures").as_sequence().expect("Architectures is a list");
    assert_eq!(
        arches.iter().filter_map(Value::as_str).collect::<Vec<_>>(),
        ["x86_64"],
        "{file}: Architectures"
    );

    assert_eq!(str_at(&file, &function, "Properties.FunctionUrlConfig.AuthType"), "NONE");
    // SAM names the Function URL resource `<function id>Url`; the output must point at it.
    let outputs = at("template.yml", &doc, "Outputs");
    let url = format!("{id}Url.FunctionUrl");
    let has_url_output = outputs.as_mapping().expect("Outputs is a mapping").values().any(|o| {
        matches!(o.get("Value"), Some(Value::Tagged(t)) if t.tag == "GetAtt" && t.value.as_str() == Some(&url))
    });
    assert!(has_url_output, "template.yml: no output with !GetAtt {url}");
}

#[test]
fn sam_schedule_sends_eventbridges_scheduled_event() {
    let doc = template();
    let (id, function) = sam_function(&doc);
    let file = format!("template.yml: Resources.{id}");
    let events = at(&file, &function, "Properties.Events").as_mapping().expect("Events is a mapping");
    let schedules: Vec<&Value> =
        events.values().filter(|e| e.get("Type").and_then(Value::as_str) == Some("Schedule")).collect();
    assert_eq!(schedules.len(), 1, "{file}: expected one Schedule event (the outbox drain)");
    let props = at(&file, schedules[0], "Properties");
    let rate = str_at(&file, props, "Schedule");
    assert!(rate.starts_with("rate(") || rate.starts_with("cron("), "{file}: Schedule {rate}");
    // With `Input` EventBridge would send that instead of the scheduled event the handler knows.
    assert!(props.get("Input").is_none(), "{file}: the drain schedule must not replace the event with Input");
    assert_ne!(props.get("Enabled").and_then(Value::as_bool), Some(false), "{file}: schedule disabled");
}

#[test]
fn env_var_names_are_ones_the_binary_reads() {
    let mut files: Vec<(String, BTreeSet<String>)> = Vec::new();

    for (file, doc) in s_yaml_variants() {
        for (name, props) in fc3_functions(&file, &doc) {
            let vars = at(&name, &props, "environmentVariables");
            // Secrets come from the deployer's environment, under the same names, never literals.
            for var in SECRET_VARS.iter().chain([&env::CALLBACK_URL]) {
                let value = str_at(&name, vars, var);
                assert_eq!(
                    value,
                    format!("${{env({var})}}"),
                    "{name}: {var} should come from the environment"
                );
            }
            files.push((name, env_names(&file, vars)));
        }
    }

    let doc = template();
    let (id, function) = sam_function(&doc);
    let name = format!("template.yml: Resources.{id}");
    let vars = at(&name, &function, "Properties.Environment.Variables");
    for var in SECRET_VARS {
        let mut params = Vec::new();
        referenced_parameters(at(&name, vars, var), &mut params);
        assert!(!params.is_empty(), "{name}: {var} should come from a parameter");
        for param in params {
            let no_echo = at("template.yml", &doc, &format!("Parameters.{param}")).get("NoEcho");
            assert_eq!(
                no_echo.and_then(Value::as_bool),
                Some(true),
                "template.yml: parameter {param} ({var}) needs NoEcho"
            );
        }
    }
    files.push((name, env_names("template.yml", vars)));

    for (file, names) in &files {
        for var in names.iter().filter(|n| n.starts_with("VODHOOK_")) {
            assert!(BINARY_VARS.contains(&var.as_str()), "{file}: sets {var}, which vodhook does not read");
        }
        for var in REQUIRED_VARS {
            assert!(names.contains(*var), "{file}: {var} is not set");
        }
    }
}

#[test]
fn timeouts_cover_the_delivery_deadlines() {
    let delivery = DeliveryConfig::default();
    let deadline_ms = delivery.invoke_deadline_ms.max(delivery.callback_deadline_ms);
    let check = |name: &str, secs: Option<u64>| {
        let secs = secs.unwrap_or_else(|| panic!("{name}: timeout should be a whole number of seconds"));
        assert!(
            secs * 1000 > deadline_ms,
            "{name}: timeout {secs} s is not above the {deadline_ms} ms deadline"
        );
    };
    for (file, doc) in s_yaml_variants() {
        for (name, props) in fc3_functions(&file, &doc) {
            check(&name, at(&name, &props, "timeout").as_u64());
            let memory = at(&name, &props, "memorySize").as_u64().unwrap_or(0);
            assert!(memory >= 128 && memory.is_multiple_of(64), "{name}: memorySize {memory}");
        }
    }
    let doc = template();
    let (id, function) = sam_function(&doc);
    let name = format!("template.yml: Resources.{id}");
    check(&name, at(&name, &function, "Properties.Timeout").as_u64());
}

/// scripts/package ships this file when the repository has no vodhook.toml, and s.yaml's
/// VODHOOK_CONFIG points at it: it must be a configuration vodhook accepts.
#[test]
fn packaged_default_config_is_a_valid_config() {
    let package = read("scripts/package");
    let start = package
        .find("<<'TOML'\n")
        .expect("scripts/package: the default config heredoc (<<'TOML') is missing");
    let body = &package[start + "<<'TOML'\n".len()..];
    let end = body.find("\nTOML\n").expect("scripts/package: the default config heredoc has no end");
    let parsed: config::Config = toml::from_str(&body[..end])
        .unwrap_or_else(|e| panic!("scripts/package: the default vodhook.toml is not a valid config: {e}"));
    assert!(!parsed.channels.is_empty() && !parsed.routes.is_empty(), "the default config delivers nothing");
}
