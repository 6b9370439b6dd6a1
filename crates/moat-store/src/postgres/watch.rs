//! Keeps [`super::PgStore::keys_version`] current without a query per request: every change to keys
//! or teams bumps `meta.keys_version` and sends `NOTIFY moat_keys` in the same transaction; this task
//! listens on its own connection and also polls the version every `POLL`, so a lost notification (a
//! dropped listening connection, a node that was briefly away) is caught within `POLL` anyway.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::Pool;
use futures_util::StreamExt;
use tokio_postgres::{AsyncMessage, NoTls};

use super::{read_version, Shared};

/// The polling fallback's period: a change is seen within this even with no notification.
pub(super) const POLL: Duration = Duration::from_millis(500);

/// Runs until the store is dropped (the runtime it lives on is shut down).
pub(super) async fn run(config: tokio_postgres::Config, pool: Pool, shared: Arc<Shared>) {
    loop {
        let (tx, mut notes) = tokio::sync::mpsc::unbounded_channel::<()>();
        let listener = match config.connect(NoTls).await {
            Ok((client, mut connection)) => {
                // The connection object yields notifications; it must be polled for the client to work.
                let driver = tokio::spawn(async move {
                    let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                    while let Some(Ok(message)) = messages.next().await {
                        if let AsyncMessage::Notification(_) = message {
                            let _ = tx.send(());
                        }
                    }
                });
                match client.batch_execute("LISTEN moat_keys").await {
                    Ok(()) => Some((client, driver)),
                    Err(e) => {
                        tracing::warn!(error = %e, "LISTEN moat_keys failed; polling only");
                        driver.abort();
                        None
                    }
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "key-change listener cannot connect; polling only");
                None
            }
        };
        // Poll (and listen, when connected) until the listening connection ends, then reconnect.
        loop {
            let notified = tokio::select! {
                n = notes.recv() => n.is_some(),
                () = tokio::time::sleep(POLL) => true,
            };
            refresh(&pool, &shared).await;
            let listening = listener.as_ref().is_some_and(|(c, _)| !c.is_closed());
            if !notified || !listening {
                break;
            }
        }
        if let Some((_, driver)) = listener {
            driver.abort();
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Reads the version and publishes it to [`Shared::keys_version`].
pub(super) async fn refresh(pool: &Pool, shared: &Shared) {
    match read_version(pool).await {
        Ok(v) => {
            shared.keys_version.store(v, Ordering::Release);
            shared.reachable(true, None);
        }
        Err(e) => shared.reachable(false, Some(e.to_string())),
    }
}
