//! Python tools from `target/venv` (which ./scripts/test creates): the reference parsers and
//! validators some tests check vodhook's output with.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs `script` with `target/venv`'s Python, `input` on stdin; its stdout. Panics, with its
/// stderr, when it fails.
pub fn run(script: &str, args: &[&str], input: &str) -> String {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/venv/bin/python");
    let mut child = Command::new(&python)
        .arg("-c")
        .arg(script)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e} (./scripts/test creates the venv)", python.display()));
    child.stdin.take().expect("stdin").write_all(input.as_bytes()).expect("write stdin");
    let output = child.wait_with_output().expect("python ran");
    assert!(output.status.success(), "python failed:\n{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}
