//! Silences: "send nothing that matches these matchers until then", made from the command line
//! (`vodhook silence add|list|expire`), as Alertmanager's `amtool silence` makes them, and kept
//! in the shared store so that every instance sees the same ones ([`store`]).
//!
//! A silence's matchers are the routes' (same syntax and meaning, `crate::route::matcher`) over
//! the same event fields, plus `error_code` (any failed node's code) and where the action goes:
//! `route` and `channel`. An action is silenced when every matcher of an active silence
//! matches it; it is then not sent, but marked done (Alertmanager's meaning: a silenced
//! notification is not sent later either).

pub mod store;

use serde::{Deserialize, Serialize};

use crate::config::Span;
use crate::event::Event;
use crate::route::Matcher;
use crate::route::matcher::Field;

/// Expired silences are kept this long (for `silence list --expired`), then deleted.
pub const KEEP_EXPIRED_SECS: i64 = 5 * 86_400;

/// The most silences the store keeps (active, pending and recently expired): every callback
/// reads them all once, so their number is bounded.
pub const MAX_SILENCES: usize = 1_000;

/// One silence, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silence {
    pub id: String,
    /// As written (`workflow_id="wf-1"`), parsed again when read.
    pub matchers: Vec<String>,
    /// Unix seconds.
    pub starts_at: i64,
    pub ends_at: i64,
    pub author: String,
    pub comment: String,
    pub created_at: i64,
}

/// Where a silence is in its life at an instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Pending,
    Active,
    Expired,
}

impl Silence {
    /// A silence of `matchers` from `now` for `span`, each matcher checked (the reason for the
    /// first that is wrong, naming it).
    pub fn new(
        matchers: &[String],
        span: Span,
        author: &str,
        comment: &str,
        now: i64,
    ) -> Result<Silence, String> {
        if matchers.is_empty() {
            return Err(
                "a silence needs at least one --matcher (e.g. --matcher 'workflow_id=\"wf-1\"')".to_owned()
            );
        }
        let compiled = compile(matchers)?;
        if compiled.iter().all(Matcher::matches_empty) {
            return Err(
                "every matcher matches an empty value, so the silence would silence everything: give one that needs a value (e.g. workflow_id=\"wf-1\")"
                    .to_owned(),
            );
        }
        let secs = i64::try_from(span.as_duration().as_secs()).unwrap_or(i64::MAX);
        if secs == 0 {
            return Err(format!("--for {span}: a silence must last at least 1s"));
        }
        Ok(Silence {
            id: crate::unique::hex(),
            matchers: compiled.iter().map(ToString::to_string).collect(),
            starts_at: now,
            ends_at: now.saturating_add(secs),
            author: author.to_owned(),
            comment: comment.to_owned(),
            created_at: now,
        })
    }

    pub fn state(&self, now: i64) -> State {
        if now < self.starts_at {
            State::Pending
        } else if now < self.ends_at {
            State::Active
        } else {
            State::Expired
        }
    }
}

/// `matchers`, parsed with the silence fields; the first that does not parse, named.
fn compile(matchers: &[String]) -> Result<Vec<Matcher>, String> {
    matchers
        .iter()
        .map(|text| Matcher::parse_in(text, &Field::SILENCE).map_err(|e| format!("--matcher {text:?}: {e}")))
        .collect()
}

/// The silences active at one instant, their matchers compiled: what a request checks its
/// actions against (read once per request).
#[derive(Debug, Default)]
pub struct Active {
    silences: Vec<(String, Vec<Matcher>)>,
}

impl Active {
    /// The silences of `all` active at `now`; one whose matchers no longer parse is skipped
    /// (and logged).
    pub fn at(all: &[Silence], now: i64) -> Active {
        let active = all.iter().filter(|s| s.state(now) == State::Active);
        let silences = active.filter_map(|s| match compile(&s.matchers) {
            Ok(matchers) => Some((s.id.clone(), matchers)),
            Err(err) => {
                tracing::warn!(silence = %s.id, error = %err, "a stored silence does not parse: ignored");
                None
            }
        });
        Active { silences: silences.collect() }
    }

    pub fn is_empty(&self) -> bool {
        self.silences.is_empty()
    }

    /// The id of the first active silence matching the action that sends `event` through
    /// `route` to `channel`.
    pub fn silencing(&self, event: &Event, route: &str, channel: &str) -> Option<&str> {
        let matching = |(_, matchers): &&(String, Vec<Matcher>)| {
            matchers.iter().all(|m| m.matches_action(event, route, channel))
        };
        self.silences.iter().find(matching).map(|(id, _)| id.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::decode_delivery;

    fn span(text: &str) -> Span {
        text.parse().unwrap()
    }

    fn failed() -> Event {
        decode_delivery(crate::samples::FAILED.as_bytes()).unwrap().events.remove(0)
    }

    #[test]
    fn matching_takes_every_matcher_error_codes_routes_and_channels() {
        let event = failed();
        let code = event.error_codes().next().expect("the failed sample has an error code").to_owned();
        let workflow = event.workflow_id().unwrap().to_owned();
        let make = |m: &[&str]| {
            let matchers: Vec<String> = m.iter().map(|s| (*s).to_owned()).collect();
            Silence::new(&matchers, span("2h"), "me", "why", 1_000).unwrap()
        };
        let both =
            make(&[&format!("workflow_id=\"{workflow}\""), &format!("error_code=~\"{}.*\"", &code[..3])]);
        let other_code = make(&[&format!("workflow_id=\"{workflow}\""), "error_code=\"Nope\""]);
        let channel = make(&["channel=\"ops\"", "status=\"Failed\""]);
        let active = Active::at(&[other_code, both.clone(), channel.clone()], 2_000);
        assert_eq!(active.silencing(&event, "failures", "chat"), Some(both.id.as_str()));
        let only_channel = Active::at(std::slice::from_ref(&channel), 2_000);
        assert_eq!(only_channel.silencing(&event, "failures", "ops"), Some(channel.id.as_str()));
        assert_eq!(only_channel.silencing(&event, "failures", "chat"), None);
        // Before it starts and after it ends, it silences nothing.
        assert!(Active::at(std::slice::from_ref(&both), 999).is_empty());
        assert!(Active::at(std::slice::from_ref(&both), 1_000 + 7_200).is_empty());
        assert_eq!(both.state(1_000 + 7_199), State::Active);
    }

    #[test]
    fn bad_silences_are_refused_with_the_reason() {
        let new = |m: &[&str], d: &str| {
            let matchers: Vec<String> = m.iter().map(|s| (*s).to_owned()).collect();
            Silence::new(&matchers, span(d), "", "", 0).unwrap_err()
        };
        assert!(new(&[], "1h").contains("at least one --matcher"));
        assert!(
            new(&["workflw_id=\"x\""], "1h").contains("unknown field `workflw_id`"),
            "{}",
            new(&["workflw_id=\"x\""], "1h")
        );
        assert!(new(&["error_code=~\"(\""], "1h").contains("invalid regex"));
        assert!(new(&["workflow_id=~\".*\""], "1h").contains("would silence everything"));
        assert!(new(&["workflow_id=\"x\""], "0s").contains("at least 1s"));
    }
}
