//! The cluster limiter's background work, one task per node for as long as the limiter lives:
//!
//! - keeps this node's live holds from expiring (every third of `hold_ttl`);
//! - probes Valkey while it is unreachable, and on its return replays the settlements queued
//!   meanwhile before reservations go to it again;
//! - notices when Valkey's data is gone (restarted empty, flushed): the `moat:epoch` value it set is
//!   no longer there. Then the queued settlements are already in the store's usage rows, from which
//!   each account's spend is rebuilt on first use, so they are dropped instead of replayed.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::{lock, scripts, ClusterLimiter};

/// How often the task wakes (probing while Valkey is away, replaying queued settlements).
const TICK: Duration = Duration::from_millis(100);

pub(super) async fn run(limiter: Weak<ClusterLimiter>) {
    let mut last_renewal = Instant::now();
    loop {
        let Some(this) = limiter.upgrade() else {
            return;
        };
        let renew_every = this.settings.hold_ttl / 3;
        if !this.is_available() {
            this.try_recover().await;
        } else {
            if last_renewal.elapsed() >= renew_every {
                last_renewal = Instant::now();
                if let Err(e) = this.renew().await {
                    this.mark_down(&e);
                }
            }
            if !lock(&this.pending).is_empty() {
                if let Err(e) = this.replay().await {
                    this.mark_down(&e);
                }
            }
        }
        drop(this);
        tokio::time::sleep(TICK).await;
    }
}

impl ClusterLimiter {
    /// Probes Valkey; when it answers, settles what was queued and takes reservations again.
    async fn try_recover(self: &Arc<Self>) {
        let lost = match self.check_epoch().await {
            Ok(lost) => lost,
            Err(e) => {
                *lock(&self.last_error) = Some(e);
                return;
            }
        };
        if lost {
            // Everything queued is in the store's usage rows (or this node's write queue, flushed
            // now), and each account's spend is rebuilt from those rows on first use.
            let store = self.store.clone();
            let _ = tokio::task::spawn_blocking(move || store.flush()).await;
            let dropped = {
                let mut pending = lock(&self.pending);
                let n = pending.len();
                pending.clear();
                n
            };
            tracing::warn!(
                node = %self.settings.node_id,
                queued = dropped,
                "the cluster limits store lost its data: spend is rebuilt from the store's usage rows"
            );
        } else if let Err(e) = self.replay().await {
            *lock(&self.last_error) = Some(e);
            return;
        }
        for script in self.scripts.all() {
            let mut conn = self.conns.background();
            let _ = script.prepare_invoke().load_async(&mut conn).await;
        }
        *lock(&self.fallback) = None;
        *lock(&self.last_error) = None;
        if !self.available.swap(true, Ordering::AcqRel) {
            tracing::info!(node = %self.settings.node_id, "cluster limits store reachable: shared limits in force");
        }
    }

    /// True when Valkey's data is not what this node saw before (a restart without persistence, or a
    /// flush). The first node to look after that writes a new epoch.
    async fn check_epoch(&self) -> Result<bool, String> {
        let mut conn = self.conns.background();
        let fresh = format!("{:016x}", rand_u64());
        let probe = async {
            let _: Option<String> = redis::cmd("SET")
                .arg(scripts::EPOCH)
                .arg(&fresh)
                .arg("NX")
                .query_async(&mut conn)
                .await?;
            redis::cmd("GET")
                .arg(scripts::EPOCH)
                .query_async::<Option<String>>(&mut conn)
                .await
        };
        let current = match tokio::time::timeout(self.settings.timeout, probe).await {
            Ok(Ok(v)) => v.unwrap_or(fresh),
            Ok(Err(e)) => return Err(e.to_string()),
            Err(_) => return Err("no answer".into()),
        };
        let mut seen = lock(&self.epoch);
        let lost = seen.as_ref().is_some_and(|s| *s != current);
        *seen = Some(current);
        Ok(lost)
    }

    /// Sends the queued settlements, oldest first; stops at the first failure (kept for later).
    async fn replay(&self) -> Result<(), String> {
        let mut conn = self.conns.background();
        loop {
            let next = lock(&self.pending).pop_front();
            let Some(s) = next else {
                return Ok(());
            };
            if let Err(e) = self.send(&mut conn, &s).await {
                lock(&self.pending).push_front(s);
                return Err(e);
            }
        }
    }

    /// Pushes every live hold's expiry another `hold_ttl` ahead.
    async fn renew(&self) -> Result<(), String> {
        let holds: Vec<(String, String)> = lock(&self.live)
            .iter()
            .flat_map(|(rid, sets)| sets.iter().map(move |s| (s.clone(), rid.clone())))
            .collect();
        let ttl = u64::try_from(self.settings.hold_ttl.as_millis()).unwrap_or(u64::MAX);
        for chunk in holds.chunks(1000) {
            let mut invocation = self.scripts.renew.prepare_invoke();
            invocation.arg(ttl);
            for (set, rid) in chunk {
                invocation.key(set).arg(rid);
            }
            let mut conn = self.conns.background();
            let done: Result<i64, _> = invocation.invoke_async(&mut conn).await;
            self.trips.renew.increment(1);
            done.map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// A random value for the epoch marker (it only has to differ between incarnations).
fn rand_u64() -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_err() {
        return std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
    }
    u64::from_le_bytes(bytes)
}
