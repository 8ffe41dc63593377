//! The server's open connections, and room for a real callback when there are too many.
//!
//! A process has a fixed number of file descriptors (`RLIMIT_NOFILE`); idle or slow connections
//! that hold them all would keep the next callback from being accepted at all. So connections
//! are capped below that limit, and at the cap the oldest connection that has not sent a whole
//! request (idle, headers or body still arriving) is closed to make room for the new one.
//! Connections whose request is being handled are never closed for this.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// Descriptors kept free of connections: outbound sockets to the channels and Redis, log files.
const RESERVED_DESCRIPTORS: u64 = 64;

/// What a connection is doing, for deciding which one may be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Phase {
    /// Waiting for (or reading) a request's headers.
    Idle = 0,
    /// Headers read, the body still arriving.
    ReadingBody = 1,
    /// A complete request is being handled.
    Handling = 2,
}

/// One open connection.
#[derive(Debug)]
pub struct Connection {
    phase: AtomicU8,
    closed: Notify,
}

impl Connection {
    pub fn set_phase(&self, phase: Phase) {
        self.phase.store(phase as u8, Ordering::Relaxed);
    }

    fn evictable(&self) -> bool {
        self.phase.load(Ordering::Relaxed) < Phase::Handling as u8
    }

    /// Completes when the connection was chosen to be closed to make room.
    pub async fn evicted(&self) {
        self.closed.notified().await
    }
}

/// A connection [`Connections::admit`] let in.
#[derive(Debug)]
pub struct Admitted {
    pub id: u64,
    pub connection: Arc<Connection>,
    /// An older connection was told to close to make room: its descriptor is free only once its
    /// task has run, so the accept loop waits for that before taking more (else it runs out of
    /// descriptors while closed connections still hold theirs).
    pub made_room: bool,
}

/// The registry of open connections, oldest first.
#[derive(Debug)]
pub struct Connections {
    cap: usize,
    open: Mutex<(u64, BTreeMap<u64, Arc<Connection>>)>,
    /// Signalled when a connection has ended (its descriptor is free again).
    released: Notify,
}

impl Connections {
    /// At most `cap` connections at once.
    pub fn new(cap: usize) -> Self {
        Connections { cap: cap.max(1), open: Mutex::new((0, BTreeMap::new())), released: Notify::new() }
    }

    /// The cap: `configured`, lowered to leave [`RESERVED_DESCRIPTORS`] of the process's
    /// descriptor limit free.
    pub fn cap_for(configured: usize) -> usize {
        match descriptor_limit() {
            Some(limit) => configured.min(limit.saturating_sub(RESERVED_DESCRIPTORS).max(8) as usize),
            None => configured,
        }
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Registers a new connection; at the cap, first closes the oldest one that has not sent a
    /// whole request. `None` when every open connection is handling a request: the new one is
    /// then closed instead.
    pub fn admit(&self) -> Option<Admitted> {
        let mut guard = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let (next, open) = &mut *guard;
        let made_room = open.len() >= self.cap;
        if made_room {
            let oldest_idle = open.iter().find(|(_, c)| c.evictable()).map(|(id, _)| *id)?;
            if let Some(evicted) = open.remove(&oldest_idle) {
                // notify_one keeps the permit if the task is not waiting yet.
                evicted.closed.notify_one();
            }
        }
        let id = *next;
        *next += 1;
        let connection =
            Arc::new(Connection { phase: AtomicU8::new(Phase::Idle as u8), closed: Notify::new() });
        open.insert(id, connection.clone());
        Some(Admitted { id, connection, made_room })
    }

    /// Closes the oldest connection that has not sent a whole request, if any (when the process
    /// ran out of descriptors anyway). True when one was closed.
    pub fn evict_one(&self) -> bool {
        let mut guard = self.open.lock().unwrap_or_else(|p| p.into_inner());
        let open = &mut guard.1;
        let Some(id) = open.iter().find(|(_, c)| c.evictable()).map(|(id, _)| *id) else {
            return false;
        };
        if let Some(evicted) = open.remove(&id) {
            evicted.closed.notify_one();
        }
        true
    }

    /// The connection `id` has closed.
    pub fn remove(&self, id: u64) {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).1.remove(&id);
        // notify_one keeps a permit when nobody waits: a waiter that arrives just after a
        // release returns at once rather than missing it.
        self.released.notify_one();
    }

    /// Completes when a connection has ended since the last call (see [`Connections::remove`]).
    pub async fn released(&self) {
        self.released.notified().await
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.open.lock().unwrap_or_else(|p| p.into_inner()).1.len()
    }
}

/// The soft `RLIMIT_NOFILE`, when there is one.
fn descriptor_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        // SAFETY: getrlimit writes into the struct we pass and reads nothing else.
        let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
        (ok && limit.rlim_cur != libc::RLIM_INFINITY).then_some(limit.rlim_cur)
    }
    #[cfg(not(unix))]
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn was_evicted(connection: &Connection) -> bool {
        tokio::time::timeout(std::time::Duration::from_millis(1), connection.evicted()).await.is_ok()
    }

    #[tokio::test]
    async fn at_the_cap_the_oldest_idle_connection_makes_room() {
        let connections = Connections::new(3);
        let Admitted { id: a, connection: first, .. } = connections.admit().unwrap();
        let second = connections.admit().unwrap().connection;
        let third = connections.admit().unwrap().connection;
        first.set_phase(Phase::Handling);
        second.set_phase(Phase::ReadingBody);
        // Full: the oldest that has not sent a whole request (the second, its body still
        // arriving) goes; the first, handling a request, stays.
        let fourth = connections.admit().unwrap();
        assert!(fourth.made_room);
        let fourth = fourth.connection;
        assert_eq!(connections.len(), 3);
        assert!(was_evicted(&second).await);
        assert!(!was_evicted(&first).await);
        // Every one handling a request: the new one is refused.
        third.set_phase(Phase::Handling);
        fourth.set_phase(Phase::Handling);
        assert!(connections.admit().is_none());
        assert!(!connections.evict_one());
        connections.remove(a);
        assert!(connections.admit().is_some());
    }

    #[test]
    fn the_cap_leaves_descriptors_free() {
        let limit = descriptor_limit().unwrap_or(u64::MAX);
        let cap = Connections::cap_for(1_000_000);
        assert!((cap as u64) < limit || limit == u64::MAX, "{cap} of {limit}");
    }
}
