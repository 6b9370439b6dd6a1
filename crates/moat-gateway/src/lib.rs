//! The moatd gateway as a library: configuration, the HTTP router, authentication, and the request
//! path that forwards OpenAI- and OpenRouter-compatible requests to providers and relays their answers.
//!
//! Binaries stay thin: load a [`config::Config`], build a [`Gateway`], bind a listener and call
//! [`server::serve`] with a shutdown future. Tests do the same on port 0.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use moat_gateway::{config::Config, server, Gateway};
//! let config = Config::from_toml(r#"
//!     [[providers]]
//!     name = "local"
//!     kind = "openai"
//!     base_url = "http://127.0.0.1:8080/v1"
//! "#, "inline")?;
//! let gateway = Gateway::open(&config)?;
//! let listener = tokio::net::TcpListener::bind(config.listen).await?;
//! server::serve(listener, gateway, std::future::pending()).await?;
//! # Ok(()) }
//! ```

pub mod admin;
pub mod audit;
mod auth;
mod body;
mod cache;
pub mod cluster;
pub mod config;
mod console;
mod cors;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod gateway;
mod handlers;
mod health;
pub mod identity;
pub mod ledger;
pub mod limits;
mod meter;
mod observe;
mod pricebook;
pub mod privacy;
pub mod roles;
mod routing;
pub mod secret;
pub mod server;
pub mod state_files;

pub use error::{GatewayError, Refused};
pub use gateway::{load_secret as gateway_secret, router, Gateway};
