//! Tenant isolation for everything that caches prompts: the partition value each forwarded request
//! carries to its provider ([`partition`]), the gateway's own answer cache ([`response`]), and
//! per-team provider credentials ([`team_keys`]), the one isolation that needs nothing from the
//! provider. docs/SECURITY.md explains what each does and does not guarantee.

pub(crate) mod partition;
pub(crate) mod response;
mod serve;
pub(crate) use serve::{hit, keep};
pub(crate) mod team_keys;
