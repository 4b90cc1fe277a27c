//! Delivery from the store's durable `outbox` table, shared by its consumers:
//! voicemail-to-email (kind `email`, [`crate::voicemail::mail`]) and cluster
//! forwarding (kind `forward`, [`crate::cluster::forward`]).
//!
//! An entry is queued in the same SQLite transaction as whatever it is about
//! (see [`crate::store::Store::commit_message`]), so it survives any crash.
//! [`drain`] takes the due entries oldest first and, for each: the consumer
//! prepares it from the store as it is now (blocking, off the async threads),
//! delivers it (async, bounded by the policy's timeout), and on success
//! records that in the store ([`Consumer::delivered`] marks the entry done,
//! with whatever else belongs to that step). A failure is retried after
//! `retry_first`, doubling up to `retry_max` ([`Policy::backoff`]); after
//! `give_up_after` (if any) the entry is finished with an error in the log.
//! An entry that can never be delivered (its message is gone) is finished
//! without delivery. [`run`] drains whenever something is due, the store
//! changes or it is woken, and at least every minute.
//!
//! Invariant: an entry is marked done only by its consumer's `delivered`,
//! after a successful delivery, by give-up, or because it is obsolete.

use crate::store::{OutboxItem, Result as StoreResult, Store, now_ms};
use std::sync::Arc;
use std::time::Duration;

/// When to try again and when to stop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// The longest one delivery attempt may take.
    pub timeout: Duration,
    pub retry_first: Duration,
    pub retry_max: Duration,
    /// `None`: retry forever.
    pub give_up_after: Option<Duration>,
}

/// What happens after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    RetryAt(i64),
    GiveUp,
}

impl Policy {
    /// The wait before attempt `failures + 1`: `retry_first`, doubling, at most `retry_max`.
    pub fn backoff(&self, failures: u32) -> Duration {
        let factor = 1u32.checked_shl(failures.min(31)).unwrap_or(u32::MAX);
        self.retry_first.saturating_mul(factor).min(self.retry_max)
    }

    /// The decision after the attempt that failed at `now_ms` (the entry's
    /// `attempts` does not count it yet).
    pub fn after_failure(&self, item: &OutboxItem, now_ms: i64) -> Verdict {
        if let Some(g) = self.give_up_after
            && now_ms.saturating_sub(item.created_ms) >= g.as_millis() as i64
        {
            return Verdict::GiveUp;
        }
        Verdict::RetryAt(now_ms.saturating_add(self.backoff(item.attempts).as_millis() as i64))
    }
}

/// Why an entry cannot be prepared.
#[derive(Debug)]
pub enum PrepareError {
    /// Never will be (the message is gone, the payload is not ours…): the
    /// entry is finished without delivery.
    Obsolete(String),
    /// Maybe later (the store cannot be read now): retried like a failed delivery.
    Failed(String),
}

impl From<crate::store::StoreError> for PrepareError {
    fn from(e: crate::store::StoreError) -> Self {
        PrepareError::Failed(e.to_string())
    }
}

/// One kind of outbox entry and how to deliver it.
pub trait Consumer: Sync {
    /// The outbox kind this consumer owns.
    const KIND: &'static str;
    /// How its log lines start (`email`, `forward`).
    const LABEL: &'static str;
    /// What a successful delivery is called in the log (`accepted by the relay`).
    const ACCEPTED: &'static str;
    /// What the blocking steps need (cloned into `spawn_blocking`).
    type Ctx: Clone + Send + Sync + 'static;
    /// A prepared delivery.
    type Ready: Send + 'static;
    /// What a successful delivery leaves for [`Consumer::delivered`].
    type Done: Send + 'static;

    fn ctx(&self) -> &Self::Ctx;
    fn policy(&self) -> &Policy;
    /// Builds the delivery of one entry from the store (blocking).
    fn prepare(
        ctx: &Self::Ctx,
        store: &Store,
        item: &OutboxItem,
    ) -> Result<Self::Ready, PrepareError>;
    /// Hands it over; `Err` is the reason shown in the log and the entry.
    fn deliver(
        &self,
        ready: Self::Ready,
    ) -> impl std::future::Future<Output = Result<Self::Done, String>> + Send;
    /// Records a successful delivery (blocking): marks the entry done, in
    /// the same transaction as whatever else that means.
    fn delivered(
        ctx: &Self::Ctx,
        store: &Store,
        item: &OutboxItem,
        done: Self::Done,
    ) -> StoreResult<()>;
    /// Called after each [`drain`] pass (e.g. to close a connection).
    fn batch_done(&self) -> impl std::future::Future<Output = ()> + Send {
        async {}
    }
}

/// What one [`drain`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub sent: usize,
    pub failed: usize,
    pub given_up: usize,
    pub obsolete: usize,
    /// When the next pending entry is due (unix ms), if any.
    pub next_due_ms: Option<i64>,
}

async fn blocking<T: Send + 'static>(
    label: &str,
    store: &Store,
    f: impl FnOnce(&Store) -> T + Send + 'static,
) -> Option<T> {
    let s = store.clone();
    match tokio::task::spawn_blocking(move || f(&s)).await {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::error!(error = %e, "{label}: store work panicked");
            None
        }
    }
}

/// Delivers every entry of the consumer's kind due at `now_ms` (oldest first,
/// up to 64), one at a time.
pub async fn drain<C: Consumer>(store: &Store, c: &C, now_ms: i64) -> StoreResult<Report> {
    let label = C::LABEL;
    let mut report = Report::default();
    let due = blocking(label, store, move |s| s.outbox_due(C::KIND, now_ms, 64))
        .await
        .unwrap_or_else(|| Ok(Vec::new()))?;
    let policy = c.policy().clone();
    for item in due {
        let (it, ctx) = (item.clone(), c.ctx().clone());
        let ready = blocking(label, store, move |s| C::prepare(&ctx, s, &it))
            .await
            .unwrap_or_else(|| Err(PrepareError::Failed("preparing panicked".into())));
        let outcome = match ready {
            Ok(r) => match tokio::time::timeout(policy.timeout, c.deliver(r)).await {
                Ok(r) => r,
                Err(_) => Err(format!(
                    "no answer within {} s",
                    policy.timeout.as_secs_f32()
                )),
            },
            Err(PrepareError::Obsolete(why)) => {
                tracing::warn!(entry = item.id, mailbox = ?item.mailbox, message_id = ?item.message_id, %why, "{label}: nothing to send; entry dropped");
                blocking(label, store, move |s| s.outbox_done(item.id))
                    .await
                    .transpose()?;
                report.obsolete += 1;
                continue;
            }
            Err(PrepareError::Failed(why)) => Err(why),
        };
        match outcome {
            Ok(done) => {
                let (it, ctx) = (item.clone(), c.ctx().clone());
                blocking(label, store, move |s| C::delivered(&ctx, s, &it, done))
                    .await
                    .transpose()?;
                report.sent += 1;
                tracing::info!(entry = item.id, mailbox = ?item.mailbox, message_id = ?item.message_id, attempts = item.attempts + 1, "{label}: {}", C::ACCEPTED);
            }
            Err(why) => {
                let failed_at = crate::store::now_ms();
                match policy.after_failure(&item, failed_at) {
                    Verdict::RetryAt(at) => {
                        let (id, w) = (item.id, why.clone());
                        blocking(label, store, move |s| s.outbox_retry(id, at, &w))
                            .await
                            .transpose()?;
                        report.failed += 1;
                        tracing::warn!(entry = item.id, mailbox = ?item.mailbox, message_id = ?item.message_id, attempts = item.attempts + 1, retry_in_ms = at - failed_at, error = %why, "{label}: not delivered; will retry");
                    }
                    Verdict::GiveUp => {
                        let (id, w) = (item.id, why.clone());
                        blocking(label, store, move |s| {
                            s.outbox_retry(id, i64::MAX, &w)?;
                            s.outbox_done(id)
                        })
                        .await
                        .transpose()?;
                        report.given_up += 1;
                        tracing::error!(entry = item.id, mailbox = ?item.mailbox, message_id = ?item.message_id, attempts = item.attempts + 1, error = %why, "{label}: given up; the voicemail stays in its mailbox");
                    }
                }
            }
        }
    }
    c.batch_done().await;
    report.next_due_ms = blocking(label, store, |s| s.outbox_due(C::KIND, i64::MAX, 1))
        .await
        .transpose()?
        .and_then(|v| v.first().map(|i| i.next_attempt_ms));
    Ok(report)
}

/// Drains whenever an entry is due, the store announces a change or `wake`
/// is notified, and at least every minute (another process may queue).
/// Runs until aborted.
pub async fn run<C: Consumer>(store: Store, c: C, wake: Arc<tokio::sync::Notify>) {
    let mut changes = store.subscribe();
    loop {
        let next = match drain(&store, &c, now_ms()).await {
            Ok(r) => r.next_due_ms,
            Err(e) => {
                tracing::error!(error = %e, "{}: cannot read the queue", C::LABEL);
                Some(now_ms() + 5_000)
            }
        };
        let wait_ms = next.map_or(60_000, |t| (t - now_ms()).clamp(0, 60_000)) as u64;
        if wait_ms == 0 {
            continue;
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(wait_ms)) => {}
            _ = wake.notified() => {}
            r = changes.recv() => {
                if let Err(tokio::sync::broadcast::error::RecvError::Closed) = r {
                    return;
                }
            }
        }
    }
}
