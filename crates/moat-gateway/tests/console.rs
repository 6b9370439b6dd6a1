//! The admin API's roles for admin keys (`[server] admin_keys` are admins; `[[admin.keys]]` carry
//! their role), console logins with a key (the session cookie's flags, cross-origin refusal, CSRF on
//! logout), and the console's assets with their Content-Security-Policy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::{json, Value};

const CONFIG: &str = r#"
[server]
admin_keys = ["root-admin-key"]
[[admin.keys]]
name = "watcher"
key = "viewer-key-1"
role = "viewer"
[[admin.keys]]
name = "lab-lead"
key = "lead-key-1"
role = "team_admin"
team = "research"
"#;

async fn call(
    gw: &TestGateway,
    key: Option<&str>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = client().request(method.parse().unwrap(), gw.url(path));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test]
async fn admin_keys_carry_their_roles() {
    let gw = gateway(CONFIG).await;
    let root = Some("root-admin-key");
    for team in ["research", "ops"] {
        assert_eq!(
            call(&gw, root, "POST", "/admin/teams", Some(json!({"name": team})))
                .await
                .0,
            201
        );
    }
    assert_eq!(
        call(
            &gw,
            root,
            "POST",
            "/admin/keys",
            Some(json!({"name": "ops-key", "team": "ops"}))
        )
        .await
        .0,
        201
    );
    let (_, me) = call(&gw, root, "GET", "/admin/me", None).await;
    assert!(me["data"]["actor"].as_str().unwrap().starts_with("admin-key:"));
    assert!(!me.to_string().contains("root-admin-key"));

    // The viewer reads everything and changes nothing.
    let viewer = Some("viewer-key-1");
    let (status, keys) = call(&gw, viewer, "GET", "/admin/keys", None).await;
    assert_eq!((status, keys["data"].as_array().unwrap().len()), (200, 1));
    let (status, err) = call(&gw, viewer, "POST", "/admin/keys", Some(json!({"name": "x"}))).await;
    assert_eq!((status, code(&err)), (403, "role_forbidden"));
    let (status, err) = call(&gw, viewer, "POST", "/admin/keys/ops-key/revoke", Some(json!({}))).await;
    assert_eq!((status, code(&err)), (403, "role_forbidden"));
    assert_eq!(
        call(&gw, viewer, "GET", "/admin/usage?by=team", None).await.0,
        200
    );
    let metrics = client()
        .get(gw.url("/metrics"))
        .bearer_auth("viewer-key-1")
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);

    // The team admin manages their team's keys and nothing else.
    let lead = Some("lead-key-1");
    let (status, made) = call(&gw, lead, "POST", "/admin/keys", Some(json!({"name": "lab-1"}))).await;
    assert_eq!(status, 201, "{made}");
    let (status, err) = call(
        &gw,
        lead,
        "POST",
        "/admin/keys",
        Some(json!({"name": "x", "team": "ops"})),
    )
    .await;
    assert_eq!((status, code(&err)), (403, "role_forbidden"));
    let (status, _) = call(
        &gw,
        lead,
        "POST",
        "/admin/keys/ops-key/limits",
        Some(json!({"rpm": 5})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = call(
        &gw,
        lead,
        "POST",
        "/admin/keys/lab-1/limits",
        Some(json!({"rpm": 5})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, err) = call(
        &gw,
        lead,
        "POST",
        "/admin/teams/research/limits",
        Some(json!({"budget": "999/day"})),
    )
    .await;
    assert_eq!(
        (status, code(&err)),
        (403, "role_forbidden"),
        "a team admin cannot lift their own budget"
    );
    let (status, err) = call(
        &gw,
        lead,
        "PUT",
        "/admin/teams/research/provider-keys/emu",
        Some(json!({"key": "k"})),
    )
    .await;
    assert_eq!((status, code(&err)), (403, "role_forbidden"));
    let (_, keys) = call(&gw, lead, "GET", "/admin/keys", None).await;
    let keys = keys["data"].as_array().unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(
        (keys[0]["name"].as_str(), keys[0]["team"].as_str()),
        (Some("lab-1"), Some("research"))
    );
    let (_, teams) = call(&gw, lead, "GET", "/admin/teams", None).await;
    assert_eq!(teams["data"].as_array().unwrap().len(), 1);

    // Usage series are bounded.
    for bad in ["days=0", "days=367", "days=40&bucket=hour", "bucket=week"] {
        let (status, err) = call(&gw, root, "GET", &format!("/admin/usage/series?{bad}"), None).await;
        assert_eq!((status, code(&err)), (400, "invalid_request"), "{bad}");
    }
    let (status, series) = call(&gw, lead, "GET", "/admin/usage/series?by=model&days=30", None).await;
    assert_eq!(status, 200);
    assert_eq!(series["data"]["bucket"], 86_400);

    // Nobody else gets in.
    assert_eq!(call(&gw, None, "GET", "/admin/keys", None).await.0, 401);
    assert_eq!(
        call(&gw, Some("moat-not-a-key"), "GET", "/admin/keys", None)
            .await
            .0,
        401
    );
    assert_eq!(
        client().get(gw.url("/metrics")).send().await.unwrap().status(),
        401
    );
}

#[tokio::test]
async fn a_key_login_gives_a_strict_http_only_session_with_csrf() {
    let gw = gateway(CONFIG).await;
    let login = |origin: Option<&'static str>| {
        let mut req = client()
            .post(gw.url("/ui/login"))
            .json(&json!({"key": "viewer-key-1"}));
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        req.send()
    };
    let refused = login(Some("https://evil.example")).await.unwrap();
    assert_eq!(refused.status(), 403, "a login forced from another site");
    let wrong = client()
        .post(gw.url("/ui/login"))
        .json(&json!({"key": "nope"}))
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let resp = login(None).await.unwrap();
    assert_eq!(resp.status(), 200);
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "plain HTTP on loopback: {cookie}");
    let session = cookie.split(';').next().unwrap().to_string();
    let body: Value = resp.json().await.unwrap();
    let csrf = body["data"]["csrf"].as_str().unwrap().to_string();
    let (role, actor) = (body["data"]["role"].as_str(), body["data"]["actor"].as_str());
    assert_eq!((role, actor), (Some("viewer"), Some("key:watcher")));

    let with_cookie = |method: &str, path: &str| {
        client()
            .request(method.parse().unwrap(), gw.url(path))
            .header("cookie", session.clone())
    };
    assert_eq!(
        with_cookie("GET", "/admin/keys").send().await.unwrap().status(),
        200
    );
    let no_csrf = with_cookie("POST", "/ui/logout").send().await.unwrap();
    assert_eq!(no_csrf.status(), 403);
    let cross = with_cookie("POST", "/ui/logout")
        .header("x-csrf-token", &csrf)
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), 403);
    let out = with_cookie("POST", "/ui/logout")
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 200);
    assert!(out.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    assert_eq!(
        with_cookie("GET", "/admin/keys").send().await.unwrap().status(),
        401
    );
}

#[tokio::test]
async fn console_assets_are_embedded_and_locked_to_this_origin() {
    let gw = gateway(CONFIG).await;
    for (path, kind) in [
        ("/ui", "text/html"),
        ("/ui/", "text/html"),
        ("/ui/app.js", "text/javascript"),
        ("/ui/pages.js", "text/javascript"),
        ("/ui/chart.js", "text/javascript"),
        ("/ui/app.css", "text/css"),
        ("/ui/icon.svg", "image/svg+xml"),
    ] {
        let resp = client().get(gw.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        let h = resp.headers();
        assert!(h["content-type"].to_str().unwrap().starts_with(kind), "{path}");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert_eq!(h["x-content-type-options"], "nosniff");
        let body = resp.text().await.unwrap();
        assert!(
            !body.contains("http://") || path == "/ui/icon.svg" || path == "/ui/chart.js",
            "{path} loads nothing from elsewhere"
        );
    }
    let config: Value = client()
        .get(gw.url("/ui/config"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["sso"], false);
}
