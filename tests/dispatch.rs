//! The dispatcher in process: claim → send → settle on the callback path, and the drain, against
//! a real webhook stand-in (signature-checking HTTP server on loopback), the memory store, and a
//! real `redis-server` where the outbox is needed. Each case is one path of an action's life:
//! duplicate, in flight elsewhere at the deadline, permanent failure, queued, left for the
//! sender's retry, drain rescheduling, drain delivering, dead letter.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::redis::RedisServer;
use support::standins::{Behaviour, StandIn};
use vodhook::action::Action;
use vodhook::channel::ChannelType;
use vodhook::dedup::Claim;
use vodhook::dispatch::Dispatcher;
use vodhook::event::{Delivery, decode_delivery};
use vodhook::outbox::OutboxItem;
use vodhook::setup::{Setup, State};

/// Long enough for one attempt to a local stand-in, short enough to reach the deadline quickly.
const DEADLINE: Duration = Duration::from_millis(700);
const LONG: Duration = Duration::from_secs(600);

/// A failed workflow task with its own TaskId.
fn delivery(task_id: &str) -> Delivery {
    let mut event: Value = serde_json::from_str(vodhook::samples::FAILED).expect("the sample is JSON");
    event["TaskId"] = json!(task_id);
    decode_delivery(event.to_string().as_bytes()).expect("the sample decodes")
}

/// The configuration: one webhook channel, one route, the store `dedup` (TOML of `[dedup]`), and
/// an outbox schedule whose first rounds have no delay (a rescheduled item is due again at once)
/// and whose eighth round would come after the maximum age (an hour): an item given up on.
fn setup(hook: &StandIn, dedup: &str) -> Setup {
    let text = format!(
        "{dedup}\n[delivery]\nattempt_timeout_ms = 300\nbackoff_initial_ms = 50\nbackoff_max_ms = 100\n\n\
         [outbox]\nschedule_secs = [0, 0, 0, 0, 0, 0, 3600]\nmax_age_secs = 3600\n\n{}\n\
         [[routes]]\nname = \"all\"\nchannels = [\"hook\"]\n",
        hook.channel_toml("hook")
    );
    Setup::from_toml_str(&text, &|_| None).unwrap_or_else(|e| panic!("{e}"))
}

fn redis_dedup(redis: &RedisServer) -> String {
    format!("[dedup]\nbackend = \"redis\"\nurl = \"{}\"\nkey_prefix = \"dispatch-test:\"\n", redis.url())
}

fn dispatcher(setup: Setup) -> Dispatcher {
    let state = State::open(&setup.config.store).expect("the store opens");
    Dispatcher::new(&setup.config, setup.router, state.dedup, state.outbox, state.redis)
}

/// The action the route makes of `task_id`'s event (what the dispatcher will claim and send).
fn action_of(setup: &Setup, task_id: &str) -> Action {
    let mut actions = setup.router.plan(&delivery(task_id).events[0]).expect("renders");
    assert_eq!(actions.len(), 1);
    actions.remove(0)
}

fn deadline() -> Instant {
    Instant::now() + DEADLINE
}

fn unix_now() -> i64 {
    support::unix_now()
}

/// A message is rendered once, when it is sent: a redelivery of an event already done renders
/// nothing. Shown with a template that cannot render the redelivery's (changed) title: before,
/// every action was rendered when planned, and the duplicate failed on it.
#[tokio::test]
async fn a_duplicate_renders_nothing() {
    let hook = StandIn::start(ChannelType::Webhook).await;
    let text = format!(
        "{}\n[[routes]]\nname = \"all\"\nchannels = [\"hook\"]\n\
         template = '{{% if title == \"poison\" %}}{{{{ title | int }}}}{{% endif %}}{{{{ headline }}}}'\n",
        hook.channel_toml("hook")
    );
    let dispatcher = dispatcher(Setup::from_toml_str(&text, &|_| None).unwrap_or_else(|e| panic!("{e}")));
    let first = dispatcher.dispatch(&delivery("render-1"), deadline()).await;
    assert_eq!((first.actions, first.delivered), (1, 1), "{first:?}");
    let poisoned = |task_id: &str| {
        let mut event: Value = serde_json::from_str(vodhook::samples::FAILED).expect("the sample is JSON");
        event["TaskId"] = json!(task_id);
        event["TaskInput"] = json!(r#"{"Type":"Media","Title":"poison"}"#);
        decode_delivery(event.to_string().as_bytes()).expect("decodes")
    };
    let again = dispatcher.dispatch(&poisoned("render-1"), deadline()).await;
    assert_eq!((again.duplicate, again.failed_permanently), (1, 0), "{again:?}");
    // The template does fail on that title: a new event with it is not sent.
    let fresh = dispatcher.dispatch(&poisoned("render-2"), deadline()).await;
    assert_eq!((fresh.failed_permanently, fresh.delivered), (1, 0), "{fresh:?}");
    assert_eq!(hook.received().len(), 1);
}

#[tokio::test]
async fn a_duplicate_sends_nothing() {
    let hook = StandIn::start(ChannelType::Webhook).await;
    let dispatcher = dispatcher(setup(&hook, ""));
    let first = dispatcher.dispatch(&delivery("dup-1"), deadline()).await;
    assert_eq!((first.actions, first.delivered), (1, 1), "{first:?}");
    let again = dispatcher.dispatch(&delivery("dup-1"), deadline()).await;
    assert_eq!((again.delivered, again.duplicate), (0, 1), "{again:?}");
    assert!(!again.needs_retry());
    assert_eq!(hook.received().len(), 1);
}

#[tokio::test]
async fn a_permanent_failure_is_not_retried_and_frees_the_action() {
    let hook = StandIn::start(ChannelType::Webhook).await;
    hook.set_behaviour(Behaviour::ConfigError);
    let dispatcher = dispatcher(setup(&hook, ""));
    let report = dispatcher.dispatch(&delivery("perm-1"), deadline()).await;
    assert_eq!((report.failed_permanently, report.retried), (1, 0), "{report:?}");
    assert!(!report.needs_retry(), "retrying cannot fix a configuration error: {report:?}");
    assert_eq!(hook.requests().len(), 1, "tried once");
    // The claim was released: once the receiver is fixed, a redelivery sends.
    hook.set_behaviour(Behaviour::Accept);
    let report = dispatcher.dispatch(&delivery("perm-1"), deadline()).await;
    assert_eq!(report.delivered, 1, "{report:?}");
    assert_eq!(hook.received().len(), 1);
}

#[tokio::test]
async fn without_an_outbox_the_sender_must_retry() {
    let hook = StandIn::start(ChannelType::Webhook).await;
    hook.set_behaviour(Behaviour::ServerError);
    let dispatcher = dispatcher(setup(&hook, ""));
    let report = dispatcher.dispatch(&delivery("left-1"), deadline()).await;
    assert_eq!((report.left_for_retry, report.queued), (1, 0), "{report:?}");
    assert!(report.retried >= 1, "retried within the deadline: {report:?}");
    assert!(report.needs_retry(), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_elsewhere_at_the_deadline() {
    let redis = RedisServer::start();
    let hook = StandIn::start(ChannelType::Webhook).await;
    let setup = setup(&hook, &redis_dedup(&redis));
    let action = action_of(&setup, "inflight-1");
    // Another instance holds the action: claimed, not done.
    let other = State::open(&setup.config.store).unwrap();
    assert!(matches!(other.dedup.claim(&action.key, LONG).await, Ok(Claim::Acquired(_))));
    let dispatcher = dispatcher(setup);

    let report = dispatcher.dispatch(&delivery("inflight-1"), deadline()).await;
    assert_eq!(report.in_flight_elsewhere, 1, "{report:?}");
    assert!(report.needs_retry(), "the holder may yet fail: VOD must deliver again: {report:?}");
    assert!(hook.requests().is_empty(), "nothing sent while another instance holds it");

    // With the action waiting in the outbox, the holder's failure is covered: 200 is safe.
    let now = unix_now();
    let item = OutboxItem {
        action,
        attempts: 1,
        first_seen: now,
        due: now + 60,
        last_error: "x".into(),
        held: false,
    };
    assert!(other.outbox.as_ref().unwrap().push(&item).await.unwrap());
    let report = dispatcher.dispatch(&delivery("inflight-1"), deadline()).await;
    assert_eq!((report.queued, report.in_flight_elsewhere), (1, 0), "{report:?}");
    assert!(!report.needs_retry(), "{report:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undelivered_at_the_deadline_is_queued_then_drained() {
    let redis = RedisServer::start();
    let hook = StandIn::start(ChannelType::Webhook).await;
    hook.set_behaviour(Behaviour::ServerError);
    let setup = setup(&hook, &redis_dedup(&redis));
    let observer = State::open(&setup.config.store).unwrap().outbox.unwrap();
    let dispatcher = dispatcher(setup);

    let report = dispatcher.dispatch(&delivery("queued-1"), deadline()).await;
    assert_eq!(report.queued, 1, "{report:?}");
    assert!(!report.needs_retry(), "the outbox holds it: {report:?}");
    let waiting = observer.list().await.unwrap();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].attempts, 1, "the callback's quick retries count as one round");
    assert!(waiting[0].last_error.contains("503"), "{:?}", waiting[0].last_error);

    // Still failing: the drain reschedules it and counts the round.
    let drained = dispatcher.drain(deadline()).await;
    assert_eq!((drained.taken, drained.rescheduled), (1, 1), "{drained:?}");
    assert_eq!(observer.list().await.unwrap()[0].attempts, 2);

    // The receiver is back: delivered once, the outbox empty, and a duplicate callback sends nothing.
    hook.set_behaviour(Behaviour::Accept);
    let drained = dispatcher.drain(deadline()).await;
    assert_eq!(drained.delivered, 1, "{drained:?}");
    assert!(observer.list().await.unwrap().is_empty());
    let report = dispatcher.dispatch(&delivery("queued-1"), deadline()).await;
    assert_eq!(report.duplicate, 1, "{report:?}");
    assert_eq!(hook.received().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_drain_dead_letters_what_is_too_old_or_refused() {
    let redis = RedisServer::start();
    let hook = StandIn::start(ChannelType::Webhook).await;
    let setup = setup(&hook, &redis_dedup(&redis));
    let observer = State::open(&setup.config.store).unwrap().outbox.unwrap();
    let now = unix_now();
    // Its next round would come past the outbox's max age.
    let old = OutboxItem {
        action: action_of(&setup, "dead-old"),
        attempts: 7,
        first_seen: now - 7200,
        due: now - 1,
        last_error: "503".into(),
        held: false,
    };
    // Refused for good by the receiver.
    let refused = OutboxItem { action: action_of(&setup, "dead-refused"), first_seen: now, ..old.clone() };
    observer.push(&old).await.unwrap();
    let dispatcher = dispatcher(setup);

    hook.set_behaviour(Behaviour::ServerError);
    let drained = dispatcher.drain(deadline()).await;
    assert_eq!(drained.dead_lettered, 1, "{drained:?}");
    hook.set_behaviour(Behaviour::ConfigError);
    observer.push(&refused).await.unwrap();
    let drained = dispatcher.drain(deadline()).await;
    assert_eq!(drained.dead_lettered, 1, "{drained:?}");

    assert!(observer.list().await.unwrap().is_empty());
    let dead = observer.dead_letters().await.unwrap();
    let keys: Vec<&str> = dead.iter().map(|d| d.item.action.key.as_str()).collect();
    assert_eq!(keys, [old.action.key.as_str(), refused.action.key.as_str()]);
    assert!(dead[0].reason.contains("gave up after 8 attempts"), "{:?}", dead[0].reason);
    assert!(hook.received().is_empty());
}
