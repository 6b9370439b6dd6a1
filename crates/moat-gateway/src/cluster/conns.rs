//! Valkey connections: one per serving core for the request path, and one for the node's background
//! work (probing, replaying queued settlements, renewing holds).
//!
//! Why per core: a multiplexed connection is driven by a task on the runtime that first used it.
//! moatd serves on one current-thread runtime per core (`server::per_core`), so a single shared
//! connection made every other core's reservation cross threads twice (to the driver and back), each
//! a futex wake and a context switch on the request path, plus one more to hand over the settlement.
//! Made lazily on the core that uses it, a connection's driver runs on that core, next to the request
//! waiting for it. The same reason gives each core its own upstream pools (`moat_upstream::worker`).

use std::sync::OnceLock;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisError};

pub(super) struct Conns {
    client: Client,
    config: ConnectionManagerConfig,
    /// Made on the runtime that started the limiter, for the upkeep task.
    background: ConnectionManager,
    /// One slot per serving core (`moat_upstream::worker`), filled on that core's first use.
    cores: Vec<OnceLock<ConnectionManager>>,
}

impl Conns {
    /// Prepares the connections; none connects before its first use, so a node starts (fail-closed)
    /// while Valkey is down. Must be called inside a Tokio runtime.
    pub(super) fn new(client: Client, config: ConnectionManagerConfig) -> Result<Conns, RedisError> {
        let background = ConnectionManager::new_lazy_with_config(client.clone(), config.clone())?;
        let cores = (0..moat_upstream::worker::count())
            .map(|_| OnceLock::new())
            .collect();
        Ok(Conns {
            client,
            config,
            background,
            cores,
        })
    }

    /// The connection for background work.
    pub(super) fn background(&self) -> ConnectionManager {
        self.background.clone()
    }

    /// The calling core's connection, made on its first use there. Outside a runtime, or on a thread
    /// that is no serving core of this limiter, the background connection serves instead.
    pub(super) fn here(&self) -> ConnectionManager {
        let Some(slot) = self.cores.get(moat_upstream::worker::current()) else {
            return self.background();
        };
        if let Some(conn) = slot.get() {
            return conn.clone();
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return self.background();
        }
        match ConnectionManager::new_lazy_with_config(self.client.clone(), self.config.clone()) {
            Ok(conn) => slot.get_or_init(|| conn).clone(),
            // The URL was accepted at start, so this does not happen; the shared connection still works.
            Err(_) => self.background(),
        }
    }
}

/// `moat_cluster_round_trips_total` by operation, registered once: looking a labelled counter up on
/// every round trip costs an allocation and a hash on the request path.
pub(super) struct RoundTrips {
    pub reserve: metrics::Counter,
    pub settle: metrics::Counter,
    pub load: metrics::Counter,
    pub renew: metrics::Counter,
}

impl RoundTrips {
    pub(super) fn new() -> RoundTrips {
        const NAME: &str = "moat_cluster_round_trips_total";
        RoundTrips {
            reserve: metrics::counter!(NAME, "op" => "reserve"),
            settle: metrics::counter!(NAME, "op" => "settle"),
            load: metrics::counter!(NAME, "op" => "load"),
            renew: metrics::counter!(NAME, "op" => "renew"),
        }
    }
}
