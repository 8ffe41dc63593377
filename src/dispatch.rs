//! The action pipeline behind the handler: events in, a report of what was done out.
//! (Being built: routing, dedup and delivery plug in here.)

use std::time::Instant;

use serde::Serialize;

use crate::event::Delivery;

/// What one delivery caused, for the response body and the request's summary log line.
#[derive(Debug, Default, Clone, Serialize)]
pub struct Report {
    pub events: usize,
    pub delivered: usize,
    pub duplicate: usize,
    pub retried: usize,
    pub failed_permanently: usize,
    /// Left undelivered at the deadline with a retryable failure (the sender should retry).
    pub left_for_retry: usize,
    /// Put in the outbox for a later drain (the sender need not retry).
    pub queued: usize,
}

impl Report {
    /// Whether the sender must deliver again for nothing to be lost.
    pub fn needs_retry(&self) -> bool {
        self.left_for_retry > 0
    }
}

/// What one drain of the outbox did.
#[derive(Debug, Default, Clone, Serialize)]
pub struct DrainReport {
    pub delivered: usize,
    pub rescheduled: usize,
    pub dead_lettered: usize,
}

/// Runs the actions of each delivery.
#[derive(Debug, Default)]
pub struct Dispatcher {}

impl Dispatcher {
    pub async fn dispatch(&self, delivery: &Delivery, _deadline: Instant) -> Report {
        for event in &delivery.events {
            tracing::info!(
                event_type = event.event_type(),
                identity = %event.identity(),
                status = event.status().unwrap_or(""),
                video_id = event.video_id().unwrap_or(""),
                "event received"
            );
        }
        Report { events: delivery.events.len(), delivered: delivery.events.len(), ..Report::default() }
    }

    /// Delivers what the outbox holds and is due.
    pub async fn drain(&self) -> DrainReport {
        DrainReport::default()
    }
}
