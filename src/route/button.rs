//! Buttons (`buttons = ["silence", "watch"]` on a route, else its channel): which a (route,
//! channel) pair carries, checked once at start-up, and the links each message gets.

use serde_json::Value;

use crate::channel::Button;
use crate::config::{ButtonKind, ChannelConfig, Config, DedupBackend, Locale, Problem, RouteConfig};
use crate::event::Event;
use crate::links::{Signer, SilenceLink};
use crate::template::locale::word;

/// The buttons of each of `route`'s channels (same order), with a problem for what cannot work:
/// a signed button without `[links]`, a silence without the store silences live in.
pub fn resolve(
    route: &RouteConfig,
    at: &str,
    channels: &[&ChannelConfig],
    config: &Config,
    problems: &mut Vec<Problem>,
) -> Vec<Vec<ButtonKind>> {
    let per_channel: Vec<Vec<ButtonKind>> = channels
        .iter()
        .map(|c| {
            if c.call().is_some() {
                Vec::new()
            } else {
                route.buttons.clone().unwrap_or_else(|| c.buttons.clone())
            }
        })
        .collect();
    let silences = per_channel.iter().flatten().any(|&k| k == ButtonKind::Silence);
    if silences && config.links.is_none() {
        problems.push(Problem::new(
            format!("{at}.buttons"),
            "\"silence\" is a signed link: it needs [links] base_url and secret",
        ));
    }
    if silences && config.store.backend != DedupBackend::Redis {
        problems.push(Problem::new(
            format!("{at}.buttons"),
            "\"silence\" makes a silence, and silences live in Redis: set [store] backend = \"redis\"",
        ));
    }
    per_channel
}

/// The buttons of one message: `kinds` that apply to `event` (a silence to a failed workflow, a
/// watch link when the video's play URLs are known), labelled in `locale`.
pub fn make(
    kinds: &[ButtonKind],
    event: &Event,
    failed: bool,
    video: Option<&Value>,
    locale: Locale,
    signer: Option<&Signer>,
    now: i64,
) -> Vec<Button> {
    kinds
        .iter()
        .filter_map(|&kind| {
            let url = match kind {
                ButtonKind::Watch => watch_url(video)?,
                ButtonKind::Silence if failed => silence_url(event, locale, signer?, now)?,
                ButtonKind::Silence => return None,
            };
            let label = word(locale, label(kind));
            Some(Button { kind, label, url })
        })
        .collect()
}

fn label(kind: ButtonKind) -> &'static str {
    match kind {
        ButtonKind::Watch => "Watch",
        ButtonKind::Silence => "Silence",
    }
}

/// The first play URL of a video the VOD API found.
fn watch_url(video: Option<&Value>) -> Option<String> {
    let video = video.filter(|v| v["available"] == Value::Bool(true))?;
    video.pointer("/play_urls/0/url")?.as_str().map(str::to_owned)
}

/// A silence of the failed workflow (and its first error code).
fn silence_url(event: &Event, locale: Locale, signer: &Signer, now: i64) -> Option<String> {
    let link = SilenceLink {
        video_id: event.video_id().unwrap_or_default(),
        workflow_id: event.workflow_id()?,
        error_code: event.error_codes().next(),
        title: event.title().unwrap_or_default(),
        locale,
    };
    Some(signer.silence_url(link, now))
}
