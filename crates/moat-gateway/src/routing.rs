//! Load balancing in route planning: an alias's `strategy` orders its targets (the choice is
//! `moat_policy::balance`'s, over what this module measures: requests in flight and the average time
//! to first byte per target), targets at their `rpm`/`tpm` cap are left out of every plan, and the
//! context windows that decide a context-window fallback are looked up here.
//!
//! State is per node (like the health breakers): caps count what this moatd sent. It is built once
//! from the config, for the targets aliases name and the caps providers set, so no request can grow
//! it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use moat_policy::balance::{rank, Candidate, Ewma, Strategy, Tuning};
use moat_policy::caps::{Cap, TargetUse};
use moat_policy::route::{Catalog, ProviderId, Target};

use crate::config::{Config, RoutePolicy, TargetLimits};
use crate::pricebook::PriceBook;

/// What is measured about one target of an alias.
#[derive(Debug, Default)]
struct Measured {
    in_flight: AtomicU32,
    latency: Mutex<Ewma>,
}

/// One cap bucket: a model's own cap, or a provider's `"*"` shared by its other models.
#[derive(Debug)]
struct Bucket {
    cap: Cap,
    used: Mutex<TargetUse>,
}

/// The gateway's routing state.
#[derive(Debug)]
pub(crate) struct Routes {
    policies: HashMap<String, RoutePolicy>,
    limits: Vec<TargetLimits>,
    /// By provider, then model: looked up without allocating on every request.
    measured: HashMap<ProviderId, HashMap<String, Arc<Measured>>>,
    /// By provider, then cap key (a model, or `"*"`).
    buckets: HashMap<ProviderId, HashMap<String, Arc<Bucket>>>,
    tuning: Tuning,
}

impl Routes {
    pub(crate) fn new(config: &Config, catalog: &Catalog) -> Routes {
        let mut measured: HashMap<ProviderId, HashMap<String, Arc<Measured>>> = HashMap::new();
        for (_, route) in catalog.aliases() {
            for t in route {
                measured
                    .entry(t.provider)
                    .or_default()
                    .entry(t.model.clone())
                    .or_insert_with(|| Arc::new(Measured::default()));
            }
        }
        let mut buckets: HashMap<ProviderId, HashMap<String, Arc<Bucket>>> = HashMap::new();
        for (id, p) in config.providers.iter().enumerate() {
            for (model, cap) in &p.limits.caps {
                buckets.entry(id).or_default().insert(
                    model.clone(),
                    Arc::new(Bucket {
                        cap: *cap,
                        used: Mutex::default(),
                    }),
                );
            }
        }
        Routes {
            policies: config.routes.clone(),
            limits: config.providers.iter().map(|p| p.limits.clone()).collect(),
            measured,
            buckets,
            tuning: Tuning::default(),
        }
    }

    /// The alias's policy, when `model` names an alias.
    pub(crate) fn policy(&self, model: Option<&str>) -> Option<&RoutePolicy> {
        self.policies.get(model?)
    }

    fn bucket(&self, t: &Target) -> Option<&Arc<Bucket>> {
        let limits = self.limits.get(t.provider)?;
        let (key, _) = limits.cap_for(&t.model)?;
        self.buckets.get(&t.provider)?.get(key)
    }

    fn measured(&self, t: &Target) -> Option<&Arc<Measured>> {
        self.measured.get(&t.provider)?.get(t.model.as_str())
    }

    /// True when the target is at its cap for a request of `tokens` (estimated) now.
    fn capped(&self, t: &Target, tokens: u64, now: i64) -> bool {
        self.bucket(t).is_some_and(|b| {
            !b.used
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .has_room(&b.cap, now, tokens)
        })
    }

    /// The context window configured for a target.
    pub(crate) fn context_window(&self, t: &Target) -> Option<u64> {
        self.limits.get(t.provider)?.context_window(&t.model)
    }

    /// Orders the plan: the leading targets that came from `model`'s alias by its strategy, then the
    /// rest as planned; targets at their cap are dropped wherever they are. Returns false when every
    /// target is capped.
    pub(crate) fn arrange(
        &self,
        catalog: &Catalog,
        prices: &PriceBook,
        ask: &Ask<'_>,
        targets: &mut Vec<Target>,
    ) -> bool {
        let (model, prompt, output, now, random) = (
            ask.model,
            ask.prompt_tokens,
            ask.output_tokens,
            ask.now,
            ask.random,
        );
        let policy = self.policy(model);
        let alias_len = match (policy, model) {
            (Some(p), Some(m)) if p.strategy != Strategy::Order => catalog
                .aliases()
                .find(|(name, _)| *name == m)
                .map_or(0, |(_, route)| {
                    route.iter().take_while(|t| targets.contains(t)).count()
                }),
            _ => 0,
        };
        let (head, tail) = targets.split_at(alias_len.min(targets.len()));
        let mut arranged: Vec<Target> = Vec::with_capacity(targets.len());
        if let Some(policy) = policy.filter(|_| alias_len > 0) {
            let route: Vec<Target> = model
                .and_then(|m| catalog.aliases().find(|(name, _)| *name == m))
                .map(|(_, r)| r.to_vec())
                .unwrap_or_default();
            let candidates: Vec<Candidate> = head
                .iter()
                .map(|t| {
                    let m = self.measured(t);
                    let weight = route
                        .iter()
                        .position(|r| r == t)
                        .and_then(|i| policy.weights.get(i).copied())
                        .unwrap_or(1);
                    Candidate {
                        weight,
                        in_flight: m.map_or(0, |m| m.in_flight.load(Ordering::Relaxed)),
                        latency_ms: m
                            .and_then(|m| m.latency.lock().unwrap_or_else(PoisonError::into_inner).value()),
                        cost: prices
                            .lookup(t.provider, &t.model)
                            .price
                            .map(|p| p.cost(prompt, output)),
                        capped: false,
                    }
                })
                .collect();
            for i in rank(policy.strategy, &candidates, &self.tuning, random) {
                arranged.push(head[i].clone());
            }
        } else {
            arranged.extend_from_slice(head);
        }
        arranged.extend_from_slice(tail);
        arranged.retain(|t| !self.capped(t, prompt + output, now));
        let any = !arranged.is_empty();
        *targets = arranged;
        any
    }

    /// Counts a request to `t` as it is sent: in flight until the returned guard is dropped, and
    /// against the target's cap with `tokens` (estimated) until [`InFlight::settle`].
    pub(crate) fn start(&self, t: &Target, tokens: u64, now: i64) -> InFlight {
        let measured = self.measured(t).cloned();
        if let Some(m) = &measured {
            m.in_flight.fetch_add(1, Ordering::Relaxed);
        }
        let bucket = self.bucket(t).cloned();
        if let Some(b) = &bucket {
            b.used
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .start(now, tokens);
        }
        InFlight {
            measured,
            bucket,
            sent: Instant::now(),
            started: now,
            tokens,
        }
    }
}

/// What routing needs to know about the request being planned.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ask<'a> {
    /// The model the client asked for (an alias, when a strategy applies).
    pub(crate) model: Option<&'a str>,
    /// Estimated prompt tokens and the output cap: for caps and the `cost` strategy.
    pub(crate) prompt_tokens: u64,
    pub(crate) output_tokens: u64,
    /// Unix seconds, for the caps' minute.
    pub(crate) now: i64,
    /// One random word for this decision.
    pub(crate) random: u64,
}

/// One request to one target while it runs.
#[derive(Debug)]
pub(crate) struct InFlight {
    measured: Option<Arc<Measured>>,
    bucket: Option<Arc<Bucket>>,
    sent: Instant,
    started: i64,
    tokens: u64,
}

impl InFlight {
    /// The response headers arrived: one time-to-first-byte sample for the `latency` strategy.
    pub(crate) fn first_byte(&self) {
        if let Some(m) = &self.measured {
            let ms = self.sent.elapsed().as_secs_f64() * 1000.0;
            m.latency
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .observe(ms);
        }
    }

    /// The answer's real token count replaces the estimate held against the cap.
    pub(crate) fn settle(&self, actual_tokens: u64) {
        if let Some(b) = &self.bucket {
            b.used.lock().unwrap_or_else(PoisonError::into_inner).settle(
                self.started,
                crate::ledger::now(),
                self.tokens,
                actual_tokens,
            );
        }
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if let Some(m) = &self.measured {
            m.in_flight.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// One random word per routing decision: not cryptographic, only different per request.
pub(crate) fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}
