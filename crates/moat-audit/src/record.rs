//! What one audit record says, and the canonical encoding its hash is computed over.
//!
//! A record's payload is the JSON that serde_json writes for [`AuditRecord`]: struct fields in
//! declaration order, no whitespace. Those exact bytes are stored, exported and hashed, so a verifier
//! never has to re-serialise anything (and a serde_json upgrade that changed formatting could not break
//! old chains). The hash binds the payload to its position:
//!
//! ```text
//! hash = SHA-256( "moat-audit-record-v1\0" || seq as u64 big-endian || prev_hash (32 bytes)
//!                 || payload length as u64 big-endian || payload bytes )
//! ```
//!
//! with `prev_hash` of the first record all zeroes ([`GENESIS_HASH`]).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// `prev_hash` of record 1.
pub const GENESIS_HASH: [u8; 32] = [0; 32];

/// Separates record hashes from any other SHA-256 use (checkpoint signatures use another prefix).
const RECORD_DOMAIN: &[u8] = b"moat-audit-record-v1\0";

/// The chained hash of the record at `seq` whose predecessor hashed to `prev_hash`.
pub fn entry_hash(seq: u64, prev_hash: &[u8; 32], payload: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(RECORD_DOMAIN);
    h.update(seq.to_be_bytes());
    h.update(prev_hash);
    h.update(u64::try_from(payload.len()).unwrap_or(u64::MAX).to_be_bytes());
    h.update(payload);
    h.finalize().into()
}

/// One entry of the log. Serialised with a `"kind"` tag: `{"kind":"request",...}` or
/// `{"kind":"admin",...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[expect(
    clippy::large_enum_variant,
    reason = "request records are the common case; boxing them would cost an allocation per request"
)]
pub enum AuditRecord {
    Request(RequestRecord),
    Admin(AdminRecord),
}

impl AuditRecord {
    /// When it happened (Unix milliseconds, UTC); also stored in its own column for `--since` and
    /// retention, and checked against the payload by the verifier.
    pub fn ts_ms(&self) -> i64 {
        match self {
            AuditRecord::Request(r) => r.ts_ms,
            AuditRecord::Admin(r) => r.ts_ms,
        }
    }

    /// The canonical payload (see the module docs).
    pub fn payload(&self) -> Result<String, serde_json::Error> {
        serde_json::to_string(self)
    }
}

/// One proxied request, written when it settles (or fails).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestRecord {
    /// When the request arrived (Unix milliseconds, UTC).
    pub ts_ms: i64,
    /// The gateway's request id, the same as the usage row's, so the two can be joined.
    pub request_id: String,
    /// The virtual key's display prefix (`moat-AbCdEfGh`), never the key. None on an open gateway.
    pub key_prefix: Option<String>,
    /// The virtual key's id (`key_…`), stable across rotation.
    pub key_id: Option<String>,
    /// The key's team, if any.
    pub team: Option<String>,
    /// The client's address as the gateway saw it (`ip:port`).
    pub client_addr: Option<String>,
    /// The API path called (`/v1/chat/completions`), so "what was asked for" is complete.
    pub endpoint: String,
    /// The model name the client sent (may be an alias or a fallback list's first entry).
    pub model_requested: String,
    /// The provider that answered (None if no provider was reached).
    pub provider: Option<String>,
    /// The upstream model that answered.
    pub model_used: Option<String>,
    /// What the policy decided (privacy rules, local-only, blocks), in the order applied.
    pub policy: Vec<PolicyDecision>,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Cost charged, in nano-USD (10^-9 USD), as in the usage rows.
    pub cost_nanos: u64,
    /// The HTTP status returned to the client.
    pub status: u16,
    /// Time from arrival to the last byte sent, in microseconds.
    pub latency_us: u64,
    /// The prompt and answer after redaction, only when `[audit] bodies = true`: otherwise the log
    /// holds metadata only (the log enforces this; see [`crate::AuditSettings::record_bodies`]).
    pub bodies: Option<Bodies>,
}

/// One policy rule that fired on a request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyDecision {
    /// The detector or rule id (`email`, `aws_key`, a custom rule's id); never the matched text.
    pub rule: String,
    /// What was done: `allow`, `local_only`, `redact`, `block`.
    pub action: String,
    /// How many matches.
    pub count: u32,
}

/// Request and response bodies as forwarded and returned (after redaction).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bodies {
    /// The request body as sent upstream (JSON text).
    pub request: String,
    /// The answer as returned to the client (JSON text, or the concatenated SSE data for streams).
    pub response: String,
}

/// One administrative change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdminRecord {
    /// When it happened (Unix milliseconds, UTC).
    pub ts_ms: i64,
    /// Who: `cli` for `moatd` commands on the host, or the admin key's display prefix.
    pub actor: String,
    /// What: `key.create`, `key.revoke`, `key.rotate`, `key.limits`, `team.create`, `team.limits`,
    /// `provider.set_key`, `audit.prune`.
    pub action: String,
    /// The key, team or provider acted on (its id or name).
    pub target: String,
    /// The new settings (limits, models, expiry…) as JSON. Never secrets: no keys, no provider
    /// credentials.
    pub details: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> AuditRecord {
        AuditRecord::Request(RequestRecord {
            ts_ms: 1_700_000_000_000,
            request_id: "req_1".into(),
            key_prefix: Some("moat-AbCdEfGh".into()),
            key_id: Some("key_0011223344".into()),
            team: None,
            client_addr: Some("127.0.0.1:5000".into()),
            endpoint: "/v1/chat/completions".into(),
            model_requested: "fast".into(),
            provider: Some("emu".into()),
            model_used: Some("tiny".into()),
            policy: vec![PolicyDecision {
                rule: "email".into(),
                action: "redact".into(),
                count: 2,
            }],
            prompt_tokens: 10,
            completion_tokens: 20,
            cost_nanos: 3_000,
            status: 200,
            latency_us: 12_345,
            bodies: None,
        })
    }

    /// The encoding is part of the on-disk format: if this changes, old logs stop verifying.
    #[test]
    fn canonical_encoding_is_stable() {
        let payload = sample().payload().unwrap();
        assert_eq!(
            payload,
            r#"{"kind":"request","ts_ms":1700000000000,"request_id":"req_1","key_prefix":"moat-AbCdEfGh","key_id":"key_0011223344","team":null,"client_addr":"127.0.0.1:5000","endpoint":"/v1/chat/completions","model_requested":"fast","provider":"emu","model_used":"tiny","policy":[{"rule":"email","action":"redact","count":2}],"prompt_tokens":10,"completion_tokens":20,"cost_nanos":3000,"status":200,"latency_us":12345,"bodies":null}"#
        );
        assert_eq!(
            hex::encode(entry_hash(1, &GENESIS_HASH, payload.as_bytes())),
            GOLDEN_HASH
        );
        let back: AuditRecord = serde_json::from_str(&payload).unwrap();
        assert_eq!(back, sample());
    }

    /// Computed independently (Python hashlib) from the formula in the module docs.
    const GOLDEN_HASH: &str = "9df5c0c794060abbce9708f28ad0b337739238d28136e505996d10b95bafb330";

    #[test]
    fn hash_binds_seq_prev_and_payload() {
        let p = b"{}";
        let h = entry_hash(1, &GENESIS_HASH, p);
        assert_ne!(h, entry_hash(2, &GENESIS_HASH, p));
        assert_ne!(h, entry_hash(1, &[1; 32], p));
        assert_ne!(h, entry_hash(1, &GENESIS_HASH, b"{ }"));
    }
}
