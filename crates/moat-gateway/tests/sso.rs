//! Single sign-on against a real OpenID provider (the certified `oidc-provider` npm package, run by
//! node; `scripts/test.sh` installs it in `tests/node`): the authorization code flow with PKCE, roles
//! from the `groups` claim honoured by the admin API (an admin, a team admin held to their team, a
//! read-only viewer, a person with no role refused), CSRF on session changes, logout, an expired
//! session, and audit records naming the person.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use common::*;
use moat_audit::{AuditLog, AuditRecord, AuditSettings};
use moat_gateway::config::Config;
use moat_gateway::{server, Gateway};
use moat_store::SqliteStore;
use serde_json::{json, Value};

/// The OpenID provider, stopped when dropped.
struct Idp {
    child: Child,
    issuer: String,
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_idp(redirect: &str) -> Idp {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/node");
    assert!(
        std::path::Path::new(dir)
            .join("node_modules/oidc-provider")
            .exists(),
        "oidc-provider missing in {dir}: run scripts/test.sh (it runs `npm ci` there)"
    );
    let mut child = Command::new("node")
        .arg("oidc_provider.mjs")
        .current_dir(dir)
        .env("CLIENT_SECRET", "moat-client-secret")
        .env("REDIRECT_URI", redirect)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node runs (scripts/test.sh needs node and npm)");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let issuer = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(i) = line.strip_prefix("issuer=") {
                    break i.to_string();
                }
            }
            _ => panic!("the OpenID provider did not start"),
        }
    };
    // Keep reading what it prints, so its writes never hit a closed pipe.
    std::thread::spawn(move || for _ in lines {});
    Idp { child, issuer }
}

struct Sso {
    base: String,
    _idp: Idp,
    audit: Arc<AuditLog>,
    _dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Sso {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

async fn start(session_ttl_secs: u64) -> Sso {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let idp = start_idp(&format!("{base}/ui/callback"));
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("oidc-secret");
    std::fs::write(&secret_file, "moat-client-secret\n").unwrap();
    let toml = format!(
        "[admin]\nsession_ttl_secs = {session_ttl_secs}\n[admin.sso]\nissuer = \"{}\"\nclient_id = \"moatd\"\n\
         client_secret_file = \"{}\"\nredirect_url = \"{base}/ui/callback\"\nroles_claim = \"groups\"\n\
         [admin.sso.roles]\n\"moat-admins\" = \"admin\"\n\"research-leads\" = \"team_admin:research\"\n\"auditors\" = \"viewer\"\n",
        idp.issuer,
        secret_file.display()
    );
    let config = Config::from_toml(&toml, "sso-test").unwrap();
    let audit = Arc::new(
        AuditLog::open(
            &format!("sqlite://{}/audit.db", dir.path().display()),
            &dir.path().join("audit.key"),
            AuditSettings::default(),
        )
        .unwrap(),
    );
    let store = Arc::new(SqliteStore::open_memory().unwrap());
    let gw = Gateway::with_parts(&config, store, secret(), Some(audit.clone())).unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server::serve(listener, gw, async {
        let _ = stopped.await;
    }));
    Sso {
        base,
        _idp: idp,
        audit,
        _dir: dir,
        stop: Some(stop),
    }
}

/// Cookies by host, as a browser keeps them (enough for these two hosts).
#[derive(Default)]
struct Jar(HashMap<String, HashMap<String, String>>);

impl Jar {
    fn header(&self, url: &reqwest::Url) -> String {
        let host = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
        self.0
            .get(&host)
            .map(|c| {
                c.iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("; ")
            })
            .unwrap_or_default()
    }

    fn keep(&mut self, url: &reqwest::Url, resp: &reqwest::Response) {
        let host = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
        for v in resp.headers().get_all("set-cookie") {
            let text = v.to_str().unwrap();
            let (pair, attrs) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            let jar = self.0.entry(host.clone()).or_default();
            if attrs.contains("Max-Age=0") || attrs.contains("expires=Thu, 01 Jan 1970") {
                jar.remove(name.trim());
            } else {
                jar.insert(name.trim().to_string(), value.to_string());
            }
        }
    }

    fn session(&self, base: &str) -> Option<String> {
        let url: reqwest::Url = base.parse().unwrap();
        let host = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
        self.0.get(&host)?.get("moat_session").cloned()
    }
}

fn http() -> reqwest::Client {
    let tls = moat_upstream::tls::client_config(None).unwrap();
    reqwest::Client::builder()
        .tls_backend_preconfigured(tls)
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Signs `person` in through the provider, following redirects as a browser would; returns the
/// final response's status and body, and the cookie jar.
async fn sign_in(sso: &Sso, person: &str) -> (u16, String, Jar) {
    let client = http();
    let mut jar = Jar::default();
    let mut url: reqwest::Url = format!("{}/ui/login/sso", sso.base).parse().unwrap();
    let mut form: Option<String> = None;
    for _ in 0..20 {
        let req = match form.take() {
            Some(body) => client
                .post(url.clone())
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body),
            None => client.get(url.clone()),
        };
        let resp = req.header("cookie", jar.header(&url)).send().await.unwrap();
        jar.keep(&url, &resp);
        let status = resp.status().as_u16();
        if let Some(next) = resp.headers().get("location") {
            url = url.join(next.to_str().unwrap()).unwrap();
            continue;
        }
        let body = resp.text().await.unwrap();
        if url.path().starts_with("/interaction/") && status == 200 {
            // The provider's login form: the person types their name.
            url = url.join(&format!("{}/login", url.path())).unwrap();
            form = Some(format!("login={person}"));
            continue;
        }
        return (status, body, jar);
    }
    panic!("too many redirects");
}

/// An admin API call with the session cookie (and its CSRF token when `csrf` is given).
async fn call(
    sso: &Sso,
    jar: &Jar,
    method: &str,
    path: &str,
    body: Option<Value>,
    csrf: Option<&str>,
) -> (u16, Value) {
    let url: reqwest::Url = format!("{}{path}", sso.base).parse().unwrap();
    let mut req = http()
        .request(method.parse().unwrap(), url.clone())
        .header("cookie", jar.header(&url));
    if let Some(t) = csrf {
        req = req.header("x-csrf-token", t);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn csrf_of(sso: &Sso, jar: &Jar) -> String {
    let (status, me) = call(sso, jar, "GET", "/ui/session", None, None).await;
    assert_eq!(status, 200, "{me}");
    me["data"]["csrf"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn sso_roles_are_honoured_by_the_admin_api() {
    let sso = start(3600).await;

    // An admin: everything, but a change without the session's CSRF token is refused.
    let (status, body, alice) = sign_in(&sso, "alice").await;
    assert_eq!(status, 200, "{body}");
    assert!(alice.session(&sso.base).is_some());
    let csrf = csrf_of(&sso, &alice).await;
    let (_, me) = call(&sso, &alice, "GET", "/admin/me", None, None).await;
    assert_eq!(me["data"]["actor"], "sso:alice@example.com");
    assert_eq!(me["data"]["role"], "admin");
    let team = json!({"name": "research"});
    let (status, err) = call(&sso, &alice, "POST", "/admin/teams", Some(team.clone()), None).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (403, Some("csrf_failed"))
    );
    let (status, _) = call(&sso, &alice, "POST", "/admin/teams", Some(team), Some(&csrf)).await;
    assert_eq!(status, 201);
    let (status, _) = call(
        &sso,
        &alice,
        "POST",
        "/admin/teams",
        Some(json!({"name": "ops"})),
        Some(&csrf),
    )
    .await;
    assert_eq!(status, 201);
    let ops_key = json!({"name": "ops-key", "team": "ops"});
    let (status, _) = call(&sso, &alice, "POST", "/admin/keys", Some(ops_key), Some(&csrf)).await;
    assert_eq!(status, 201);

    // A team admin: their team's keys only.
    let (_, _, bob) = sign_in(&sso, "bob").await;
    let bob_csrf = csrf_of(&sso, &bob).await;
    let own = json!({"name": "lab-key", "team": "research", "budget": "5/day"});
    let (status, created) = call(&sso, &bob, "POST", "/admin/keys", Some(own), Some(&bob_csrf)).await;
    assert_eq!(status, 201, "{created}");
    let other = json!({"name": "sneaky", "team": "ops"});
    let (status, err) = call(&sso, &bob, "POST", "/admin/keys", Some(other), Some(&bob_csrf)).await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (403, Some("role_forbidden"))
    );
    let (status, err) = call(
        &sso,
        &bob,
        "POST",
        "/admin/teams",
        Some(json!({"name": "mine"})),
        Some(&bob_csrf),
    )
    .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (403, Some("role_forbidden"))
    );
    let (_, keys) = call(&sso, &bob, "GET", "/admin/keys", None, None).await;
    let names: Vec<&str> = keys["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["lab-key"], "a team admin sees their team's keys only");
    let (status, _) = call(
        &sso,
        &bob,
        "POST",
        "/admin/keys/ops-key/revoke",
        Some(json!({})),
        Some(&bob_csrf),
    )
    .await;
    assert_eq!(status, 403, "another team's key is out of reach");

    // A viewer reads and changes nothing.
    let (_, _, carol) = sign_in(&sso, "carol").await;
    let carol_csrf = csrf_of(&sso, &carol).await;
    let (status, keys) = call(&sso, &carol, "GET", "/admin/keys", None, None).await;
    assert_eq!((status, keys["data"].as_array().unwrap().len()), (200, 2));
    let (status, err) = call(
        &sso,
        &carol,
        "POST",
        "/admin/keys",
        Some(json!({"name": "v"})),
        Some(&carol_csrf),
    )
    .await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (403, Some("role_forbidden"))
    );
    let (status, _) = call(&sso, &carol, "GET", "/metrics", None, None).await;
    assert_eq!(status, 200, "viewers may read metrics");

    // Someone whose groups map to no role gets no session.
    let (status, body, dave) = sign_in(&sso, "dave").await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("no role"), "{body}");
    assert!(dave.session(&sso.base).is_none());

    // Logging out ends the session at once.
    let (status, _) = call(&sso, &carol, "POST", "/ui/logout", None, Some(&carol_csrf)).await;
    assert_eq!(status, 200);
    let (status, _) = call(&sso, &carol, "GET", "/admin/keys", None, None).await;
    assert_eq!(status, 401);

    // Every change names the person who made it.
    let records = sso.audit.recent(100).unwrap();
    let actor_of = |action: &str| {
        records.iter().find_map(|r| match &r.record {
            AuditRecord::Admin(a) if a.action == action => Some(a.actor.clone()),
            _ => None,
        })
    };
    assert_eq!(actor_of("team.create").as_deref(), Some("sso:alice@example.com"));
    assert_eq!(actor_of("key.create").as_deref(), Some("sso:bob@example.com"));
    assert_eq!(
        actor_of("console.logout").as_deref(),
        Some("sso:carol@example.com")
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_session_is_refused() {
    let sso = start(1).await;
    let (status, body, alice) = sign_in(&sso, "alice").await;
    assert_eq!(status, 200, "{body}");
    assert!(alice.session(&sso.base).is_some());
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let (status, _) = call(&sso, &alice, "GET", "/admin/keys", None, None).await;
    assert_eq!(status, 401);
    let (status, _) = call(&sso, &alice, "GET", "/ui/session", None, None).await;
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_callback_not_started_in_this_browser_is_refused() {
    let sso = start(3600).await;
    let (status, body) = {
        let resp = http()
            .get(format!("{}/ui/callback?code=stolen&state=guessed", sso.base))
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    };
    assert_eq!(status, 400, "{body}");
    assert!(!body.contains("moat_session"));
}
