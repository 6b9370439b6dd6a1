//! `moat` against a real moatd (the gateway library, served in-process on port 0) in front of the
//! emulator over verified TLS: chat, `-c`, models and doctor work unchanged.

use moat_gateway::config::Config;
use moat_gateway::{server, Gateway};

use crate::{run, turns, Harness};

#[test]
fn works_unchanged_against_moatd() {
    let h = Harness::tls();
    let data = h.path("moatd");
    std::fs::create_dir_all(&data).unwrap();
    let toml = format!(
        "[store]\nurl = \"sqlite://{}\"\nsecret_file = \"{}\"\n\n\
         [[providers]]\nname = \"emu\"\nkind = \"openai\"\nbase_url = \"{}\"\napi_key = \"{}\"\nca_file = \"{}\"\n",
        data.join("moatd.db").display(),
        data.join("secret").display(),
        h.emu.base_url(),
        crate::KEY,
        h.ca_file.display()
    );
    let config = Config::from_toml(&toml, "test").unwrap();
    let gateway = Gateway::open(&config).unwrap();
    let (listener, addr) = h.rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        (listener, addr)
    });
    h.rt.spawn(async move {
        let _ = server::serve(listener, gateway, std::future::pending()).await;
    });
    let base = format!("http://{addr}/api/v1");
    let moat = || {
        let mut cmd = h.bare();
        cmd.args(["--base-url", &base]);
        cmd
    };

    let out = run(moat(), &["-m", "emu/tiny", "hello", "gateway"], None);
    out.ok();
    assert_eq!(out.stdout, "You said: hello gateway\n");
    run(moat(), &["-c", "again"], None).ok();
    let chats = h.chats();
    assert_eq!(chats[1]["model"], "tiny", "moatd strips its provider prefix");
    assert_eq!(turns(&chats[1]).len(), 3);

    let out = run(
        moat(),
        &["-m", "emu/tiny", "-m", "emu/openai/gpt-4o-mini", "q"],
        None,
    );
    out.ok();
    assert!(
        out.stdout.contains("── emu/openai/gpt-4o-mini ──\nYou said: q"),
        "{}",
        out.stdout
    );

    let out = run(moat(), &["models", "emu/"], None);
    out.ok();
    assert!(out.stdout.contains("emu/tiny"), "{}", out.stdout);

    let out = run(moat(), &["doctor"], None);
    out.ok();
    assert!(
        out.stdout.contains("tls       none: plain http"),
        "{}",
        out.stdout
    );
    // moatd answers GET /api/v1/key for the calling key (or says it does not): either way one line.
    assert!(out.stdout.contains("\nlimit     "), "{}", out.stdout);
}
