//! The metrics' names, as EMF and the Function Compute log line write them; Prometheus writes
//! `vodhook_<name>` and `vodhook_<name>_total` for counters. Stable: dashboards and queries
//! use them (the README lists each once).

/// Every request to the callback endpoint, rejected ones included.
pub const CALLBACKS_RECEIVED: &str = "callbacks_received";
/// Requests refused before any event was handled, by `reason` (`auth`, `decode`, `limit`).
pub const CALLBACKS_REJECTED: &str = "callbacks_rejected";
/// Each event once (a redelivered TaskId + EventType is not counted again), by `event_type`,
/// `status` (`Succeed`, `Failed`, `other`, `none`) and `source` (`vod`, `ims`).
pub const EVENTS: &str = "events";
/// What became of each action, by `channel`, `route` and `outcome` (see [`OUTCOMES`]). In EMF
/// the outcome is part of the name: `actions_sent`, `actions_queued`, ...
pub const ACTIONS: &str = "actions";
/// VOD OpenAPI calls, by `action` and `outcome` (`ok`, `retry`, `failed`).
pub const VOD_API_CALLS: &str = "vod_api_calls";
/// Actions held for a digest because their chat channel's rate budget was spent, by `channel`.
pub const BUDGET_HOLDS: &str = "budget_holds";
/// Seconds per attempt to send to a channel, by `channel` (a histogram).
pub const SEND_SECONDS: &str = "send_seconds";
/// Seconds to handle one callback, from its arrival to its answer (a histogram).
pub const HANDLE_SECONDS: &str = "handle_seconds";

/// The outcomes of an action. Each action ends in one of `sent`, `resolved`, `duplicate`,
/// `dead`, `silenced`, `dropped`, `skipped`, and may pass through `queued`, `digested`,
/// `grouped` and `muted` on the way (counted when it does: an action queued by a callback and
/// sent by a drain counts as `queued` once and `sent` once). In full: sent (`resolved` for a resolved notice), `duplicate` (done
/// before), `queued` (in the outbox for a later drain), `dead` (refused for good: a dead
/// letter), `digested` (held for a digest), `grouped` (waiting for its group), `muted` (held
/// while its route is muted), `dropped` (muted with `on_mute = "drop"`), `silenced`, `skipped`
/// (the `vod` loop guard), `left_for_retry` (the sender must deliver again), `in_flight`
/// (another request had it at the deadline).
pub const OUTCOMES: [&str; 13] = [
    "sent",
    "resolved",
    "duplicate",
    "queued",
    "dead",
    "digested",
    "grouped",
    "muted",
    "dropped",
    "silenced",
    "skipped",
    "left_for_retry",
    "in_flight",
];
