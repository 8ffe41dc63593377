//! The last step of every send, on the callback path and in the drain alike: the claim taken
//! before sending is settled. Delivered → marked done for the dedup TTL, so no duplicate sends it
//! again; anything else → released, so the next delivery can claim it at once. Without a token
//! (the store was unreachable when claiming) there is nothing to settle.

use super::Dispatcher;
use crate::dedup::ClaimToken;

impl Dispatcher {
    /// Marks the action done. `false` when the store could not be reached: the answer must
    /// then say `dedup_unavailable`, since a redelivery would find no record and send again.
    pub(super) async fn complete(&self, key: &str, token: Option<&ClaimToken>) -> bool {
        if let Some(token) = token
            && let Err(err) = self.dedup.complete(key, token, self.timing.done_ttl).await
        {
            tracing::warn!(%key, error = %err, "could not mark the action done: a redelivery may send it again");
            return !err.is_unreachable();
        }
        true
    }

    /// The send failed or was not made: frees the action for the next delivery (VOD's retry, the
    /// drain). A claim that cannot be released expires with its lease.
    pub(super) async fn release(&self, key: &str, token: Option<&ClaimToken>) {
        if let Some(token) = token
            && let Err(err) = self.dedup.release(key, token).await
        {
            tracing::warn!(%key, error = %err, "could not release the claim: it expires with its lease");
        }
    }
}
