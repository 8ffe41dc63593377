//! Metrics: what vodhook did, counted once and written in each platform's own way — the
//! Prometheus text format on `[metrics] listen` (a plain server), one CloudWatch Embedded
//! Metric Format line per callback on Lambda, and plain fields of the per-callback log line on
//! Function Compute (for SLS queries).
//!
//! Code that does something countable calls [`record`]; what it records goes into the current
//! request's [`Tally`] (a task-local, so the dispatcher's signatures need not carry it, and two
//! concurrent requests never mix), and, when the request ends, into the process's totals
//! ([`finish`]). Outside a request (a drain from the command line) a record goes straight to the
//! totals. The totals are process-wide on purpose, like any metrics registry: they are what
//! `/metrics` serves, for the process's life.
//!
//! Names: [`names`]; Prometheus adds `vodhook_` and `_total`.

pub mod emf;
pub mod names;
pub mod prometheus;
mod tally;

use std::cell::RefCell;
use std::future::Future;
use std::sync::Mutex;

pub use tally::{Counts, Rejection, Tally, Totals, event_labels, status_label};

tokio::task_local! {
    static CURRENT: RefCell<Tally>;
}

/// The process's totals since it started.
static TOTALS: Mutex<Totals> = Mutex::new(Totals::new());

/// Runs `request` with a tally of its own; returns its output and what it recorded (not yet in
/// the totals: the caller adds what it knows at the end, then calls [`finish`]).
pub async fn scoped<F: Future>(request: F) -> (F::Output, Tally) {
    CURRENT
        .scope(RefCell::new(Tally::default()), async move {
            let output = request.await;
            let tally = CURRENT.with(|t| std::mem::take(&mut *t.borrow_mut()));
            (output, tally)
        })
        .await
}

/// Records into the current request's tally, or straight into the totals outside a request.
pub fn record(what: impl FnOnce(&mut Tally)) {
    let mut what = Some(what);
    let in_request = CURRENT.try_with(|tally| {
        if let Some(what) = what.take() {
            what(&mut tally.borrow_mut());
        }
    });
    if in_request.is_err()
        && let Some(what) = what.take()
    {
        let mut tally = Tally::default();
        what(&mut tally);
        finish(&tally);
    }
}

/// `read` of what the current request recorded so far (of an empty tally outside a request).
pub fn with_current<T>(read: impl Fn(&Tally) -> T) -> T {
    CURRENT.try_with(|t| read(&t.borrow())).unwrap_or_else(|_| read(&Tally::default()))
}

/// Adds a finished request's tally to the totals.
pub fn finish(tally: &Tally) {
    lock().add(tally);
}

/// A copy of the totals, for an exposition.
pub fn totals() -> Totals {
    lock().clone()
}

fn lock() -> std::sync::MutexGuard<'static, Totals> {
    // A panic while adding leaves counts that are still counts: keep serving them.
    TOTALS.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
