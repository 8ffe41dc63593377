//! Signed links: a button in a message leads to `/actions/<token>` on vodhook itself, where a
//! person confirms an action on the event (the `signed_link` module makes and reads the tokens).
//!
//! - `GET` never acts: chat clients, link previewers and scanners fetch links on their own. It
//!   shows what will happen and a confirm button (a form posting to the same URL).
//! - `POST` acts once per token: the token's hash is claimed in the dedup store like an action
//!   (so two clicks, on any instances, make one silence), and the result is kept beside the
//!   claim for the page of a second click ("already done at …").
//! - The token alone authenticates: whoever holds the link can act, until it expires, once.
//!   Refusals say nothing of the token's content: 403 for an invalid one, 410 for an expired one,
//!   404 when links are not configured or the path is not a token's.

pub mod page;

use std::time::Duration;

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{LinksConfig, Locale, Span};
use crate::dedup::{Claim, DedupStore};
use crate::dispatch::{Reran, Rerun};
use crate::redact::Secret;
use crate::signed_link::{Act, Link, Refused, Signer};
use crate::silence::Silence;
use crate::silence::store::SilenceStore;
use crate::store::RedisConn;
use crate::template::locale::word;

pub use crate::signed_link::PREFIX;

/// How long one click may hold its claim while it acts.
const LEASE: Duration = Duration::from_secs(30);

/// The link pages of one process.
pub struct Links {
    signer: Signer,
    /// `[links] previous_secret`: accepted, never used to sign.
    previous: Option<Secret>,
    claims: DedupStore,
    silences: Option<SilenceStore>,
}

/// Names the address only: the secrets stay out of every log.
impl std::fmt::Debug for Links {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Links").field("signer", &self.signer).finish_non_exhaustive()
    }
}

/// What an action did, kept for the page of a second click.
#[derive(Debug, Serialize, Deserialize)]
struct Done {
    at: i64,
    result: String,
}

impl Links {
    /// Links signed with `config`'s secrets; claims and silences in Redis when there is one (else
    /// claims per instance, and no silences).
    pub fn new(config: &LinksConfig, redis: Option<RedisConn>, capacity: usize) -> Links {
        Links {
            signer: Signer::new(config),
            previous: config.previous_secret.clone(),
            claims: match &redis {
                Some(conn) => DedupStore::redis(conn.clone()),
                None => DedupStore::memory(capacity),
            },
            silences: redis.map(SilenceStore::new),
        }
    }

    /// What this process signs links with.
    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// Answers a request under [`PREFIX`] (`rest`: the path after it); `vod` makes re-runs.
    pub async fn handle(&self, method: &Method, rest: &str, vod: Vod<'_>, now: i64) -> Response<Bytes> {
        let Some(token) = rest.strip_prefix('/').filter(|t| !t.is_empty() && !t.contains('/')) else {
            return not_found(Locale::En);
        };
        let secrets: Vec<&Secret> = std::iter::once(self.signer.secret()).chain(&self.previous).collect();
        let link = match Link::verify(token, &secrets, now) {
            Ok(link) => link,
            Err(refused @ Refused::Invalid) => {
                return page::refusal(StatusCode::FORBIDDEN, Locale::En, &refused.to_string());
            }
            Err(refused @ Refused::Expired(_)) => {
                return page::refusal(StatusCode::GONE, Locale::En, &refused.to_string());
            }
        };
        match *method {
            Method::GET | Method::HEAD => confirmation(&link),
            Method::POST => self.act_once(token, &link, vod, now).await,
            _ => page::refusal(
                StatusCode::METHOD_NOT_ALLOWED,
                link.locale,
                "GET shows the page, POST confirms",
            ),
        }
    }

    /// Performs `link`'s action unless a click did already (on any instance).
    async fn act_once(&self, token: &str, link: &Link, vod: Vod<'_>, now: i64) -> Response<Bytes> {
        let key = claim_key(token);
        let locale = link.locale;
        let claim = match self.claims.claim(&key, LEASE).await {
            Ok(claim) => claim,
            Err(err) => return unavailable(locale, &err.to_string()),
        };
        let claim = match claim {
            Claim::Acquired(claim) => claim,
            Claim::AlreadyDone => return self.already_done(&key, locale).await,
            Claim::InFlight => {
                let sentence = word(locale, "This action is being done right now: reload in a moment.");
                return page::refusal(StatusCode::CONFLICT, locale, &sentence);
            }
        };
        match self.perform(link, &key, vod, now).await {
            Ok(result) => {
                let done =
                    serde_json::to_string(&Done { at: now, result: result.clone() }).unwrap_or_default();
                let keep = Duration::from_secs(u64::try_from(link.expires_at - now).unwrap_or(0) + 86_400);
                let kept = self.claims.cache_put(&result_key(&key), &done, keep).await;
                if let Err(err) = kept.and(self.claims.complete(&key, &claim, keep).await) {
                    tracing::error!(error = %err, "a link's action was done but could not be marked done");
                }
                tracing::info!(act = ?link.act, workflow_id = %link.workflow_id, %result, "link action done");
                let heading = word(locale, "Done");
                page::page(StatusCode::OK, locale, &heading, &format!("<p>{}</p>", page::escape(&result)))
            }
            Err(err) => {
                let _ = self.claims.release(&key, &claim).await;
                tracing::warn!(act = ?link.act, error = %err, "link action failed");
                unavailable(locale, &err)
            }
        }
    }

    async fn already_done(&self, key: &str, locale: Locale) -> Response<Bytes> {
        let done = self.claims.cache_get(&result_key(key)).await.ok().flatten();
        let done: Option<Done> = done.and_then(|json| serde_json::from_str(&json).ok());
        let body = match done {
            Some(done) => format!(
                "<p>{} {}.</p><p>{}</p>",
                page::escape(&word(locale, "Already done at")),
                page::escape(&rfc3339(done.at)),
                page::escape(&done.result)
            ),
            None => format!("<p>{}</p>", page::escape(&word(locale, "Already done."))),
        };
        page::page(StatusCode::OK, locale, &word(locale, "Already done"), &body)
    }

    /// The action itself; the sentence the result page shows.
    async fn perform(&self, link: &Link, key: &str, vod: Vod<'_>, now: i64) -> Result<String, String> {
        match link.act {
            Act::Rerun => {
                let rerun = Rerun {
                    key,
                    video_id: &link.video_id,
                    workflow_id: &link.workflow_id,
                    credentials: vod.credentials,
                };
                let reran = vod.dispatcher.rerun(rerun, vod.deadline).await?;
                Ok(rerun_sentence(link.locale, &reran))
            }
            Act::Silence => {
                let store = self.silences.as_ref().ok_or("silences need the redis backend ([store])")?;
                let mut matchers = vec![format!("workflow_id={}", quoted(&link.workflow_id))];
                if let Some(code) = &link.error_code {
                    matchers.push(format!("error_code={}", quoted(code)));
                }
                let span = Span(Duration::from_secs(link.silence_secs.unwrap_or(0)));
                let comment = format!("from a message's button: {}", link.title);
                let silence = Silence::new(&matchers, span, "link", &comment, now)?;
                store.add(&silence, now).await.map_err(|e| e.to_string())?;
                Ok(format!(
                    "{} {}: {} ({} {})",
                    word(link.locale, "Silenced until"),
                    rfc3339(silence.ends_at),
                    matchers.join(", "),
                    word(link.locale, "silence"),
                    silence.id,
                ))
            }
        }
    }
}

/// What a re-run is made with: the dispatcher (the VOD client and the loop guard), the
/// invocation's credentials (on Function Compute), and when the request must be answered.
#[derive(Clone, Copy)]
pub struct Vod<'a> {
    pub dispatcher: &'a crate::dispatch::Dispatcher,
    pub credentials: Option<&'a crate::vod::Credentials>,
    pub deadline: std::time::Instant,
}

/// What the page says of a re-run.
fn rerun_sentence(locale: Locale, reran: &Reran) -> String {
    match reran {
        Reran::Submitted { request_id } => {
            format!("{} (RequestId {request_id})", word(locale, "Re-run submitted"))
        }
        Reran::AlreadySubmitted => word(locale, "Re-run submitted"),
        Reran::Queued { why } => format!(
            "{} ({why}). {}",
            word(locale, "Re-run queued: VOD did not take it yet"),
            word(locale, "The outbox tries again; see `vodhook outbox list`.")
        ),
        Reran::Guarded { max } => format!(
            "{} ({max}, [links] max_reruns)",
            word(locale, "Not re-run: this workflow was re-run for this video as often as allowed")
        ),
    }
}

/// The confirmation page: what will happen, the event's details, and the confirm button.
fn confirmation(link: &Link) -> Response<Bytes> {
    let locale = link.locale;
    let (heading, confirm) = match link.act {
        Act::Silence => (
            format!("{} {}", word(locale, "Silence workflow"), link.workflow_id),
            word(locale, "Confirm: silence"),
        ),
        Act::Rerun => (
            format!("{} {}", word(locale, "Re-run workflow"), link.workflow_id),
            word(locale, "Confirm: re-run"),
        ),
    };
    let duration = link.silence_secs.map(|s| Span(Duration::from_secs(s)).to_string()).unwrap_or_default();
    let details = page::details(
        locale,
        &[
            ("Title", &link.title),
            ("Video ID", &link.video_id),
            ("Workflow ID", &link.workflow_id),
            ("Error code", link.error_code.as_deref().unwrap_or_default()),
            ("For", &duration),
            ("Link expires", &rfc3339(link.expires_at)),
        ],
    );
    let form =
        format!("<form method=\"post\"><button type=\"submit\">{}</button></form>", page::escape(&confirm));
    let note = format!(
        "<p class=\"note\">{}</p>",
        page::escape(&word(locale, "Nothing happens until you confirm."))
    );
    page::page(StatusCode::OK, locale, &heading, &format!("{details}{form}{note}"))
}

/// The page for a path under `/actions/` that is not a token, or when links are off.
pub fn not_found(locale: Locale) -> Response<Bytes> {
    page::refusal(StatusCode::NOT_FOUND, locale, &word(locale, "No such page."))
}

fn unavailable(locale: Locale, why: &str) -> Response<Bytes> {
    let sentence = format!("{}: {why}", word(locale, "Not done, try again later"));
    page::refusal(StatusCode::SERVICE_UNAVAILABLE, locale, &sentence)
}

/// The claim of a token: its hash (the token itself never goes into a store key).
fn claim_key(token: &str) -> String {
    let hash = Sha256::digest(token.as_bytes());
    let hex: String = hash[..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("link|{hex}")
}

fn result_key(claim_key: &str) -> String {
    format!("{claim_key}|result")
}

/// `text` as a matcher's quoted value.
fn quoted(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

fn rfc3339(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0).map(|t| t.to_rfc3339()).unwrap_or_default()
}
