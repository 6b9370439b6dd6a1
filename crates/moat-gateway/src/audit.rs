//! Feeding the audit log (crate `moat-audit`): where it lives according to the config, one record per
//! request — written when the request ends, however it ends — and one per admin action.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use moat_audit::{AdminRecord, AuditLog, AuditSettings, Bodies, PolicyDecision, RequestRecord};

use crate::config::{data_dir, Config};
use crate::identity::Principal;
use crate::observe::Observation;
use crate::privacy::Decision;
use crate::GatewayError;

/// Where the audit log and its signing key are, and how it checkpoints.
#[derive(Debug, Clone)]
pub struct AuditTarget {
    pub url: String,
    pub key_file: PathBuf,
    pub settings: AuditSettings,
}

/// The log's location from the config (`None` when `[audit] enabled = false`).
pub fn target(config: &Config) -> Option<AuditTarget> {
    let a = &config.audit;
    if !a.enabled {
        return None;
    }
    Some(AuditTarget {
        url: a
            .url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", data_dir().join("audit.db").display())),
        key_file: a
            .key_file
            .clone()
            .unwrap_or_else(|| data_dir().join("audit_signing_key")),
        settings: AuditSettings {
            node_id: node_id(config),
            ..AuditSettings::from_config(a.bodies, a.checkpoint_every, a.checkpoint_secs, a.retention_days)
        },
    })
}

/// This node's chain in a shared (PostgreSQL) audit log: `[cluster] node_id`, else the host name.
pub fn node_id(config: &Config) -> String {
    config
        .cluster
        .as_ref()
        .map_or_else(crate::config::host_name, |c| c.node_id.clone())
}

/// Opens the log the config names, if enabled.
pub fn open(config: &Config) -> Result<Option<Arc<AuditLog>>, GatewayError> {
    match target(config) {
        None => Ok(None),
        Some(t) => AuditLog::open(&t.url, &t.key_file, t.settings)
            .map(|log| Some(Arc::new(log)))
            .map_err(|e| GatewayError::Internal(format!("audit log: {e}"))),
    }
}

/// Records an admin action. A failure to record is logged, not fatal: the action already happened.
pub fn admin(log: Option<&AuditLog>, actor: &str, action: &str, target: &str, details: serde_json::Value) {
    let Some(log) = log else { return };
    let record = AdminRecord {
        ts_ms: moat_audit::now_ms(),
        actor: actor.to_string(),
        action: action.to_string(),
        target: target.to_string(),
        details,
    };
    if let Err(e) = log.append_admin(record) {
        tracing::error!(error = %e, action, "admin action not recorded in the audit log");
    }
}

/// One request's record, filled in as the request goes and appended exactly once: by
/// [`Trail::finish`], or on drop (a client that went away mid-request is recorded with status 499).
pub(crate) struct Trail {
    log: Option<Arc<AuditLog>>,
    record: Option<RequestRecord>,
    started: Instant,
    /// The same facts for metrics and spans (see `crate::observe`), kept whether or not the audit
    /// log is on.
    observed: Option<Arc<Observation>>,
}

impl Trail {
    pub(crate) fn start(
        log: Option<Arc<AuditLog>>,
        request_id: &str,
        endpoint: &str,
        peer: Option<SocketAddr>,
        observed: Option<Arc<Observation>>,
    ) -> Trail {
        let record = log.as_ref().map(|_| RequestRecord {
            ts_ms: moat_audit::now_ms(),
            request_id: request_id.to_string(),
            endpoint: endpoint.to_string(),
            client_addr: peer.map(|p| p.to_string()),
            ..RequestRecord::default()
        });
        Trail {
            log,
            record,
            started: Instant::now(),
            observed,
        }
    }

    fn observe(&self, f: impl FnOnce(&Observation)) {
        if let Some(o) = &self.observed {
            f(o);
        }
    }

    /// The request's observation, for the spans of the forwarding path.
    pub(crate) fn observation(&self) -> Option<&Arc<Observation>> {
        self.observed.as_ref()
    }

    fn with(&mut self, f: impl FnOnce(&mut RequestRecord)) {
        if let Some(r) = self.record.as_mut() {
            f(r);
        }
    }

    /// True when the log keeps bodies (so callers only copy them then).
    pub(crate) fn wants_bodies(&self) -> bool {
        self.record.is_some() && self.log.as_ref().is_some_and(|l| l.settings().record_bodies)
    }

    pub(crate) fn principal(&mut self, p: &Principal) {
        if let Principal::Virtual(k) = p {
            self.observe(|o| o.team(k.team_name.as_deref()));
            let (prefix, id, team) = (k.prefix.clone(), k.id.clone(), k.team_id.clone());
            self.with(|r| {
                r.key_prefix = Some(prefix);
                r.key_id = Some(id);
                r.team = team;
            });
        }
    }

    pub(crate) fn model_requested(&mut self, model: Option<&str>, fallbacks: &[String]) {
        let asked = model
            .map(str::to_string)
            .or_else(|| fallbacks.first().cloned())
            .unwrap_or_default();
        self.observe(|o| o.request_model(&asked));
        self.with(|r| r.model_requested = asked);
    }

    pub(crate) fn policy(&mut self, decisions: &[Decision]) {
        let list: Vec<PolicyDecision> = decisions
            .iter()
            .map(|d| PolicyDecision {
                rule: d.rule.clone(),
                action: d.action.as_str().to_string(),
                count: d.count,
            })
            .collect();
        self.with(|r| r.policy = list);
    }

    pub(crate) fn answered_by(&mut self, provider: &str, model: &str) {
        self.observe(|o| o.answered_by(provider, model));
        self.with(|r| {
            r.provider = Some(provider.to_string());
            r.model_used = Some(model.to_string());
        });
    }

    pub(crate) fn usage(&mut self, prompt: u64, completion: u64, cost_nanos: u64) {
        self.observe(|o| o.usage(prompt, completion, cost_nanos));
        self.with(|r| {
            r.prompt_tokens = prompt;
            r.completion_tokens = completion;
            r.cost_nanos = cost_nanos;
        });
    }

    pub(crate) fn bodies(&mut self, request: Option<String>, response: Option<String>) {
        if self.wants_bodies() {
            self.with(|r| {
                r.bodies = Some(Bodies {
                    request: request.unwrap_or_default(),
                    response: response.unwrap_or_default(),
                })
            });
        }
    }

    /// Moves the record into a new trail (e.g. one that lives as long as a streamed answer), leaving
    /// this one empty.
    pub(crate) fn detach(&mut self) -> Trail {
        Trail {
            log: self.log.clone(),
            record: self.record.take(),
            started: self.started,
            observed: self.observed.clone(),
        }
    }

    /// Appends the record with the status sent to the client.
    pub(crate) fn finish(&mut self, status: u16) {
        let (Some(log), Some(mut record)) = (self.log.as_ref(), self.record.take()) else {
            return;
        };
        record.status = status;
        record.latency_us = u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX);
        if let Err(e) = log.append_request(record) {
            tracing::error!(error = %e, "request not recorded in the audit log");
        }
    }
}

impl Drop for Trail {
    fn drop(&mut self) {
        // 499: the client closed the request before an answer (nginx's convention).
        self.finish(499);
    }
}
