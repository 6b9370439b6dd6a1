//! Provider health: one circuit breaker per provider (the pure state machine is
//! `moat_policy::breaker`), fed by real request outcomes and by periodic health checks, and consulted
//! by route planning. Also the `/ready` report and the `moat_provider_state` gauge.
//!
//! Route planning drops targets whose provider is out of rotation, unless that would drop them all:
//! then every target is tried anyway, in order. A request then costs at most the failed attempts a
//! healthy plan would have cost, and a provider whose breaker is wrong (it recovered between checks)
//! still gets the chance to answer, where failing fast would turn a stale verdict into an outage.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use http::HeaderMap;
use moat_policy::breaker::{Breaker, State};
use moat_policy::route::{ProviderId, Target};
use moat_upstream::{Upstream, UpstreamError, UpstreamSettings};
use serde::Serialize;

use crate::config::HealthSettings;
use crate::GatewayError;

/// Health of every configured provider, indexed like the catalog.
#[derive(Debug)]
pub(crate) struct Health {
    providers: Vec<ProviderHealth>,
}

#[derive(Debug)]
struct ProviderHealth {
    name: String,
    /// The client for health checks (`None` when checks are off): the provider's own TLS settings and
    /// credential, aimed at the check URL, with no retries.
    probe: Option<Upstream>,
    interval: Duration,
    status: Mutex<Status>,
}

#[derive(Debug)]
struct Status {
    breaker: Breaker,
    last_check: Option<SystemTime>,
    /// The last failure (request or check), cleared by a success. Never holds a key or a prompt.
    last_error: Option<String>,
}

impl Health {
    /// Builds the breakers, and the probe clients for providers whose checks are on. `providers`
    /// pairs each provider's upstream settings (credential included) with its health settings.
    pub(crate) fn new<'a>(
        providers: impl IntoIterator<Item = (&'a UpstreamSettings, &'a HealthSettings)>,
    ) -> Result<Health, GatewayError> {
        let mut out = Vec::new();
        for (upstream, health) in providers {
            let probe = if health.check {
                let mut settings = upstream.clone();
                settings.base_url = health.check_url.clone();
                // A check slower than its own interval counts as a failure (never less than a second,
                // so a busy machine does not fail fast probes).
                let limit = health
                    .interval
                    .clamp(Duration::from_secs(1), Duration::from_secs(10));
                settings.timeouts.connect = settings.timeouts.connect.min(limit);
                settings.timeouts.first_byte = limit;
                settings.retry.max_retries = 0;
                Some(Upstream::new(settings)?)
            } else {
                None
            };
            let status = Status {
                breaker: Breaker::new(health.breaker),
                last_check: None,
                last_error: None,
            };
            publish(&upstream.name, State::Healthy);
            out.push(ProviderHealth {
                name: upstream.name.clone(),
                probe,
                interval: health.interval,
                status: Mutex::new(status),
            });
        }
        Ok(Health { providers: out })
    }

    /// Drops targets whose provider is out of rotation, unless none would remain: then all are kept
    /// (see the module docs). A provider whose cool-down is over stays in; its half-open probe is
    /// claimed only when no healthy target comes before it, since behind a healthy one the request
    /// will most likely never reach it (and the probe would sit unused until it expires).
    pub(crate) fn filter(&self, targets: &mut Vec<Target>, now: Instant) {
        let mut healthy_before = false;
        let admitted: Vec<bool> = targets
            .iter()
            .map(|t| {
                self.with(t.provider, |s| {
                    if s.breaker.state() == State::Healthy {
                        healthy_before = true;
                        true
                    } else if healthy_before {
                        s.breaker.usable(now)
                    } else {
                        s.breaker.admit(now)
                    }
                })
                .unwrap_or(true)
            })
            .collect();
        if !admitted.contains(&true) {
            return;
        }
        let mut keep = admitted.into_iter();
        targets.retain(|_| keep.next().unwrap_or(true));
    }

    /// Records how a request to `provider` ended: `Some(err)` for a provider failure, `None` when it
    /// answered (a 4xx included: the provider is up, the request was wrong).
    pub(crate) fn request_outcome(
        &self,
        provider: ProviderId,
        failure: Option<&UpstreamError>,
        now: Instant,
    ) {
        self.update(provider, |s| match failure {
            None => {
                s.breaker.request_succeeded();
                s.last_error = None;
            }
            Some(err) => {
                s.breaker.request_failed(now);
                s.last_error = Some(err.to_string());
            }
        });
    }

    /// Records how a stream that reached the client ended: `None` when the provider finished it,
    /// `Some(error)` when the provider broke it midway. A stream counts only once it has ended, so a
    /// provider that starts every stream and breaks each one still opens its breaker.
    pub(crate) fn stream_ended(&self, provider: ProviderId, error: Option<String>, now: Instant) {
        self.update(provider, |s| match error {
            None => {
                s.breaker.request_succeeded();
                s.last_error = None;
            }
            Some(error) => {
                s.breaker.request_failed(now);
                s.last_error = Some(error);
            }
        });
    }

    fn check_outcome(&self, provider: ProviderId, failure: Option<String>, now: Instant) {
        self.update(provider, |s| {
            s.last_check = Some(SystemTime::now());
            match failure {
                None => {
                    s.breaker.check_succeeded(now);
                    if s.breaker.state() == State::Healthy {
                        s.last_error = None;
                    }
                }
                Some(err) => {
                    s.breaker.check_failed(now);
                    s.last_error = Some(format!("health check: {err}"));
                }
            }
        });
    }

    fn with<R>(&self, provider: ProviderId, f: impl FnOnce(&mut Status) -> R) -> Option<R> {
        let p = self.providers.get(provider)?;
        let mut status = p.status.lock().unwrap_or_else(PoisonError::into_inner);
        Some(f(&mut status))
    }

    /// Applies `f` and republishes the gauge when the state changed.
    fn update(&self, provider: ProviderId, f: impl FnOnce(&mut Status)) {
        let changed = self.with(provider, |s| {
            let before = s.breaker.state();
            f(s);
            let after = s.breaker.state();
            (before != after).then_some((before, after))
        });
        if let (Some(Some((before, after))), Some(p)) = (changed, self.providers.get(provider)) {
            tracing::info!(provider = %p.name, from = before.as_str(), to = after.as_str(), "provider health changed");
            publish(&p.name, after);
            crate::observe::metrics::breaker_transition(&p.name, before.as_str(), after.as_str());
        }
    }

    /// The `/ready` report at `now`.
    pub(crate) fn report(&self, now: Instant) -> Readiness {
        let providers: Vec<ProviderReport> = self
            .providers
            .iter()
            .map(|p| {
                let s = p.status.lock().unwrap_or_else(PoisonError::into_inner);
                ProviderReport {
                    name: p.name.clone(),
                    state: s.breaker.state().as_str(),
                    usable: s.breaker.usable(now),
                    consecutive_failures: s.breaker.consecutive_failures(),
                    health_check: p.probe.is_some(),
                    last_check: s.last_check.and_then(rfc3339),
                    last_error: s.last_error.clone(),
                }
            })
            .collect();
        let usable = providers.iter().filter(|p| p.usable).count();
        let status = match usable {
            0 => "unavailable",
            n if n == providers.len() => "ready",
            _ => "degraded",
        };
        Readiness {
            status,
            providers,
            store: None,
            limits: None,
        }
    }
}

/// `GET /ready`'s body.
#[derive(Debug, Serialize)]
pub(crate) struct Readiness {
    /// `ready` (every provider usable), `degraded` (some), `unavailable` (none, or none configured).
    pub(crate) status: &'static str,
    pub(crate) providers: Vec<ProviderReport>,
    /// The store's reachability and spool (filled in by the handler).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) store: Option<StoreReport>,
    /// Where budgets and rate limits are counted, and whether they can be.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) limits: Option<crate::limits::LimiterStatus>,
}

/// The store's part of `/ready`.
#[derive(Debug, Serialize)]
pub(crate) struct StoreReport {
    /// `ok`, or `unreachable` (known keys keep working; usage rows go to the local spool).
    pub(crate) state: &'static str,
    pub(crate) spooled_rows: u64,
    pub(crate) spool_dropped_rows: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ProviderReport {
    name: String,
    /// `healthy`, `unhealthy` or `half_open`.
    state: &'static str,
    /// Route planning would send a request now (healthy, or cool-down over).
    usable: bool,
    consecutive_failures: u32,
    /// Periodic checks run for this provider.
    health_check: bool,
    /// When the last check finished (RFC 3339), `null` before the first.
    last_check: Option<String>,
    last_error: Option<String>,
}

fn rfc3339(t: SystemTime) -> Option<String> {
    time::OffsetDateTime::from(t)
        .format(&time::format_description::well_known::Rfc3339)
        .ok()
}

/// Sets `moat_provider_state{provider, state}` to 1 for the current state and 0 for the others.
fn publish(provider: &str, current: State) {
    for state in State::ALL {
        metrics::gauge!(crate::observe::metrics::PROVIDER_STATE, "provider" => provider.to_string(), "state" => state.as_str())
            .set(if state == current { 1.0 } else { 0.0 });
    }
}

/// The running health checks; dropping this stops them.
#[derive(Debug)]
pub(crate) struct Checks {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Checks {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Starts one check loop per provider whose checks are on: a check at once, then one per interval.
/// A thread-per-core server calls this on every core; only worker 0 runs the checks, so each provider
/// is probed once per interval, not once per core.
pub(crate) fn spawn_checks(health: &Arc<Health>) -> Checks {
    if moat_upstream::worker::current() != 0 {
        return Checks { tasks: Vec::new() };
    }
    let tasks = health
        .providers
        .iter()
        .enumerate()
        .filter(|(_, p)| p.probe.is_some())
        .map(|(id, _)| {
            let health = health.clone();
            tokio::spawn(async move {
                loop {
                    let Some(p) = health.providers.get(id) else { return };
                    let Some(probe) = &p.probe else { return };
                    let failure = probe.send("", None, false, &HeaderMap::new()).await.err();
                    health.check_outcome(id, failure.map(|e| e.to_string()), Instant::now());
                    tokio::time::sleep(p.interval).await;
                }
            })
        })
        .collect();
    Checks { tasks }
}

#[cfg(test)]
mod tests;
