//! Buttons (`buttons = ["silence", "watch"]` on a route, else its channel): which a (route,
//! channel) pair carries, checked once at start-up, and the links each message gets.

use serde_json::Value;

use crate::channel::Button;
use crate::config::{ButtonKind, ChannelConfig, Config, DedupBackend, Locale, Problem, RouteConfig};
use crate::event::Event;
use crate::signed_link::{Act, Failure, Signer};
use crate::template::digest::Group;
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
    let signed = per_channel.iter().flatten().find(|&&k| k != ButtonKind::Watch);
    if let (Some(kind), None) = (signed, &config.links) {
        problems.push(Problem::new(
            format!("{at}.buttons"),
            format!("{:?} is a signed link: it needs [links] base_url and secret", kind.as_str()),
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
                ButtonKind::Silence if failed => signed(Act::Silence, event, locale, signer?, now)?,
                ButtonKind::Rerun if failed => signed(Act::Rerun, event, locale, signer?, now)?,
                ButtonKind::Silence | ButtonKind::Rerun => return None,
            };
            let label = word(locale, label(kind));
            Some(Button { kind, label, url })
        })
        .collect()
}

/// The most buttons a digest carries: a silence for each of its first failed groups.
pub const MAX_DIGEST_BUTTONS: usize = 5;

/// The buttons of a digest: a silence for each (workflow, error code) of its failed `groups`,
/// largest first, at most [`MAX_DIGEST_BUTTONS`]. A re-run or watch link acts on one video,
/// so those stay on the events' own messages.
pub fn for_digest(groups: &[Group<'_>], locale: Locale, signer: &Signer, now: i64) -> Vec<Button> {
    let mut seen: Vec<(&str, Option<&str>)> = Vec::new();
    let mut buttons = Vec::new();
    for group in groups.iter().filter(|g| g.failed) {
        for brief in &group.items {
            let Some(workflow_id) = brief.workflow_id.as_deref() else { continue };
            if buttons.len() == MAX_DIGEST_BUTTONS || seen.contains(&(workflow_id, group.error_code)) {
                continue;
            }
            seen.push((workflow_id, group.error_code));
            let failure = Failure {
                video_id: brief.video_id.as_deref().unwrap_or_default(),
                workflow_id,
                error_code: group.error_code,
                title: brief.title.as_deref().unwrap_or_default(),
                locale,
            };
            let label = format!(
                "{} {} · {workflow_id}",
                word(locale, label(ButtonKind::Silence)),
                group.error_code.unwrap_or_default()
            );
            buttons.push(Button {
                kind: ButtonKind::Silence,
                label,
                url: signer.url(Act::Silence, failure, now),
            });
        }
    }
    buttons
}

fn label(kind: ButtonKind) -> &'static str {
    match kind {
        ButtonKind::Watch => "Watch",
        ButtonKind::Silence => "Silence",
        ButtonKind::Rerun => "Re-run",
    }
}

/// The first play URL of a video the VOD API found.
fn watch_url(video: Option<&Value>) -> Option<String> {
    let video = video.filter(|v| v["available"] == Value::Bool(true))?;
    video.pointer("/play_urls/0/url")?.as_str().map(str::to_owned)
}

/// A signed link doing `act` for the failed workflow (and, for a silence, its first error code).
fn signed(act: Act, event: &Event, locale: Locale, signer: &Signer, now: i64) -> Option<String> {
    let failure = Failure {
        video_id: event.video_id().unwrap_or_default(),
        workflow_id: event.workflow_id()?,
        error_code: event.error_codes().next(),
        title: event.title().unwrap_or_default(),
        locale,
    };
    if act == Act::Rerun && failure.video_id.is_empty() {
        return None;
    }
    Some(signer.url(act, failure, now))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::config::LinksConfig;
    use crate::redact::Secret;
    use crate::signed_link::{Link, Refused};

    fn signer() -> Signer {
        let config: LinksConfig = toml::from_str(
            "base_url = \"https://v.example.com/\"\nsecret = \"0123456789abcdef0123456789abcdef\"",
        )
        .unwrap();
        Signer::new(&config)
    }

    fn event(sample: &str) -> Event {
        crate::event::decode_delivery(sample.as_bytes()).unwrap().events.remove(0)
    }

    #[test]
    fn a_failure_gets_signed_links_a_video_with_play_urls_a_watch_link() {
        let all = [ButtonKind::Silence, ButtonKind::Rerun, ButtonKind::Watch];
        let failed = event(crate::samples::FAILED);
        let buttons = make(&all, &failed, true, None, Locale::ZhCn, Some(&signer()), 1_000);
        let labels: Vec<&str> = buttons.iter().map(|b| b.label.as_str()).collect();
        assert_eq!(labels, ["静默", "重新运行"], "no play URLs, no watch button");
        let token = buttons[1].url.strip_prefix("https://v.example.com/actions/").unwrap();
        let secret = Secret::new("0123456789abcdef0123456789abcdef");
        let link = Link::verify(token, &[&secret], 1_000).unwrap();
        assert_eq!(
            (link.video_id.as_str(), link.workflow_id.as_str()),
            ("a1b2c3d4e5f60718293a4b5c6d7e8f90", "wf-6f2a0c1d9e8b4d3a")
        );
        assert_eq!(link.expires_at, 1_000 + 72 * 3600);
        assert!(matches!(Link::verify(token, &[&secret], 1_000 + 72 * 3600), Err(Refused::Expired(_))));

        let video = json!({"available": true, "play_urls": [{"url": "https://cdn.example.com/v.m3u8"}]});
        let succeeded = event(crate::samples::SUCCEED);
        let buttons = make(&all, &succeeded, false, Some(&video), Locale::En, Some(&signer()), 0);
        assert_eq!(buttons.len(), 1, "a success is neither silenced nor re-run: {buttons:?}");
        assert_eq!(
            (buttons[0].label.as_str(), buttons[0].url.as_str()),
            ("Watch", "https://cdn.example.com/v.m3u8")
        );
        let unavailable = json!({"available": false, "reason": "timeout"});
        assert!(make(&all, &succeeded, false, Some(&unavailable), Locale::En, None, 0).is_empty());
        assert!(
            make(&all, &failed, true, None, Locale::En, None, 0).is_empty(),
            "no [links], no signed buttons"
        );
    }
}
