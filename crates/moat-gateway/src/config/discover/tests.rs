#![allow(clippy::unwrap_used)]

use std::time::Duration;

use axum::routing::get;

use super::*;

/// A server with llama.cpp's `/health` and `/v1/models` (the two paths discovery looks at), or only
/// the model list; returns its root URL.
async fn server(with_health: bool) -> String {
    let mut app = axum::Router::new().route(
        "/v1/models",
        get(|| async { axum::Json(serde_json::json!({"object": "list", "data": []})) }),
    );
    if with_health {
        app = app.route(
            "/health",
            get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        );
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let root = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    root
}

fn targets(llamacpp: &str) -> DiscoveryTargets {
    DiscoveryTargets {
        openrouter: false,
        llamacpp: llamacpp.to_string(),
        ollama: "http://127.0.0.1:9".into(),
        probe_timeout: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn a_llamacpp_server_with_health_is_checked_there() {
    let root = server(true).await;
    let (file, notes) = discover(&targets(&root)).await;
    assert_eq!(file.providers.len(), 1, "{notes:?}");
    let p = &file.providers[0];
    assert_eq!(p.name, "llamacpp");
    assert_eq!(p.health_path.as_deref(), Some("/health"));
    let config = crate::config::Config::resolve(file, &|_| None).unwrap();
    assert_eq!(config.providers[0].health.check_url, format!("{root}/health"));
    assert!(config.providers[0].health.check);
}

#[tokio::test]
async fn a_server_without_health_is_checked_on_its_model_list() {
    let root = server(false).await;
    let (file, _) = discover(&targets(&root)).await;
    assert_eq!(file.providers[0].health_path, None);
    let config = crate::config::Config::resolve(file, &|_| None).unwrap();
    assert_eq!(config.providers[0].health.check_url, format!("{root}/v1/models"));
}
