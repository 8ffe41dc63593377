//! Quiet hours and silences on the callback path: what a claimed action becomes before it is
//! sent. Silenced (an active silence matches it) → marked done, not sent. Muted (its route's
//! `mute_time_intervals` / `active_time_intervals`) → held in the outbox until the mute ends
//! (on a digest channel as one group per mute, sent as one digest headed with the intervals'
//! names; elsewhere one by one), or dropped (`on_mute = "drop"`, or no outbox to hold it in).
//! Silences are read once per request ([`Dispatcher::active_silences`]).

use super::{Dispatcher, Settled};
use crate::action::{Action, Group};
use crate::config::{OnMute, Span};
use crate::dedup::ClaimToken;
use crate::event::Event;
use crate::quiet::Muted;
use crate::silence::Active;

impl Dispatcher {
    /// The silences active now: one store read, for every action of a request. A store that
    /// cannot be read silences nothing (a message too many beats a lost one), and says so.
    pub(super) async fn active_silences(&self) -> Active {
        let Some(store) = &self.silences else { return Active::default() };
        match store.all().await {
            Ok(all) => Active::at(&all, crate::clock::unix_now()),
            Err(err) => {
                tracing::warn!(error = %err, "could not read the silences: nothing is silenced in this request");
                Active::default()
            }
        }
    }

    /// What the claimed `action` becomes before it is sent, when it is not sent now: silenced,
    /// or muted (held or dropped). `None`: send it.
    pub(super) async fn quieted(
        &self,
        event: &Event,
        action: &Action,
        token: &ClaimToken,
        silences: &Active,
    ) -> Option<Settled> {
        if let Some(id) = silences.silencing(event, &action.route, &action.channel) {
            tracing::info!(key = %action.key, channel = %action.channel, route = %action.route, silence = id, "silenced: not sent");
            self.complete(&action.key, Some(token)).await;
            return Some(Settled::Silenced);
        }
        let muted = self.router.muted(&action.route, crate::clock::unix_now())?;
        let by = muted.muted_by.join(", ");
        if muted.on_mute == OnMute::Hold && self.outbox.is_some() {
            return Some(self.hold_muted(event, action, &muted, token).await);
        }
        if muted.on_mute == OnMute::Hold {
            tracing::warn!(key = %action.key, channel = %action.channel, muted_by = %by, "muted, and no outbox to hold it in: dropped (holding needs [store] backend = \"redis\")");
        } else {
            tracing::info!(key = %action.key, channel = %action.channel, muted_by = %by, "muted: dropped (on_mute = \"drop\")");
        }
        self.complete(&action.key, Some(token)).await;
        Some(Settled::Dropped)
    }

    /// Holds a muted action until its mute ends: on a digest channel in the mute's group (one
    /// digest for all it held), elsewhere on its own; its message rendered now (without play
    /// links: they would expire while it waits).
    async fn hold_muted(&self, event: &Event, action: &Action, muted: &Muted, token: &ClaimToken) -> Settled {
        let by = muted.muted_by.join(", ");
        let Some(mut held) = self.rendered_without_video(event, action, Some(token)).await else {
            return Settled::FailedPermanently;
        };
        held.group = self.holds_for_digest(&action.channel).then(|| Group {
            key: format!("muted|{by}|{}|{}|{}", action.route, action.channel, muted.held_until),
            wait: Span::default(),
            muted_by: Some(by.clone()),
        });
        let until =
            chrono::DateTime::from_timestamp(muted.held_until, 0).map(|t| t.to_rfc3339()).unwrap_or_default();
        let why = format!("muted by {by} until {until}");
        self.park(held, muted.held_until, why, Some(token), Settled::Muted).await
    }
}
