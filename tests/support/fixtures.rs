//! The files under `tests/fixtures/`.

use std::path::{Path, PathBuf};

/// A fixture's path.
pub fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// A fixture's bytes.
pub fn fixture_bytes(name: &str) -> Vec<u8> {
    let path = fixture_path(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A fixture's text.
pub fn fixture(name: &str) -> String {
    String::from_utf8(fixture_bytes(name)).unwrap_or_else(|e| panic!("{name} is not UTF-8: {e}"))
}
