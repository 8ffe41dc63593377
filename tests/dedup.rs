//! The dedup store and the outbox against a real `redis-server` (started here, on a free
//! loopback port) and the in-process memory store.

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use support::redis::RedisServer;
use tokio::sync::Barrier;
use vodhook::action::Action;
use vodhook::channel::ChannelType;
use vodhook::config::{DedupBackend, DedupConfig};
use vodhook::dedup::{Claim, ClaimToken, DedupStore, StoreError};
use vodhook::outbox::{Next, Outbox, OutboxItem, next_due};
use vodhook::redact::Secret;
use vodhook::setup::State;

const LONG: Duration = Duration::from_secs(600);
const WEEK: Duration = Duration::from_secs(7 * 86_400);

fn redis_config(url: &str) -> DedupConfig {
    DedupConfig {
        backend: DedupBackend::Redis,
        url: Some(Secret::new(url)),
        key_prefix: "test:".into(),
        ..DedupConfig::default()
    }
}

/// The shared state as a vodhook process opens it (`[dedup]` → store and outbox on one
/// connection); each call is a new instance with its own connection, as another process has.
fn redis_state(server: &RedisServer) -> State {
    State::open(&redis_config(&server.url())).expect("redis state from config")
}

fn redis_store(server: &RedisServer) -> DedupStore {
    redis_state(server).dedup
}

fn memory_store() -> DedupStore {
    State::open(&DedupConfig::default()).expect("memory store from config").dedup
}

fn acquired(claim: Result<Claim, StoreError>) -> ClaimToken {
    match claim {
        Ok(Claim::Acquired(t)) => t,
        other => panic!("expected Acquired, got {other:?}"),
    }
}

async fn raw(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(server.url()).expect("client");
    client.get_multiplexed_async_connection().await.expect("raw connection to the test Redis")
}

// ---- claim / complete / release, same semantics on both backends ----------------------------

async fn check_semantics(store: &DedupStore) {
    let key = "WorkflowTaskComplete:t1|failures|ops";

    let first = acquired(store.claim(key, LONG).await);
    assert_eq!(store.claim(key, LONG).await.unwrap(), Claim::InFlight, "held by the first claim");

    // Only the holder can release.
    let stranger = match memory_store().claim("x", LONG).await.unwrap() {
        Claim::Acquired(t) => t,
        other => panic!("{other:?}"),
    };
    store.release(key, &stranger).await.unwrap();
    assert_eq!(store.claim(key, LONG).await.unwrap(), Claim::InFlight, "a stranger's release is a no-op");
    let err = store.complete(key, &stranger, WEEK).await.unwrap_err();
    assert!(matches!(err, StoreError::LeaseLost { .. }), "{err}");

    // The holder releases after a failed send: the next delivery may claim it.
    store.release(key, &first).await.unwrap();
    let second = acquired(store.claim(key, LONG).await);
    assert_ne!(first, second, "every claim gets its own token");

    // The holder completes after a successful send: every later delivery finds it done.
    store.complete(key, &second, WEEK).await.unwrap();
    assert_eq!(store.claim(key, LONG).await.unwrap(), Claim::AlreadyDone);
    // Completing again (a retried call) and releasing after completion change nothing.
    store.complete(key, &second, WEEK).await.unwrap();
    store.release(key, &second).await.unwrap();
    assert_eq!(store.claim(key, LONG).await.unwrap(), Claim::AlreadyDone);

    // Other keys are independent.
    acquired(store.claim("WorkflowTaskComplete:t1|failures|slack", LONG).await);
}

#[tokio::test]
async fn memory_claim_complete_release() {
    check_semantics(&memory_store()).await;
}

#[tokio::test]
async fn redis_claim_complete_release() {
    let server = RedisServer::start();
    check_semantics(&redis_store(&server)).await;
}

#[tokio::test]
async fn redis_keys_follow_the_documented_protocol() {
    let server = RedisServer::start();
    let store = redis_store(&server);
    let mut conn = raw(&server).await;
    let key = "WorkflowTaskComplete:t2|all|log";
    let redis_key = format!("test:dedup:{key}");

    let token = acquired(store.claim(key, Duration::from_secs(30)).await);
    let (value, pttl): (String, i64) =
        redis::pipe().get(&redis_key).pttl(&redis_key).query_async(&mut conn).await.unwrap();
    assert_eq!(value, token.as_str(), "the claim stores our token");
    assert!(pttl > 0 && pttl <= 30_000, "the claim carries the lease: {pttl}");

    store.complete(key, &token, WEEK).await.unwrap();
    let (value, pttl): (String, i64) =
        redis::pipe().get(&redis_key).pttl(&redis_key).query_async(&mut conn).await.unwrap();
    assert_eq!(value, "done");
    assert!(pttl > 30_000 && pttl <= WEEK.as_millis() as i64, "done carries the TTL: {pttl}");
}

// ---- concurrency ------------------------------------------------------------------------------

/// `copies` claims of one key, all released at once, spread round-robin over `stores`.
async fn race(stores: &[Arc<DedupStore>], key: &str, copies: usize) -> Vec<Claim> {
    let barrier = Arc::new(Barrier::new(copies));
    let tasks: Vec<_> = (0..copies)
        .map(|i| {
            let store = stores[i % stores.len()].clone();
            let barrier = barrier.clone();
            let key = key.to_owned();
            tokio::spawn(async move {
                barrier.wait().await;
                store.claim(&key, LONG).await
            })
        })
        .collect();
    let mut claims = Vec::new();
    for t in tasks {
        claims.push(t.await.expect("claim task").expect("claim"));
    }
    claims
}

fn winners(claims: &[Claim]) -> Vec<&ClaimToken> {
    claims
        .iter()
        .filter_map(|c| match c {
            Claim::Acquired(t) => Some(t),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_claims_over_two_instances_one_winner() {
    let server = RedisServer::start();
    let stores = [Arc::new(redis_store(&server)), Arc::new(redis_store(&server))];
    let key = "WorkflowTaskComplete:t3|all|dingtalk";

    let claims = race(&stores, key, 50).await;
    let won = winners(&claims);
    assert_eq!(won.len(), 1, "exactly one claim wins: {claims:?}");
    assert_eq!(claims.iter().filter(|c| **c == Claim::InFlight).count(), 49);

    // Whichever instance won, the other instance can see the completion.
    let token = won[0].clone();
    stores[0].complete(key, &token, WEEK).await.unwrap();
    let again = race(&stores, key, 50).await;
    assert!(again.iter().all(|c| *c == Claim::AlreadyDone), "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_claims_on_memory_one_winner() {
    let stores = [Arc::new(memory_store())];
    let claims = race(&stores, "k", 50).await;
    assert_eq!(winners(&claims).len(), 1, "{claims:?}");
}

// ---- leases -----------------------------------------------------------------------------------

/// An instance that dies holding a claim: after the lease another delivery takes over, and the
/// late instance can neither complete nor release the new holder's claim.
async fn check_lease_expiry(store: &DedupStore) {
    let key = "WorkflowTaskComplete:t4|all|ops";
    let dead = acquired(store.claim(key, Duration::from_millis(50)).await);
    // Waiting past the lease (any extra delay only makes it more expired).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let heir = acquired(store.claim(key, LONG).await);

    assert!(matches!(store.complete(key, &dead, WEEK).await, Err(StoreError::LeaseLost { .. })));
    store.release(key, &dead).await.unwrap();
    assert_eq!(store.claim(key, LONG).await.unwrap(), Claim::InFlight, "the heir still holds it");

    store.complete(key, &heir, WEEK).await.unwrap();
    assert_eq!(store.claim(key, LONG).await.unwrap(), Claim::AlreadyDone);

    // A holder whose lease ran out with nobody taking over may still mark the action done.
    let key = "WorkflowTaskComplete:t5|all|ops";
    let slow = acquired(store.claim(key, Duration::from_millis(50)).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    store.complete(key, &slow, WEEK).await.unwrap();
    assert_eq!(store.claim(key, LONG).await.unwrap(), Claim::AlreadyDone);
}

#[tokio::test]
async fn memory_lease_expiry() {
    check_lease_expiry(&memory_store()).await;
}

#[tokio::test]
async fn redis_lease_expiry() {
    let server = RedisServer::start();
    check_lease_expiry(&redis_store(&server)).await;
}

#[tokio::test]
async fn memory_store_is_bounded() {
    let config = DedupConfig { capacity: 100, ..DedupConfig::default() };
    let DedupStore::Memory(store) = State::open(&config).unwrap().dedup else {
        panic!("memory is the default backend")
    };
    for i in 0..1000 {
        let key = format!("k{i}");
        let claim = store.claim(&key, LONG);
        let Claim::Acquired(t) = claim else { panic!("{claim:?}") };
        store.complete(&key, &t, WEEK).unwrap();
    }
    assert_eq!(store.len(), 100);
    assert_eq!(store.claim("k999", LONG), Claim::AlreadyDone, "the newest are kept");
    assert!(matches!(store.claim("k0", LONG), Claim::Acquired(_)), "the oldest are forgotten");
}

// ---- Redis going away -------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_then_restarted() {
    let password = "pw-Zq8-never-print";
    let mut server = RedisServer::start_with_password(password);
    let State { dedup: store, outbox, .. } = redis_state(&server);
    let outbox = outbox.expect("redis has an outbox");
    let key = "WorkflowTaskComplete:t6|all|ops";
    let held = acquired(store.claim(key, LONG).await);

    server.stop();
    // Every operation reports the outage as such (the caller then delivers without dedup), and
    // never shows the password.
    let errors = [
        store.claim("WorkflowTaskComplete:t7|all|ops", LONG).await.unwrap_err(),
        store.complete(key, &held, WEEK).await.unwrap_err(),
        store.release(key, &held).await.unwrap_err(),
        outbox.take_due(0, 10).await.unwrap_err(),
    ];
    for e in &errors {
        assert!(e.is_unreachable(), "{e:?}");
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains(password), "{shown}");
        assert!(shown.contains(&format!("127.0.0.1:{}", server.port())), "says which Redis: {shown}");
    }

    // Back (empty: no persistence): the very next call works again, on both kinds of use.
    server.restart();
    acquired(store.claim(key, LONG).await);
    assert_eq!(store.claim(key, LONG).await.unwrap(), Claim::InFlight);
    assert!(outbox.take_due(0, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn redis_down_at_first_use_then_up() {
    let mut server = RedisServer::start();
    let store = redis_store(&server);
    server.stop();
    // Creating the store connected nothing; the first use finds Redis down.
    let err = store.claim("k", LONG).await.unwrap_err();
    assert!(err.is_unreachable(), "{err:?}");
    server.restart();
    acquired(store.claim("k", LONG).await);
}

#[tokio::test]
async fn nothing_listening_is_unreachable() {
    // A port nobody listens on: found free, then let go.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let store =
        State::open(&redis_config(&format!("redis://:hunter2-xyz@127.0.0.1:{port}/0"))).unwrap().dedup;
    let err = store.claim("k", LONG).await.unwrap_err();
    assert!(err.is_unreachable(), "{err:?}");
    assert!(!format!("{err} {err:?}").contains("hunter2-xyz"));
}

#[tokio::test]
async fn wrong_password_is_an_error_from_redis_without_the_password() {
    let server = RedisServer::start_with_password("right-pw-123");
    let url = format!("redis://:wrong-pw-456@127.0.0.1:{}/", server.port());
    let store = State::open(&redis_config(&url)).unwrap().dedup;
    let err = store.claim("k", LONG).await.unwrap_err();
    assert!(!err.is_unreachable(), "Redis answered, it refused: {err:?}");
    let shown = format!("{err} {err:?}");
    assert!(!shown.contains("wrong-pw-456") && !shown.contains("right-pw-123"), "{shown}");
}

// ---- outbox -----------------------------------------------------------------------------------

fn item(id: &str, due: i64) -> OutboxItem {
    let action = Action {
        key: Action::key_for(&format!("WorkflowTaskComplete:{id}"), "all", "ops"),
        event: format!("WorkflowTaskComplete:{id}"),
        route: "all".into(),
        channel: "ops".into(),
        channel_type: ChannelType::Webhook,
        payload: json!({"text": format!("task {id} finished"), "nested": {"n": [1, 2, 3]}}),
    };
    OutboxItem { action, attempts: 1, first_seen: due - 5, due, last_error: "HTTP 502".into() }
}

fn outbox(server: &RedisServer) -> Outbox {
    Outbox::from_config(&redis_config(&server.url())).expect("outbox from config")
}

const NOW: i64 = 1_700_000_000;

#[tokio::test]
async fn outbox_push_is_idempotent_and_listed() {
    let server = RedisServer::start();
    let ob = outbox(&server);
    let a = item("a", NOW + 10);
    let b = item("b", NOW + 5);
    assert!(ob.push(&a).await.unwrap());
    assert!(ob.push(&b).await.unwrap());
    // The same action again (a duplicate callback timing out too) keeps the first schedule.
    let a_again = OutboxItem { due: NOW + 999, attempts: 7, ..a.clone() };
    assert!(!ob.push(&a_again).await.unwrap());

    assert_eq!(ob.list().await.unwrap(), vec![b.clone(), a.clone()], "soonest first, round-tripped");
    assert!(ob.contains(&a.action.key).await.unwrap());
    assert!(!ob.contains("nope").await.unwrap());

    // The outbox shares the dedup store's connection and keys.
    let shared = redis_state(&server).outbox.expect("redis state has an outbox");
    assert_eq!(shared.list().await.unwrap().len(), 2);
    assert!(State::open(&DedupConfig::default()).unwrap().outbox.is_none(), "no outbox without Redis");
}

#[tokio::test]
async fn outbox_take_due_leases_items() {
    let server = RedisServer::start();
    let ob = outbox(&server).with_take_lease(Duration::from_secs(60));
    let early = item("early", NOW - 1);
    let now = item("now", NOW);
    let later = item("later", NOW + 1);
    for i in [&early, &now, &later] {
        ob.push(i).await.unwrap();
    }

    let taken = ob.take_due(NOW, 10).await.unwrap();
    assert_eq!(taken, vec![early.clone(), now.clone()], "due by now, in due order");
    assert!(ob.take_due(NOW, 10).await.unwrap().is_empty(), "taken items are hidden from others");
    assert_eq!(ob.take_due(NOW + 1, 10).await.unwrap(), vec![later.clone()]);

    // `list` shows when each is really tried next: the end of the take lease.
    let listed = ob.list().await.unwrap();
    assert!(listed.iter().all(|i| i.due >= NOW + 60), "{listed:?}");

    // A drainer that died: its items come back when the lease ends.
    let back = ob.take_due(NOW + 60, 10).await.unwrap();
    assert_eq!(back.len(), 2);
    assert_eq!(ob.take_due(NOW + 61, 10).await.unwrap().len(), 1);

    // The limit is respected.
    assert_eq!(ob.take_due(NOW + 10_000, 2).await.unwrap().len(), 2);
}

#[tokio::test]
async fn outbox_reschedule_complete_and_dead_letter() {
    let server = RedisServer::start();
    let ob = outbox(&server);
    let schedule = [5, 300, 1800];
    let max_age = 3600;

    let a = item("a", NOW);
    ob.push(&a).await.unwrap();
    let taken = ob.take_due(NOW, 10).await.unwrap().remove(0);

    // A failed round: the next attempt comes from the schedule.
    let Next::At(due) = next_due(taken.first_seen, taken.attempts + 1, &schedule, max_age) else {
        panic!("still young")
    };
    assert_eq!(due, taken.first_seen + 305);
    ob.reschedule(&taken, due, "HTTP 503 from ops").await.unwrap();
    assert!(ob.take_due(due - 1, 10).await.unwrap().is_empty(), "not before it is due");
    let retaken = ob.take_due(due, 10).await.unwrap().remove(0);
    assert_eq!(retaken.attempts, 2);
    assert_eq!(retaken.due, due);
    assert_eq!(retaken.last_error, "HTTP 503 from ops");
    assert_eq!(retaken.action, a.action);

    // Delivered: gone, and a late reschedule by a slow drainer does not bring it back.
    ob.complete(&a.action.key).await.unwrap();
    ob.reschedule(&retaken, due + 5, "late").await.unwrap();
    assert!(ob.list().await.unwrap().is_empty());
    assert!(ob.take_due(i64::MAX / 2, 10).await.unwrap().is_empty());
    ob.complete(&a.action.key).await.unwrap(); // twice is fine

    // Too old: dead-lettered, out of the queue, kept for inspection.
    let b = item("b", NOW);
    ob.push(&b).await.unwrap();
    let taken = ob.take_due(NOW, 10).await.unwrap().remove(0);
    assert_eq!(next_due(taken.first_seen, 4, &schedule, max_age), Next::Dead);
    ob.dead_letter(&taken, "max age reached: HTTP 503").await.unwrap();
    assert!(ob.list().await.unwrap().is_empty());
    assert!(!ob.contains(&b.action.key).await.unwrap());
    assert!(ob.take_due(i64::MAX / 2, 10).await.unwrap().is_empty());
    let dead = ob.dead_letters().await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].item, b);
    assert_eq!(dead[0].reason, "max age reached: HTTP 503");
    assert!(dead[0].dead_at > NOW);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_drainers_never_take_the_same_item() {
    let server = RedisServer::start();
    let setup = outbox(&server);
    let total: usize = 300;
    let mut expected = HashSet::new();
    for i in 0..total as i64 {
        let it = item(&format!("d{i}"), NOW - (i % 17));
        expected.insert(it.action.key.clone());
        setup.push(&it).await.unwrap();
    }

    let barrier = Arc::new(Barrier::new(2));
    let drainers: Vec<_> = (0..2)
        .map(|_| {
            // Separate connections, as two processes would have.
            let ob = outbox(&server);
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                let mut mine = Vec::new();
                loop {
                    let batch = ob.take_due(NOW, 7).await.expect("take_due");
                    // Empty: all taken. More than all: items come back (a broken lease); stop
                    // so that the assertion below reports it rather than looping forever.
                    if batch.is_empty() || mine.len() > total {
                        return mine;
                    }
                    mine.extend(batch.into_iter().map(|i| i.action.key));
                }
            })
        })
        .collect();
    let mut seen = Vec::new();
    let mut per_drainer = Vec::new();
    for d in drainers {
        let mine = d.await.unwrap();
        per_drainer.push(mine.len());
        seen.extend(mine);
    }
    let unique: HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(seen.len(), total, "no item taken twice (per drainer: {per_drainer:?})");
    assert_eq!(unique, expected, "every item taken");
}
