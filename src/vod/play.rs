//! `GetPlayInfo`: where to watch a video — its play URLs (one per definition and format, signed
//! when URL authentication is on, valid for `AuthTimeout` seconds) and its cover — as templates
//! see it (`video`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::number;

/// What messages say of a video (the template variable `video`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoInfo {
    pub video_id: String,
    pub title: Option<String>,
    pub cover_url: Option<String>,
    pub status: Option<String>,
    pub duration_secs: Option<f64>,
    pub play_urls: Vec<PlayUrl>,
    /// Until when signed play URLs work (RFC 3339, UTC): the call's time plus `AuthTimeout`.
    pub expires_at: String,
}

/// One stream of the video.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlayUrl {
    pub url: String,
    /// `FD`, `LD`, `SD`, `HD`, `OD`, `2K`, `4K`, ...
    pub definition: Option<String>,
    pub format: Option<String>,
    pub width: Option<u64>,
    pub height: Option<u64>,
    pub duration_secs: Option<f64>,
    pub size: Option<u64>,
    pub bitrate: Option<f64>,
}

/// The `GetPlayInfo` parameters for `video_id`.
pub fn request(video_id: &str, config: &crate::config::VodConfig) -> Vec<(String, String)> {
    let mut params = vec![
        ("VideoId".to_owned(), video_id.to_owned()),
        ("AuthTimeout".to_owned(), config.auth_timeout_secs.to_string()),
    ];
    if let Some(output) = &config.output_type {
        params.push(("OutputType".to_owned(), output.clone()));
    }
    if let Some(formats) = &config.formats {
        params.push(("Formats".to_owned(), formats.clone()));
    }
    params
}

/// Reads a `GetPlayInfo` answer; `expires_at` is when its signed URLs stop working. An error
/// names what is missing.
pub fn parse(video_id: &str, answer: &Value, expires_at: String) -> Result<VideoInfo, String> {
    let text = |v: &Value, name: &str| v.get(name).and_then(Value::as_str).map(str::to_owned);
    let base = answer.get("VideoBase").unwrap_or(&Value::Null);
    let list = answer
        .pointer("/PlayInfoList/PlayInfo")
        .and_then(Value::as_array)
        .ok_or_else(|| "GetPlayInfo answered without PlayInfoList.PlayInfo".to_owned())?;
    let play_urls = list
        .iter()
        .filter_map(|p| {
            Some(PlayUrl {
                url: text(p, "PlayURL")?,
                definition: text(p, "Definition"),
                format: text(p, "Format"),
                width: p.get("Width").and_then(number).map(|n| n as u64),
                height: p.get("Height").and_then(number).map(|n| n as u64),
                duration_secs: p.get("Duration").and_then(number),
                size: p.get("Size").and_then(number).map(|n| n as u64),
                bitrate: p.get("Bitrate").and_then(number),
            })
        })
        .collect();
    Ok(VideoInfo {
        video_id: video_id.to_owned(),
        title: text(base, "Title"),
        cover_url: text(base, "CoverURL"),
        status: text(base, "Status"),
        duration_secs: base.get("Duration").and_then(number),
        play_urls,
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_answer_reads_with_numbers_as_strings() {
        let answer = serde_json::json!({
            "RequestId": "r",
            "VideoBase": {"CoverURL": "https://img.example.com/c.jpg?auth_key=1-0-0-x", "Title": "t", "Duration": "135.6", "Status": "Normal"},
            "PlayInfoList": {"PlayInfo": [
                {"PlayURL": "https://v.example.com/a_b.m3u8?auth_key=1-0-0-a&x=1", "Definition": "FD", "Format": "m3u8", "Width": 640, "Height": "360", "Size": "1234", "Bitrate": "450.5", "Duration": "135.6"},
                {"Definition": "LD"}
            ]}
        });
        let info = parse("v1", &answer, "2026-12-02T16:00:00Z".into()).unwrap();
        assert_eq!(info.play_urls.len(), 1, "an entry without a URL is skipped");
        let p = &info.play_urls[0];
        assert_eq!((p.width, p.height, p.size, p.bitrate), (Some(640), Some(360), Some(1234), Some(450.5)));
        assert_eq!(info.duration_secs, Some(135.6));
        assert!(parse("v1", &serde_json::json!({}), String::new()).is_err());
    }
}
