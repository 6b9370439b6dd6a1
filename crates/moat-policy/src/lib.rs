//! Pure decisions for moat: which upstreams a request may try and in what order, how long to wait
//! before trying again, and whether a request fits its budgets and rate limits.
//!
//! Nothing here touches the network, a clock or a random source: callers pass those in, so every
//! decision is a plain function that unit and property tests can cover exhaustively.
//!
//! ```
//! use moat_policy::route::{Catalog, plan};
//!
//! let catalog = Catalog::new(["openrouter", "local"], [("fast", vec!["local/tiny".to_string()])], None)
//!     .unwrap();
//! let targets = plan(&catalog, Some("openrouter/anthropic/claude-sonnet-4"), &["fast".into()]).unwrap();
//! assert_eq!(targets[0].model, "anthropic/claude-sonnet-4");
//! assert_eq!(catalog.provider_name(targets[1].provider), "local");
//! ```

pub mod balance;
pub mod breaker;
pub mod budget;
pub mod cache;
pub mod caps;
pub mod demand;
pub mod fallback;
pub mod keys;
pub mod pricing;
pub mod privacy;
pub mod retry;
pub mod route;
