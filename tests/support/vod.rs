//! Acting as VOD: its callback signature, computed here from the documented formula
//! independently of `vodhook::auth`, so a mistake there cannot hide itself.

/// Unix seconds now (the clock VOD signs with).
pub fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970").as_secs()
        as i64
}

/// Lowercase hex MD5 of `<callback URL>|<timestamp>|<auth key>`.
pub fn vod_signature(callback_url: &str, timestamp: i64, key: &str) -> String {
    use md5::Digest;
    let digest = md5::Md5::digest(format!("{callback_url}|{timestamp}|{key}").as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The headers VOD sends with a callback to `callback_url` signed at `timestamp`.
pub fn vod_headers(callback_url: &str, key: &str, timestamp: i64) -> Vec<(&'static str, String)> {
    vec![
        ("x-vod-timestamp", timestamp.to_string()),
        ("x-vod-signature", vod_signature(callback_url, timestamp, key)),
    ]
}
