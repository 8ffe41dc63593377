//! A deploy by the README's steps, short of the cloud: `./scripts/package` with the README's own
//! `vodhook.toml` (its hosts pointed at local stand-ins), then the packaged `bootstrap` started
//! with exactly the environment each deploy file declares, read from the file as the platform
//! would: `s.yaml`'s `environmentVariables` with `${env(NAME)}` taken from the deploying shell,
//! `template.yml`'s `Environment.Variables` with its parameters and conditions evaluated. A signed
//! callback must get its 200 and its messages. (The trap this guards against: the README's
//! configuration read `${DINGTALK_TOKEN}` and friends, which neither deploy file passed, so the
//! deployed function refused to start.)

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_norway::Value;
use support::process::{Process, free_port, vodhook_path, wait_accepting};
use support::redis::RedisServer;
use support::standins::StandIn;
use vodhook::channel::ChannelType;

const KEY: &str = "deploy-k3y-51c0e7";
const CALLBACK_URL: &str = "https://vodhook.example.com/callback";

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn yaml(path: &str) -> Value {
    let text = std::fs::read_to_string(repo(path)).expect("read the deploy file");
    serde_norway::from_str(&text).expect("the deploy file is YAML")
}

/// `./scripts/package --binary <the tests' vodhook> --config <config> --out <out>`.
fn package(config: &Path, out: &Path) -> std::process::Output {
    Command::new(repo("scripts/package"))
        .args(["--binary", vodhook_path(), "--out"])
        .arg(out)
        .arg("--config")
        .arg(config)
        .output()
        .expect("run scripts/package")
}

/// The README's configuration, its services' hosts pointed at the stand-ins.
fn readme_config(ding: &StandIn, hook: &StandIn) -> String {
    let readme = std::fs::read_to_string(repo("examples/readme.toml")).expect("examples/readme.toml");
    let ding_base = ding.url().split("/robot").next().expect("a DingTalk stand-in URL").to_owned();
    readme
        .replace("https://oapi.dingtalk.com", &ding_base)
        .replace("https://ci.example.com/hooks/vod", hook.url())
        .replace("https://vod-hook.example.com/callback", CALLBACK_URL)
}

/// The deploying shell: a value for every variable the deploy files take from it.
fn shell(ding: &StandIn, hook: &StandIn, redis: &RedisServer) -> BTreeMap<&'static str, String> {
    BTreeMap::from([
        ("VODHOOK_CALLBACK_URL", CALLBACK_URL.to_owned()),
        ("VODHOOK_AUTH_KEY", KEY.to_owned()),
        ("DINGTALK_TOKEN", ding.token().to_owned()),
        ("DINGTALK_SECRET", ding.secret().expect("a DingTalk secret").to_owned()),
        ("WEBHOOK_SECRET", hook.secret().expect("a webhook secret").to_owned()),
        ("REDIS_URL", redis.url()),
    ])
}

/// `s.yaml`'s environment for the function, as Serverless Devs makes it: `${env(NAME)}` from the
/// deploying shell (empty when unset), literals as they are.
fn fc_environment(shell: &BTreeMap<&str, String>) -> BTreeMap<String, String> {
    let doc = yaml("s.yaml");
    let vars = &doc["resources"]["vodhook"]["props"]["environmentVariables"];
    let mapping = vars.as_mapping().expect("s.yaml: environmentVariables is a mapping");
    mapping
        .iter()
        .map(|(k, v)| {
            let name = k.as_str().expect("a variable name").to_owned();
            let raw = v.as_str().expect("a string value");
            let value = match raw.strip_prefix("${env(").and_then(|r| r.strip_suffix(")}")) {
                Some(from) => shell.get(from).cloned().unwrap_or_default(),
                None => raw.to_owned(),
            };
            (name, value)
        })
        .collect()
}

/// Evaluates the CloudFormation intrinsics `template.yml` uses for its variables: `!Ref`, `!If`,
/// `!Not`, `!Equals` (and `AWS::NoValue`, which leaves the variable out).
fn evaluate(value: &Value, params: &BTreeMap<String, String>, conditions: &Value) -> Option<String> {
    let Value::Tagged(tagged) = value else { return value.as_str().map(str::to_owned) };
    let args = |n: usize| tagged.value.as_sequence().and_then(|s| s.get(n)).expect("an intrinsic's argument");
    match tagged.tag.to_string().trim_start_matches('!') {
        "Ref" => match tagged.value.as_str().expect("!Ref names a parameter") {
            "AWS::NoValue" => None,
            name => Some(params.get(name).cloned().unwrap_or_default()),
        },
        "If" => {
            let condition = args(0).as_str().expect("!If names a condition");
            let holds = evaluate(&conditions[condition], params, conditions).as_deref() == Some("true");
            evaluate(args(if holds { 1 } else { 2 }), params, conditions)
        }
        "Not" => Some((evaluate(args(0), params, conditions).as_deref() != Some("true")).to_string()),
        "Equals" => {
            Some((evaluate(args(0), params, conditions) == evaluate(args(1), params, conditions)).to_string())
        }
        other => panic!("template.yml: intrinsic {other} is not evaluated here"),
    }
}

/// `template.yml`'s environment for the function, given what `sam deploy --guided` was told:
/// each parameter whose variable the shell has gets that value, the rest their defaults.
fn lambda_environment(shell: &BTreeMap<&str, String>) -> BTreeMap<String, String> {
    let doc = yaml("template.yml");
    let function = &doc["Resources"]["VodhookFunction"]["Properties"];
    let vars = function["Environment"]["Variables"].as_mapping().expect("Environment.Variables");
    // Parameter → the variable it feeds (`VAR: !If [Has…, !Ref Param, …]`).
    let mut params: BTreeMap<String, String> = BTreeMap::new();
    for (name, parameter) in doc["Parameters"].as_mapping().expect("Parameters") {
        let default = parameter["Default"].as_str().unwrap_or_default().to_owned();
        params.insert(name.as_str().expect("a parameter name").to_owned(), default);
    }
    for (var, value) in vars {
        let var = var.as_str().expect("a variable name");
        if let (Some(given), Some(param)) = (shell.get(var), referenced_parameter(value)) {
            params.insert(param, given.clone());
        }
    }
    vars.iter()
        .filter_map(|(k, v)| Some((k.as_str()?.to_owned(), evaluate(v, &params, &doc["Conditions"])?)))
        .collect()
}

/// The parameter a variable's value refers to with `!Ref`, if one.
fn referenced_parameter(value: &Value) -> Option<String> {
    match value {
        Value::Tagged(t) if t.tag.to_string().trim_start_matches('!') == "Ref" => {
            t.value.as_str().filter(|n| !n.starts_with("AWS::")).map(str::to_owned)
        }
        Value::Tagged(t) => referenced_parameter(&t.value),
        Value::Sequence(items) => items.iter().find_map(referenced_parameter),
        _ => None,
    }
}

/// Starts the packaged bootstrap in `dir` with exactly `env` (and nothing else of this process's
/// environment but PATH), answers one signed Failed callback, and returns the process.
async fn start_and_call(dir: &Path, env: &BTreeMap<String, String>, port: u16) -> (Process, u16) {
    let mut command = Command::new(dir.join("bootstrap"));
    command.current_dir(dir).env_clear().env("PATH", std::env::var("PATH").unwrap_or_default());
    command.envs(env);
    let mut process = Process::spawn("packaged bootstrap", command);
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    assert!(
        wait_accepting(&mut process, addr),
        "the packaged bootstrap did not start:\n{}",
        process.logs.text()
    );
    let mut event: serde_json::Value = serde_json::from_str(vodhook::samples::FAILED).unwrap();
    event["TaskId"] = serde_json::json!(format!("deployed-{port}"));
    let headers = support::vod_headers(CALLBACK_URL, KEY, support::unix_now());
    let answer = support::post(&format!("http://{addr}/"), event.to_string(), &headers).await;
    assert_eq!(answer.status, 200, "{}\n{}", answer.text, process.logs.text());
    (process, answer.json["delivered"].as_u64().unwrap_or(0) as u16)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_packaged_bootstrap_starts_with_each_deploy_files_environment() {
    let redis = tokio::task::block_in_place(RedisServer::start);
    let ding = StandIn::start(ChannelType::Dingtalk).await;
    let hook = StandIn::start(ChannelType::Webhook).await;
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("vodhook.toml");
    std::fs::write(&config, readme_config(&ding, &hook)).unwrap();
    let out = work.path().join("package");
    let packaged = tokio::task::block_in_place(|| package(&config, &out));
    let said =
        format!("{}{}", String::from_utf8_lossy(&packaged.stdout), String::from_utf8_lossy(&packaged.stderr));
    assert!(packaged.status.success(), "{said}");
    assert!(said.contains("ok: every one is set: DINGTALK_SECRET DINGTALK_TOKEN REDIS_URL"), "{said}");
    let shell = shell(&ding, &hook, &redis);

    // Function Compute: /code is where FC unpacks `code`; here, the package's fc directory.
    let fc_dir = out.join("fc");
    let mut env = fc_environment(&shell);
    let shipped = env.get("VODHOOK_CONFIG").expect("s.yaml sets VODHOOK_CONFIG").replace("/code/", "");
    env.insert("VODHOOK_CONFIG".into(), fc_dir.join(shipped).to_string_lossy().into_owned());
    let port = free_port();
    env.insert("FC_SERVER_PORT".into(), port.to_string());
    env.insert("VODHOOK_LISTEN".into(), format!("127.0.0.1:{port}"));
    let (_fc, delivered) = start_and_call(&fc_dir, &env, port).await;
    assert_eq!(delivered, 2, "the DingTalk message and the webhook");

    // Lambda: the zip unpacked as /var/task is, run as a plain server (the Lambda runtime API is
    // tests/lambda.rs's business): what matters here is the environment and the shipped file.
    let task = work.path().join("var-task");
    std::fs::create_dir_all(&task).unwrap();
    let unzip = Command::new("python3")
        .args(["-c", "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])"])
        .arg(out.join("lambda/vodhook.zip"))
        .arg(&task)
        .status()
        .expect("unzip");
    assert!(unzip.success());
    Command::new("chmod").arg("+x").arg(task.join("bootstrap")).status().expect("chmod");
    let mut env = lambda_environment(&shell);
    let port = free_port();
    env.insert("VODHOOK_LISTEN".into(), format!("127.0.0.1:{port}"));
    let (_lambda, delivered) = start_and_call(&task, &env, port).await;
    assert_eq!(delivered, 2, "the DingTalk message and the webhook");
    assert_eq!(ding.received().len(), 2);
    assert_eq!(hook.received().len(), 2);
}

/// A configuration that reads a variable neither deploy file sets is refused by the package
/// step, naming the variable and the files; no configuration at all needs `--builtin`.
#[test]
fn packaging_refuses_what_the_deployed_function_could_not_start_with() {
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("vodhook.toml");
    std::fs::write(
        &config,
        "[[channels]]\nname = \"ops\"\ntype = \"wecom\"\nurl = \"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=${WECOM_ROBOT_KEY}\"\n\n[[routes]]\nname = \"all\"\nchannels = [\"ops\"]\n",
    )
    .unwrap();
    let out = work.path().join("package");
    let refused = package(&config, &out);
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success(), "{said}");
    assert!(
        said.contains("s.yaml:WECOM_ROBOT_KEY") && said.contains("template.yml:WECOM_ROBOT_KEY"),
        "{said}"
    );
    assert!(!out.join("fc/bootstrap").exists(), "packaged anyway");

    // No configuration: refused, unless --builtin.
    let empty = tempfile::tempdir().unwrap();
    let copy = empty.path().join("scripts");
    std::fs::create_dir_all(&copy).unwrap();
    std::fs::copy(repo("scripts/package"), copy.join("package")).unwrap();
    let run = |extra: &[&str]| {
        Command::new(copy.join("package"))
            .args(["--binary", vodhook_path(), "--out"])
            .arg(empty.path().join("out"))
            .args(extra)
            .output()
            .expect("run scripts/package")
    };
    let refused = run(&[]);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("no ./vodhook.toml"), "{refused:?}");
    let builtin = run(&["--builtin"]);
    assert!(builtin.status.success(), "{builtin:?}");
    assert!(empty.path().join("out/fc/vodhook.toml").is_file());
}
