//! The dedup store and the outbox against real Redis — plain, TLS-only with a private CA, and a
//! 3-node Redis Cluster, each started here on free loopback ports — and the in-process memory
//! store. Every Redis check runs against all three shapes (`on_every_redis!`).

mod support;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use support::redis::{Redis, RedisServer, Shape};
use tokio::sync::Barrier;
use vodhook::action::Action;
use vodhook::channel::ChannelType;
use vodhook::config::{DedupBackend, DedupConfig};
use vodhook::dedup::{Claim, ClaimToken, DedupStore, StoreError};
use vodhook::outbox::{Next, Outbox, OutboxItem, Part, next_due};
use vodhook::redact::Secret;
use vodhook::setup::State;
use vodhook::store::RedisConn;

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
fn redis_state(redis: &Redis) -> State {
    State::open(&redis.dedup_config("test:")).expect("redis state from config")
}

fn redis_store(redis: &Redis) -> DedupStore {
    redis_state(redis).dedup
}

/// `State` for a plain server the test restarts or stops.
fn server_state(server: &RedisServer) -> State {
    State::open(&redis_config(&server.url())).expect("redis state from config")
}

/// Runs `check` against each shape of Redis: tests `<name>::plain`, `<name>::tls` and
/// `<name>::cluster`.
macro_rules! on_every_redis {
    ($name:ident, $check:path) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn plain() {
                $check(&Redis::start(Shape::Plain)).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn tls() {
                $check(&Redis::start(Shape::Tls)).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn cluster() {
                $check(&Redis::start(Shape::Cluster)).await;
            }
        }
    };
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

/// A command on the test's Redis, through vodhook's own connection (any shape).
async fn raw<T: redis::FromRedisValue>(redis: &Redis, cmd: &redis::Cmd) -> T {
    let conn = RedisConn::open(&redis.dedup_config("test:")).expect("connection");
    conn.query(cmd).await.unwrap_or_else(|e| panic!("{cmd:?}: {e}"))
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

async fn claim_complete_release(redis: &Redis) {
    check_semantics(&redis_store(redis)).await;
}
on_every_redis!(redis_claim_complete_release, claim_complete_release);

async fn keys_follow_the_documented_protocol(redis: &Redis) {
    let store = redis_store(redis);
    let key = "WorkflowTaskComplete:t2|all|log";
    let redis_key = format!("test:dedup:{key}");
    // GET and PTTL in one script: a command to the key's node on a cluster too.
    let value_and_ttl =
        vodhook::store::eval("return {redis.call('GET', KEYS[1]), redis.call('PTTL', KEYS[1])}", &redis_key);

    let token = acquired(store.claim(key, Duration::from_secs(30)).await);
    let (value, pttl): (String, i64) = raw(redis, &value_and_ttl).await;
    assert_eq!(value, token.as_str(), "the claim stores our token");
    assert!(pttl > 0 && pttl <= 30_000, "the claim carries the lease: {pttl}");

    store.complete(key, &token, WEEK).await.unwrap();
    let (value, pttl): (String, i64) = raw(redis, &value_and_ttl).await;
    assert_eq!(value, "done");
    assert!(pttl > 30_000 && pttl <= WEEK.as_millis() as i64, "done carries the TTL: {pttl}");
}
on_every_redis!(redis_keys_follow_the_documented_protocol, keys_follow_the_documented_protocol);

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

async fn fifty_concurrent_claims_over_two_instances(redis: &Redis) {
    let stores = [Arc::new(redis_store(redis)), Arc::new(redis_store(redis))];
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

on_every_redis!(
    fifty_concurrent_claims_over_two_instances_one_winner,
    fifty_concurrent_claims_over_two_instances
);

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

async fn lease_expiry(redis: &Redis) {
    check_lease_expiry(&redis_store(redis)).await;
}
on_every_redis!(redis_lease_expiry, lease_expiry);

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
    let State { dedup: store, outbox, .. } = server_state(&server);
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
    let store = server_state(&server).dedup;
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
    assert_eq!(err.failure(), Some(vodhook::store::Failure::Auth), "{err:?}");
    assert!(err.to_string().contains("(authentication failed)"), "{err}");
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
        brief: None,
        resolution: None,
        group: None,
    };
    OutboxItem { action, attempts: 1, first_seen: due - 5, due, last_error: "HTTP 502".into(), held: false }
}

fn outbox(redis: &Redis) -> Outbox {
    Outbox::from_config(&redis.dedup_config("test:")).expect("outbox from config")
}

const NOW: i64 = 1_700_000_000;

async fn push_is_idempotent_and_listed(redis: &Redis) {
    let ob = outbox(redis);
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
    let shared = redis_state(redis).outbox.expect("redis state has an outbox");
    assert_eq!(shared.list().await.unwrap().len(), 2);
    assert!(State::open(&DedupConfig::default()).unwrap().outbox.is_none(), "no outbox without Redis");
}

on_every_redis!(outbox_push_is_idempotent_and_listed, push_is_idempotent_and_listed);

async fn take_due_leases_items(redis: &Redis) {
    let ob = outbox(redis).with_take_lease(Duration::from_secs(60));
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

on_every_redis!(outbox_take_due_leases_items, take_due_leases_items);

async fn reschedule_complete_and_dead_letter(redis: &Redis) {
    let ob = outbox(redis);
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

on_every_redis!(outbox_reschedule_complete_and_dead_letter, reschedule_complete_and_dead_letter);

async fn two_drainers_never_share_an_item(redis: &Redis) {
    let setup = outbox(redis);
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
            let ob = outbox(redis);
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
on_every_redis!(two_drainers_never_take_the_same_item, two_drainers_never_share_an_item);

// ---- TLS: what is refused, and how it is said ---------------------------------------------------

/// A claim against `url` with `ca` trusted: the error, which must be a TLS failure.
async fn tls_refusal(url: String, ca: Option<std::path::PathBuf>) -> String {
    let config = DedupConfig { tls_ca_file: ca, ..redis_config(&url) };
    let err = State::open(&config).unwrap().dedup.claim("k", LONG).await.unwrap_err();
    assert_eq!(err.failure(), Some(vodhook::store::Failure::Tls), "{err:?}");
    assert!(err.is_unreachable(), "delivered without dedup, like any outage: {err:?}");
    err.to_string()
}

#[tokio::test]
async fn tls_with_a_wrong_ca_or_host_name_is_refused_with_a_clear_error() {
    let ca = support::redis::Ca::new("the right CA");
    let server = RedisServer::start_tls(&ca.issue("server", &["localhost", "IP:127.0.0.1"]), &ca);
    let url = format!("rediss://:tls-pw-777@localhost:{}/", server.port());

    // The public roots alone do not know a private CA.
    let err = tls_refusal(url.clone(), None).await;
    assert!(err.contains("not signed by a trusted CA") && err.contains("TLS handshake failed"), "{err}");
    assert!(!err.contains("tls-pw-777"), "{err}");
    // Another private CA is no better.
    let other = support::redis::Ca::new("another CA");
    let err = tls_refusal(url.clone(), Some(other.cert())).await;
    assert!(err.contains("not signed by a trusted CA"), "{err}");

    // The right CA, but a certificate for another host.
    let elsewhere = RedisServer::start_tls(&ca.issue("elsewhere", &["redis.elsewhere.example"]), &ca);
    let url = format!("rediss://localhost:{}/", elsewhere.port());
    let err = tls_refusal(url, Some(ca.cert())).await;
    assert!(err.contains("not valid for the host name \"localhost\""), "{err}");

    // The right CA and name: accepted (the control).
    let url = format!("rediss://localhost:{}/", server.port());
    let config = DedupConfig { tls_ca_file: Some(ca.cert()), ..redis_config(&url) };
    acquired(State::open(&config).unwrap().dedup.claim("k", LONG).await);
}

/// The wrong scheme for the port: `redis://` to a TLS port, `rediss://` to a plain one. Either
/// way Redis is unreachable (the caller delivers without dedup), within the operation budget.
#[tokio::test]
async fn the_wrong_scheme_for_the_port_is_unreachable() {
    let ca = support::redis::Ca::new("a CA");
    let tls = RedisServer::start_tls(&ca.issue("server", &["localhost"]), &ca);
    let plain = RedisServer::start();
    for config in [
        redis_config(&format!("redis://127.0.0.1:{}/", tls.port())),
        DedupConfig {
            tls_ca_file: Some(ca.cert()),
            ..redis_config(&format!("rediss://localhost:{}/", plain.port()))
        },
    ] {
        let err = State::open(&config).unwrap().dedup.claim("k", LONG).await.unwrap_err();
        assert!(err.is_unreachable(), "{err:?}");
    }
}

#[test]
fn an_unreadable_ca_file_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("not-a-ca.pem");
    std::fs::write(&path, "hello\n").unwrap();
    let config = DedupConfig { tls_ca_file: Some(path), ..redis_config("rediss://localhost:6380/") };
    let err = State::open(&config).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("tls_ca_file") && err.contains("not-a-ca.pem"), "{err}");
}

// ---- Redis Cluster: spread, and a node going away -------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn on_a_cluster_keys_spread_over_every_node_and_a_dead_node_costs_only_dedup() {
    let mut redis = Redis::start(Shape::Cluster);
    let store = redis_store(&redis);
    for i in 0..60 {
        let key = format!("WorkflowTaskComplete:spread-{i}|all|ops");
        let token = acquired(store.claim(&key, LONG).await);
        store.complete(&key, &token, WEEK).await.unwrap();
    }
    let cluster = redis.cluster().unwrap();
    let per_node: Vec<usize> = (0..3).map(|i| cluster.keys_on(i)).collect();
    assert!(per_node.iter().all(|&n| n > 0), "every node holds some keys: {per_node:?}");

    // A node killed mid-run: every call still returns (within the operation budget) — an answer
    // for keys elsewhere, an "unreachable" error for the dead node's keys (the caller delivers
    // without dedup) — and nothing panics or hangs.
    let Redis::Cluster(cluster) = &mut redis else { unreachable!() };
    cluster.kill(2);
    let (mut answered, mut unreachable) = (0, 0);
    for i in 0..60 {
        match store.claim(&format!("WorkflowTaskComplete:spread-{i}|all|ops"), LONG).await {
            Ok(claim) => {
                assert_eq!(claim, Claim::AlreadyDone, "spread-{i}");
                answered += 1;
            }
            Err(err) => {
                assert!(err.is_unreachable(), "{err:?}");
                unreachable += 1;
            }
        }
    }
    assert_eq!(answered + unreachable, 60);
    assert!(unreachable > 0, "the dead node's keys cannot be answered");
}

// ---- replay, purge, expiry, and the keys of older versions -----------------------------------

/// Dead letters back to the outbox: a fresh schedule, taken once however many replays race, and
/// a key another replay moved first is not moved again.
async fn requeue_and_take_keys(redis: &Redis) {
    let ob = outbox(redis);
    let mut keys = Vec::new();
    for i in 0..20 {
        let it = item(&format!("r{i}"), NOW);
        ob.push(&it).await.unwrap();
        let taken = ob.take_keys(std::slice::from_ref(&it.action.key), NOW).await.unwrap();
        assert_eq!(taken.len(), 1);
        ob.dead_letter(&taken[0], "gave up").await.unwrap();
        keys.push(it.action.key);
    }
    assert_eq!(ob.counts().await.unwrap(), (0, 20));

    let now = chrono::Utc::now().timestamp();
    let moved = ob.requeue(Part::Dead, &keys, now).await.unwrap();
    assert_eq!(moved, keys, "every dead letter moved");
    assert!(ob.requeue(Part::Dead, &keys, now).await.unwrap().is_empty(), "moved once only");
    let waiting = ob.list().await.unwrap();
    assert_eq!(waiting.len(), 20);
    assert!(waiting.iter().all(|w| w.attempts == 0 && w.first_seen == now && w.due == now), "{waiting:?}");

    // Two takers of the same keys: each item to one of them.
    let other = outbox(redis);
    let (a, b) = tokio::join!(ob.take_keys(&keys, now), other.take_keys(&keys, now));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.len() + b.len(), 20, "{} + {}", a.len(), b.len());
    let unique: HashSet<_> = a.iter().chain(&b).map(|i| i.action.key.clone()).collect();
    assert_eq!(unique.len(), 20);

    // Waiting items made due again (a replay without --dead).
    assert_eq!(ob.requeue(Part::Waiting, &keys[..3], now).await.unwrap().len(), 3);
    assert_eq!(ob.take_keys(&keys, now).await.unwrap().len(), 3);
    assert!(ob.requeue(Part::Waiting, &["nope".to_owned()], now).await.unwrap().is_empty());
}
on_every_redis!(outbox_requeue_and_take_keys, requeue_and_take_keys);

async fn purge_and_expire(redis: &Redis) {
    let ob = outbox(redis);
    for i in 0..4 {
        let it = item(&format!("p{i}"), NOW);
        ob.push(&it).await.unwrap();
        ob.dead_letter(&it, "gave up").await.unwrap();
    }
    let keep = item("keep", NOW);
    ob.push(&keep).await.unwrap();
    let dead: Vec<String> =
        ob.dead_letters().await.unwrap().iter().map(|d| d.item.action.key.clone()).collect();
    assert_eq!(ob.purge(Part::Dead, &dead[..1]).await.unwrap(), 1);
    assert_eq!(ob.purge(Part::Dead, &dead[..1]).await.unwrap(), 0, "gone already");
    assert_eq!(ob.counts().await.unwrap(), (1, 3));

    // Expiry removes what was given up on before the cut-off, nothing younger.
    let now = chrono::Utc::now().timestamp();
    assert_eq!(ob.expire_dead(now - 3600).await.unwrap(), 0);
    assert_eq!(ob.expire_dead(now + 1).await.unwrap(), 3);
    assert_eq!(ob.counts().await.unwrap(), (1, 0), "waiting items are never expired");
    assert_eq!(ob.purge(Part::Waiting, std::slice::from_ref(&keep.action.key)).await.unwrap(), 1);
    assert_eq!(ob.counts().await.unwrap(), (0, 0));
}
on_every_redis!(outbox_purge_and_expire, purge_and_expire);

/// What a version before the `{outbox}` hash tag left under `<prefix>outbox:*` is adopted by the
/// next drain, not left behind.
#[tokio::test]
async fn outbox_entries_under_the_untagged_keys_of_an_older_version_are_adopted() {
    let redis = Redis::start(Shape::Plain);
    let waiting = item("old-waiting", NOW);
    let dead =
        vodhook::outbox::DeadLetter { item: item("old-dead", NOW), reason: "gave up".into(), dead_at: NOW };
    let _: () = raw(
        &redis,
        redis::cmd("EVAL")
            .arg(
                "redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]); redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1]); \
                 redis.call('HSET', KEYS[3], ARGV[4], ARGV[5]); return nil",
            )
            .arg(3)
            .arg(&["test:outbox:items", "test:outbox:due", "test:outbox:dead"])
            .arg(&waiting.action.key)
            .arg(serde_json::to_string(&waiting).unwrap())
            .arg(waiting.due)
            .arg(&dead.item.action.key)
            .arg(serde_json::to_string(&dead).unwrap()),
    )
    .await;
    let ob = outbox(&redis);
    assert_eq!(ob.adopt_untagged(NOW).await.unwrap(), 2);
    assert_eq!(ob.list().await.unwrap(), vec![waiting]);
    assert_eq!(ob.dead_letters().await.unwrap(), vec![dead]);
    assert_eq!(ob.adopt_untagged(NOW).await.unwrap(), 0, "the old keys are gone");
    let old: i64 = raw(&redis, redis::cmd("EXISTS").arg("test:outbox:items").arg("test:outbox:dead")).await;
    assert_eq!(old, 0);
}

/// A cluster reached as one endpoint (`cluster = false`): keys the seed node does not serve come
/// back `MOVED`. That is reported as such (with the setting to look at), and counts as Redis
/// being unreachable for those keys: delivered without dedup, never lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_reached_as_one_endpoint_reports_the_redirects() {
    let redis = Redis::start(Shape::Cluster);
    let store = State::open(&redis_config(&redis.url())).unwrap().dedup;
    let mut redirected = Vec::new();
    for i in 0..30 {
        if let Err(err) = store.claim(&format!("WorkflowTaskComplete:moved-{i}|all|ops"), LONG).await {
            redirected.push(err);
        }
    }
    assert!(!redirected.is_empty(), "two thirds of the slots live elsewhere");
    for err in &redirected {
        assert_eq!(err.failure(), Some(vodhook::store::Failure::Redirects), "{err:?}");
        assert!(err.is_unreachable(), "{err:?}");
        assert!(err.to_string().contains("`cluster = false` against a cluster"), "{err}");
    }
}

// ---- rate budgets: one sliding window per channel, shared by every instance -------------------

/// Two "instances" (each its own connection and budgets) on one channel allowing 5 per 30 s
/// and 2 a second, plus a second channel for the backlog mark.
fn budgets(redis: &Redis, prefix: &str) -> vodhook::dispatch::budget::Budgets {
    let text = "[[channels]]\nname = \"ding\"\ntype = \"dingtalk\"\nurl = \"https://oapi.dingtalk.com/robot/send?access_token=t\"\n\
                rate_per_minute = 5\nrate_window_secs = 30\nblock_secs = 5\n\n\
                [[channels]]\nname = \"lark\"\ntype = \"feishu\"\nurl = \"https://open.feishu.cn/open-apis/bot/v2/hook/x\"\n\n\
                [[routes]]\nname = \"all\"\nchannels = [\"ding\", \"lark\"]\n";
    let config = vodhook::setup::Setup::from_toml_str(text, &|_: &str| None).expect("valid").config;
    let conn = RedisConn::open(&redis.dedup_config(prefix)).expect("connection");
    vodhook::dispatch::budget::Budgets::new(&config, Some(conn))
}

async fn shared_budgets_hold_the_limit_across_instances(redis: &Redis) {
    use vodhook::dispatch::budget::{Mode, Take};
    let prefix = format!("budget-{:x}:", std::process::id() ^ rand_suffix());
    let (a, b) = (budgets(redis, &prefix), budgets(redis, &prefix));
    let mut granted = 0;
    let mut waits = Vec::new();
    for i in 0..20 {
        let budget = if i % 2 == 0 { &a } else { &b };
        match budget.take("ding", Mode::Digest).await {
            Take::Granted => granted += 1,
            Take::Wait(wait) => waits.push(wait),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(granted, 5, "5 in any 30.5 s window, whichever instance asks");
    assert!(
        waits.iter().all(|w| *w > Duration::from_secs(25) && *w <= Duration::from_millis(30_500)),
        "{waits:?}"
    );
    // A peek counts nothing; the second channel's per-second limit (Feishu 5) is its own.
    for _ in 0..3 {
        assert_eq!(a.take("lark", Mode::Peek).await, Take::Granted);
    }
    // The backlog mark: a single message joins it, a digest takes budget, a peek says open.
    b.set_backlog("lark", true).await;
    assert_eq!(a.take("lark", Mode::Single).await, Take::Backlog);
    assert_eq!(a.take("lark", Mode::Peek).await, Take::Backlog);
    assert_eq!(a.take("lark", Mode::Digest).await, Take::Granted);
    a.set_backlog("lark", false).await;
    assert_eq!(b.take("lark", Mode::Single).await, Take::Granted);
    // A block from one instance closes the channel for the other.
    a.block("lark", Duration::from_secs(5)).await;
    match b.take("lark", Mode::Single).await {
        Take::Blocked(left) => {
            assert!(left > Duration::from_secs(3) && left <= Duration::from_secs(5), "{left:?}")
        }
        other => panic!("expected Blocked, got {other:?}"),
    }
    // The key is one, in one slot, with an expiry.
    let key = format!("{prefix}{{budget:ding}}:window");
    let ttl: i64 = raw(redis, redis::cmd("PTTL").arg(&key)).await;
    assert!(ttl > 0, "the budget key expires ({ttl})");
}

fn rand_suffix() -> u32 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0)
}

on_every_redis!(redis_shared_budgets, shared_budgets_hold_the_limit_across_instances);

/// The budget script's clock is Redis's (`TIME`), and its window slides: the sixth message is
/// refused until the first one leaves the window, not a fixed refill after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_window_slides() {
    use vodhook::dispatch::budget::{Mode, Take};
    let redis = Redis::start(Shape::Plain);
    let prefix = format!("slide-{}:", rand_suffix());
    let budget = {
        let text = "[delivery]\nbudget_margin_ms = 0\n\n[[channels]]\nname = \"ding\"\ntype = \"dingtalk\"\n\
                    url = \"https://oapi.dingtalk.com/robot/send?access_token=t\"\nrate_per_minute = 2\nrate_window_secs = 1\n\n\
                    [[routes]]\nname = \"all\"\nchannels = [\"ding\"]\n";
        let config = vodhook::setup::Setup::from_toml_str(text, &|_: &str| None).expect("valid").config;
        vodhook::dispatch::budget::Budgets::new(
            &config,
            Some(RedisConn::open(&redis.dedup_config(&prefix)).unwrap()),
        )
    };
    assert_eq!(budget.take("ding", Mode::Digest).await, Take::Granted);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(budget.take("ding", Mode::Digest).await, Take::Granted);
    let Take::Wait(wait) = budget.take("ding", Mode::Digest).await else { panic!("spent") };
    // The first leaves the window about 0.4 s from now; the second only 1 s from now.
    assert!(wait < Duration::from_millis(500), "{wait:?}");
    tokio::time::sleep(wait + Duration::from_millis(20)).await;
    assert_eq!(budget.take("ding", Mode::Digest).await, Take::Granted);
    assert!(matches!(budget.take("ding", Mode::Digest).await, Take::Wait(_)));
}

/// Redis gone: each instance's own window decides (the same limit), and nothing fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_budget_store_the_instance_paces_itself() {
    use vodhook::dispatch::budget::{Mode, Take};
    let mut server = RedisServer::start();
    let text = "[[channels]]\nname = \"ding\"\ntype = \"dingtalk\"\nurl = \"https://oapi.dingtalk.com/robot/send?access_token=t\"\n\
                rate_per_minute = 3\n\n[[routes]]\nname = \"all\"\nchannels = [\"ding\"]\n";
    let config = vodhook::setup::Setup::from_toml_str(text, &|_: &str| None).expect("valid").config;
    let budgets = vodhook::dispatch::budget::Budgets::new(
        &config,
        Some(RedisConn::open(&redis_config(&server.url())).unwrap()),
    );
    assert_eq!(budgets.take("ding", Mode::Digest).await, Take::Granted, "shared, while Redis is up");
    server.stop();
    let takes: Vec<Take> =
        futures_util::future::join_all((0..5).map(|_| budgets.take("ding", Mode::Single))).await;
    let granted = takes.iter().filter(|t| **t == Take::Granted).count();
    assert_eq!(granted, 3, "the local window has its own 3: {takes:?}");
    assert!(takes.iter().all(|t| matches!(t, Take::Granted | Take::Wait(_))), "{takes:?}");
}
