//! Digest rounds: the actions held for a chat channel (its budget was spent), sent as few merged
//! messages as the service's size limit allows, when budget is back. Whoever finds budget and
//! waiting actions first runs a round: a callback that just held or joined a backlog, and every
//! drain (the FC timer, the Lambda schedule), so a burst drains within about a minute even where
//! instances are frozen between requests.
//!
//! # One round
//!
//! 1. **Peek** at the budget: spent or blocked → nothing to do (no item is touched).
//! 2. **Clear the backlog mark**, then **take** the channel's due items from the outbox (leased
//!    for `[outbox] take_lease_secs`, as a drain takes: two rounds never get the same item). The
//!    order matters: an instance holding an action pushes it first and marks second, so a
//!    round either takes it or leaves the mark for the next round.
//! 3. **Claim** each item's action in the dedup store, like every send. Done already (a
//!    duplicate callback got through) → dropped from the outbox; held by someone else → left.
//! 4. **Cut** the claimed actions, grouped, into messages: each the largest run of actions whose
//!    digest fits the service's limit whole (a digest is never cut short: every action it names
//!    counts as delivered). One action alone goes as its own message, exactly as it would have.
//! 5. For each message: **take** one message of budget (none left → the rest go back, due now,
//!    and the mark is set again), send, and settle every action it covers: delivered → each
//!    marked done in the dedup store once and removed from the outbox; "too fast" → the channel
//!    is blocked and everything goes back; another failure → a failed round for each (its outbox
//!    schedule, or the dead letters).
//!
//! # Exactly once, when an instance dies mid-digest
//!
//! What a round holds while it runs: the take lease on each item (the outbox) and a claim on
//! each action (the dedup store, `[store] lease_ms`). Neither is released by a dead instance;
//! both expire. So:
//!
//! - Died before sending, or while the request was in flight and the service never answered
//!   it: the claims and take leases run out, the items are due again, and the next round sends
//!   them — nothing is lost.
//! - Died after the service accepted the digest but before its actions were marked done (one
//!   Redis round trip): the next round sends them again. This is the one window in which an
//!   event can reach a channel twice; chat services accept no idempotency key that would close
//!   it. Nothing that vodhook saw accepted is ever sent again: once marked done, a duplicate
//!   callback or a later round finds `AlreadyDone` and sends nothing.
//! - A round that overruns its take lease may meet a second round on the same items: the claims
//!   keep them apart (an action claimed by another is left out of this round's digest).

use std::time::Instant;

use futures_util::stream::{self, StreamExt};
use serde_json::Value;

use super::vod::RequestScope;
use super::{Dispatcher, MIN_ATTEMPT};
use crate::action::Action;
use crate::channel::Outcome;
use crate::config::{ChannelConfig, Mentions};
use crate::dedup::{Claim, ClaimToken};
use crate::dispatch::budget::{Mode, Take};
use crate::outbox::{Channels, Next, Outbox, OutboxItem, next_due};
use crate::template::digest::{Brief, grouped_order};

/// What one digest round did.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Round {
    /// Messages sent (digests, and single actions a round sent on their own).
    pub messages: usize,
    /// Actions those messages covered.
    pub covered: usize,
    pub rescheduled: usize,
    pub dead_lettered: usize,
}

/// A taken item and the claim on its action (`None`: the dedup store was unreachable).
struct Entry {
    item: OutboxItem,
    token: Option<ClaimToken>,
}

impl Entry {
    fn key(&self) -> &str {
        &self.item.action.key
    }
}

/// How sending one message of a round ended.
enum Step {
    /// Go on with the next message.
    Next,
    /// Stop the round: this message's actions and the rest go back, untried.
    Stop,
    /// Stop the round: this message's actions are settled (a failed round each), the rest goes
    /// back.
    StopAfter,
}

impl Dispatcher {
    /// One digest round for `channel`, within `deadline` (see the module documentation).
    pub(super) async fn digest_round(&self, channel: &str, deadline: Instant) -> Round {
        let mut round = Round::default();
        let (Some(outbox), Some(config)) = (&self.outbox, self.channels.get(channel)) else {
            return round;
        };
        if !self.budgets.take(channel, Mode::Peek).await.open() {
            return round;
        }
        self.budgets.set_backlog(channel, false).await;
        let names = [channel.to_owned()];
        let limit = self.timing.digest_max_actions;
        let items = match outbox.take_due_for(crate::clock::unix_now(), limit, Channels::Only(&names)).await {
            Ok(items) => items,
            Err(err) => {
                tracing::warn!(channel, error = %err, "could not take the actions waiting for a digest");
                self.budgets.set_backlog(channel, true).await;
                return round;
            }
        };
        if items.is_empty() {
            return round;
        }
        let more_waiting = items.len() >= limit;
        let entries = self.claim_all(outbox, items).await;
        let left = self.send_runs(outbox, config, split_groups(entries), deadline, &mut round).await;
        if !left.is_empty() {
            self.put_back(outbox, channel, &left).await;
        } else if more_waiting {
            self.budgets.set_backlog(channel, true).await;
        }
        round
    }

    /// The due members of groups (`group_by`) on channels without digests (webhooks, logs): one
    /// round per channel, each group one document (or as few as fit).
    pub(super) async fn group_round(
        &self,
        outbox: &Outbox,
        items: Vec<OutboxItem>,
        deadline: Instant,
    ) -> Round {
        let mut round = Round::default();
        let mut by_channel: Vec<(String, Vec<OutboxItem>)> = Vec::new();
        for item in items {
            match by_channel.iter_mut().find(|(c, _)| *c == item.action.channel) {
                Some((_, members)) => members.push(item),
                None => by_channel.push((item.action.channel.clone(), vec![item])),
            }
        }
        for (channel, items) in by_channel {
            let Some(config) = self.channels.get(&channel) else {
                for item in items {
                    let reason = format!("channel {channel:?} is no longer configured");
                    if let Err(err) = outbox.dead_letter(&item, &reason).await {
                        tracing::error!(key = %item.action.key, error = %err, "could not move it to the dead letters");
                    }
                    round.dead_lettered += 1;
                }
                continue;
            };
            let entries = self.claim_all(outbox, items).await;
            let left = self.send_runs(outbox, config, split_groups(entries), deadline, &mut round).await;
            if !left.is_empty() {
                self.put_back(outbox, &channel, &left).await;
            }
        }
        round
    }

    /// Sends each run (a group's members, or the channel's other waiting actions) as few
    /// messages as fit, never one message for two runs; returns what a stop left unsent.
    async fn send_runs(
        &self,
        outbox: &Outbox,
        config: &ChannelConfig,
        runs: Vec<Vec<Entry>>,
        deadline: Instant,
        round: &mut Round,
    ) -> Vec<Entry> {
        let mut runs = runs.into_iter();
        while let Some(mut run) = runs.next() {
            while !run.is_empty() {
                let (n, body) = self.next_message(config, &run);
                let step = self.send_message(outbox, config, &run[..n], body, deadline, round).await;
                match step {
                    Step::Next => drop(run.drain(..n)),
                    Step::Stop | Step::StopAfter => {
                        if matches!(step, Step::StopAfter) {
                            run.drain(..n);
                        }
                        run.extend(runs.flatten());
                        return run;
                    }
                }
            }
        }
        Vec::new()
    }

    /// Claims every item's action; drops those done meanwhile, leaves those claimed elsewhere.
    async fn claim_all(&self, outbox: &Outbox, items: Vec<OutboxItem>) -> Vec<Entry> {
        let claims: Vec<_> = items
            .into_iter()
            .map(|item| async move {
                let claim = self.dedup.claim(&item.action.key, self.timing.lease).await;
                (item, claim)
            })
            .collect();
        let claimed: Vec<_> =
            stream::iter(claims).buffer_unordered(self.timing.max_concurrent_sends).collect().await;
        let mut entries = Vec::with_capacity(claimed.len());
        for (item, claim) in claimed {
            match claim {
                Ok(Claim::Acquired(token)) => entries.push(Entry { item, token: Some(token) }),
                Ok(Claim::AlreadyDone) => {
                    tracing::info!(key = %item.action.key, "held action was delivered meanwhile: dropped");
                    if let Err(err) = outbox.complete(&item.action.key).await {
                        tracing::warn!(key = %item.action.key, error = %err, "could not drop it from the outbox");
                    }
                }
                Ok(Claim::InFlight) => {} // another round has it; back after the take lease
                Err(err) => {
                    tracing::warn!(key = %item.action.key, error = %err, "dedup store unreachable: sending without duplicate protection");
                    entries.push(Entry { item, token: None });
                }
            }
        }
        entries
    }

    /// How many of `rest` the next message covers, and its body: the largest run whose digest
    /// (or, on a channel without digests, whose group document) fits whole (binary search on
    /// the run's length), else the first action's own message.
    fn next_message(&self, config: &ChannelConfig, rest: &[Entry]) -> (usize, Value) {
        let own = (1, rest[0].item.action.payload.clone());
        let channel = config.name.as_str();
        let group = rest[0].item.action.group.as_ref().map(|g| g.key.as_str());
        let fits = |n: usize| -> Option<Value> {
            if !crate::channel::digests(config) {
                let payloads: Vec<&Value> = rest[..n].iter().map(|e| &e.item.action.payload).collect();
                return group.and_then(|key| crate::channel::group_message(config, key, &payloads));
            }
            let briefs: Vec<&Brief> = rest[..n].iter().filter_map(|e| e.item.action.brief.as_ref()).collect();
            let muted_by = muted_by(&rest[..n]);
            let (mentions, silences) = (self.mentioned_by(&rest[..n]), self.silence_buttons(&rest[..n]));
            match self.router.digest_mentioning(channel, &briefs, &mentions, muted_by, silences) {
                Ok(body) => body,
                Err(err) => {
                    tracing::error!(channel, error = %err, "the digest does not render: sending actions on their own");
                    None
                }
            }
        };
        // A digest is of two actions or more (one goes as its own message); a group document
        // may hold one event.
        let (most, least) = if crate::channel::digests(config) {
            (rest.iter().take_while(|e| e.item.action.brief.is_some()).count(), 2)
        } else if group.is_some() {
            (rest.len(), 1)
        } else {
            return own;
        };
        if most < least {
            return own;
        }
        if let Some(body) = fits(most) {
            return (most, body);
        }
        let (mut lo, mut hi, mut best) = (least, most - 1, None);
        while lo <= hi {
            let mid = lo + (hi - lo) / 2;
            match fits(mid) {
                Some(body) => {
                    best = Some((mid, body));
                    lo = mid + 1;
                }
                None => hi = mid - 1,
            }
        }
        best.unwrap_or(own)
    }

    /// Whether any action of `entries` carries a silence button: then their digest does, per
    /// failed group.
    fn silence_buttons(&self, entries: &[Entry]) -> bool {
        entries.iter().any(|e| self.router.has_silence_button(&e.item.action.route, &e.item.action.channel))
    }

    /// Everyone the actions of `entries` mention, each once: who their digest mentions.
    fn mentioned_by(&self, entries: &[Entry]) -> Mentions {
        let mut mentions = Mentions::default();
        for action in entries.iter().map(|e| &e.item.action) {
            mentions
                .add(self.router.mentions(&action.route, &action.channel).unwrap_or(&Mentions::default()));
        }
        mentions
    }

    /// Sends one message of a round covering `entries`, and settles them.
    async fn send_message(
        &self,
        outbox: &Outbox,
        config: &ChannelConfig,
        entries: &[Entry],
        body: Value,
        deadline: Instant,
        round: &mut Round,
    ) -> Step {
        if deadline.saturating_duration_since(Instant::now()) < MIN_ATTEMPT {
            return Step::Stop;
        }
        if self.budgets.take(&config.name, Mode::Digest).await != Take::Granted {
            return Step::Stop;
        }
        let covered: Vec<&Action> = entries.iter().map(|e| &e.item.action).collect();
        let notes = self.resolved_notes(&covered).await;
        let mut body = body;
        for note in notes.iter().rev().flatten() {
            crate::channel::annotate(config, &mut body, note, "");
        }
        let message = digest_action(&entries[0].item.action, config, body);
        match self.send_before(config, &message, deadline, &RequestScope::default()).await {
            Outcome::Delivered => {
                let resolved_since: Vec<bool> = notes.iter().map(Option::is_some).collect();
                self.settle_delivered(outbox, entries, &resolved_since).await;
                tracing::info!(channel = %config.name, actions = entries.len(), "digest delivered");
                round.messages += 1;
                round.covered += entries.len();
                Step::Next
            }
            Outcome::Throttled { reason, after } => {
                tracing::warn!(channel = %config.name, %reason, "the service says too fast: the digest waits");
                self.throttled(&config.name, after).await;
                Step::Stop
            }
            Outcome::Retry { reason, .. } => {
                tracing::warn!(channel = %config.name, actions = entries.len(), %reason, "digest not delivered: rescheduled");
                for entry in entries {
                    self.fail_round(outbox, entry, &reason, round).await;
                }
                Step::StopAfter
            }
            Outcome::Permanent { reason } => {
                for entry in entries {
                    let action = &entry.item.action;
                    crate::metrics::record(|t| t.action(&action.channel, &action.route, "dead"));
                    self.dead_letter(outbox, entry.item.clone(), reason.clone()).await;
                    self.release(entry.key(), entry.token.as_ref()).await;
                    round.dead_lettered += 1;
                }
                Step::Next
            }
        }
    }

    /// Every action of a delivered digest: marked done once, then out of the outbox;
    /// `resolved_since` says, per entry, whether the digest marked it "resolved since".
    async fn settle_delivered(&self, outbox: &Outbox, entries: &[Entry], resolved_since: &[bool]) {
        let marks: Vec<_> = entries.iter().map(|e| self.complete(e.key(), e.token.as_ref())).collect();
        let _: Vec<bool> =
            stream::iter(marks).buffer_unordered(self.timing.max_concurrent_sends).collect().await;
        let keys: Vec<&str> = entries.iter().map(Entry::key).collect();
        if let Err(err) = outbox.complete_all(&keys).await {
            tracing::warn!(error = %err, "could not remove delivered actions from the outbox; the next round drops them");
        }
        for (entry, since) in entries.iter().zip(resolved_since) {
            let action = &entry.item.action;
            crate::metrics::record(|t| t.action(&action.channel, &action.route, "sent"));
            self.after_delivery(action, Some(*since)).await;
        }
    }

    /// A failed round for one action of a digest that was not delivered.
    async fn fail_round(&self, outbox: &Outbox, entry: &Entry, reason: &str, round: &mut Round) {
        let item = &entry.item;
        let attempts = item.attempts + 1;
        match next_due(item.first_seen, attempts, &self.timing.outbox_schedule, self.timing.outbox_max_age) {
            Next::At(due) => {
                if let Err(err) = outbox.reschedule(item, due, reason).await {
                    tracing::error!(key = %item.action.key, error = %err, "could not reschedule; it returns when its take lease ends");
                }
                round.rescheduled += 1;
            }
            Next::Dead => {
                let reason = format!("gave up after {attempts} attempts: {reason}");
                self.dead_letter(outbox, OutboxItem { attempts, ..item.clone() }, reason).await;
                round.dead_lettered += 1;
            }
        }
        self.release(entry.key(), entry.token.as_ref()).await;
    }

    /// What a round could not send: due again now, claims released, the backlog marked.
    async fn put_back(&self, outbox: &Outbox, channel: &str, entries: &[Entry]) {
        let keys: Vec<&str> = entries.iter().map(Entry::key).collect();
        if let Err(err) = outbox.untake(&keys, crate::clock::unix_now()).await {
            tracing::warn!(channel, error = %err, "could not put held actions back; they return when their take lease ends");
        }
        for entry in entries {
            self.release(entry.key(), entry.token.as_ref()).await;
        }
        self.budgets.set_backlog(channel, true).await;
    }
}

/// The runs of a round: each group's members (in the order they were taken), then the others in
/// digest order.
fn split_groups(entries: Vec<Entry>) -> Vec<Vec<Entry>> {
    let mut groups: Vec<(String, Vec<Entry>)> = Vec::new();
    let mut rest = Vec::new();
    for entry in entries {
        match entry.item.action.group.as_ref().map(|g| g.key.clone()) {
            Some(key) => match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, members)) => members.push(entry),
                None => groups.push((key, vec![entry])),
            },
            None => rest.push(entry),
        }
    }
    // In a group, the workflow's own event first, then the node events, each as they came.
    for (_, members) in &mut groups {
        members.sort_by_cached_key(|e| {
            let brief = e.item.action.brief.as_ref().unwrap_or(&NO_BRIEF);
            (brief.event_type != "WorkflowTaskComplete", brief.event_time.clone())
        });
    }
    let rest = grouped_order(rest, |e| e.item.action.brief.as_ref().unwrap_or(&NO_BRIEF));
    groups.into_iter().map(|(_, members)| members).chain(Some(rest).filter(|r| !r.is_empty())).collect()
}

/// Stands in for the brief of an action made before digests (it is sent on its own).
static NO_BRIEF: Brief = Brief {
    event_type: String::new(),
    status: String::new(),
    ok: false,
    failed: false,
    title: None,
    video_id: None,
    workflow_id: None,
    task_id: None,
    event_time: None,
    node: None,
    error_code: None,
    error_message: None,
};

/// The mute intervals that held every one of `entries`, when it is the same for all of them.
fn muted_by(entries: &[Entry]) -> Option<&str> {
    fn by(entry: &Entry) -> Option<&str> {
        entry.item.action.group.as_ref().and_then(|g| g.muted_by.as_deref())
    }
    let first = by(entries.first()?)?;
    entries.iter().all(|e| by(e) == Some(first)).then_some(first)
}

/// The action that sends a digest: keyed, and shown in logs, as its first member's.
fn digest_action(first: &Action, config: &ChannelConfig, payload: Value) -> Action {
    Action {
        key: format!("digest|{}", first.key),
        event: first.event.clone(),
        route: first.route.clone(),
        channel: config.name.clone(),
        channel_type: config.kind(),
        payload,
        brief: None,
        resolution: None,
        group: None,
    }
}
