//! Asking: streamed output, stdin + arguments, `-c`, parallel models, reasoning, JSON, `--private`,
//! usage and API errors, models and completions, and a plain-HTTP OpenAI-compatible server.

use serde_json::{json, Value};

use crate::{files_under, run, turns, Harness, KEY};

#[test]
fn streams_the_answer_over_verified_tls() {
    let h = Harness::tls();
    let out = run(h.moat(), &["-m", "tiny", "hello", "world"], None);
    out.ok();
    assert_eq!(out.stdout, "You said: hello world\n");
    assert_eq!(
        out.stderr, "",
        "no spinner or stats when stderr is not a terminal"
    );
    let requests = h.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].path, "/v1/chat/completions");
    assert_eq!(
        requests[0].headers["authorization"],
        format!("Bearer {KEY}").as_str()
    );
    let body = requests[0].json().unwrap();
    assert_eq!(
        (body["stream"].clone(), body["model"].clone()),
        (json!(true), json!("tiny"))
    );
    assert_eq!(body["stream_options"]["include_usage"], true);
}

#[test]
fn stats_line_when_asked() {
    let h = Harness::tls();
    let out = run(h.moat(), &["-m", "tiny", "--stats", "hi"], None);
    out.ok();
    // model · provider · cost · first token · rate: the emulator reports provider "Emu" and a cost.
    assert!(out.stderr.starts_with("tiny · Emu · $"), "{}", out.stderr);
    assert!(out.stderr.contains("first token"), "{}", out.stderr);
}

#[test]
fn stdin_and_arguments_combine() {
    let h = Harness::tls();
    let out = run(
        h.moat(),
        &["-m", "tiny", "summarise", "this"],
        Some("line one\nline two\n"),
    );
    out.ok();
    let body = &h.chats()[0];
    assert_eq!(
        turns(body),
        [(
            "user".to_owned(),
            "summarise this\n\nline one\nline two".to_owned()
        )]
    );
    assert_eq!(out.stdout, "You said: summarise this\n\nline one\nline two\n");
}

#[test]
fn continue_sends_the_prior_turns_with_the_same_model() {
    let h = Harness::tls();
    run(
        h.moat(),
        &["-m", "openai/gpt-4o-mini", "-s", "be brief", "first"],
        None,
    )
    .ok();
    run(h.moat(), &["-c", "second"], None).ok();
    let chats = h.chats();
    assert_eq!(chats.len(), 2);
    assert_eq!(chats[1]["model"], "openai/gpt-4o-mini", "-c keeps the model");
    let expected: Vec<(String, String)> = [
        ("system", "be brief"),
        ("user", "first"),
        ("assistant", "You said: first"),
        ("user", "second"),
    ]
    .iter()
    .map(|(r, c)| ((*r).to_owned(), (*c).to_owned()))
    .collect();
    assert_eq!(turns(&chats[1]), expected);
    // A different terminal has its own conversation.
    let mut other = h.moat();
    other.env("MOAT_SESSION", "another-terminal");
    let out = run(other, &["-c", "-m", "tiny", "fresh"], None);
    out.ok();
    assert!(out.stderr.contains("no earlier conversation"), "{}", out.stderr);
    assert_eq!(turns(&h.chats()[2]).len(), 1);
}

#[test]
fn parallel_models_answer_labelled_in_flag_order() {
    let h = Harness::tls();
    let out = run(
        h.moat(),
        &[
            "-m",
            "tiny",
            "-m",
            "openai/gpt-4o-mini",
            "-m",
            "anthropic/claude-sonnet-4",
            "q",
        ],
        None,
    );
    out.ok();
    assert_eq!(
        out.stdout,
        "── tiny ──\nYou said: q\n\n── openai/gpt-4o-mini ──\nYou said: q\n\n── anthropic/claude-sonnet-4 ──\nYou said: q\n\n"
    );
    let mut models: Vec<String> = h
        .chats()
        .iter()
        .map(|c| c["model"].as_str().unwrap().to_owned())
        .collect();
    models.sort();
    assert_eq!(
        models,
        ["anthropic/claude-sonnet-4", "openai/gpt-4o-mini", "tiny"]
    );
}

#[test]
fn double_r_shows_reasoning_and_plain_r_hides_it() {
    let h = Harness::tls();
    let out = run(h.moat(), &["-m", "tiny", "-rr", "why"], None);
    out.ok();
    assert_eq!(out.stdout, "You said: why\n", "reasoning stays off stdout");
    assert!(out.stderr.contains("Thinking about \"why\"."), "{}", out.stderr);
    assert_eq!(h.chats()[0]["reasoning"], json!({"enabled": true}));

    let out = run(h.moat(), &["-m", "tiny", "-r", "high", "why"], None);
    out.ok();
    assert!(!out.stderr.contains("Thinking"), "{}", out.stderr);
    assert_eq!(
        h.chats()[1]["reasoning"],
        json!({"effort": "high", "exclude": true})
    );
}

#[test]
fn json_prints_the_final_response() {
    let h = Harness::tls();
    let out = run(h.moat(), &["-m", "tiny", "--json", "hi"], None);
    out.ok();
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "You said: hi");
    assert!(h.chats()[0].get("stream").is_none());
}

#[test]
fn private_leaves_no_file_behind() {
    let h = Harness::tls();
    run(h.moat(), &["-m", "tiny", "--private", "secret question"], None).ok();
    for dir in h.xdg_dirs() {
        assert_eq!(
            files_under(&dir),
            Vec::<std::path::PathBuf>::new(),
            "{} was written to",
            dir.display()
        );
    }
    // Without --private the conversation is saved, 0600: the check above is not vacuous.
    run(h.moat(), &["-m", "tiny", "normal question"], None).ok();
    let saved = files_under(&h.path("state"));
    assert_eq!(saved.len(), 1, "{saved:?}");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&saved[0]).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[test]
fn usage_errors_exit_2_before_sending() {
    let h = Harness::tls();
    let many: Vec<String> = (0..11).flat_map(|i| ["-m".to_owned(), format!("m{i}")]).collect();
    let mut args: Vec<&str> = many.iter().map(String::as_str).collect();
    args.push("q");
    for (args, needle) in [
        (args, "at most 10 models"),
        (
            vec!["-m", "tiny", "-r", "extreme", "q"],
            "reasoning effort 'extreme'",
        ),
        (vec!["-m", "tiny"], "no prompt"),
        (
            vec!["-m", "tiny", "@/nonexistent/file"],
            "cannot read @/nonexistent/file",
        ),
        (vec!["-m", "tiny", "--temperature", "3", "q"], "--temperature"),
    ] {
        let out = run(h.moat(), &args, None);
        assert_eq!(out.code, 2, "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.starts_with("moat: ") && out.stderr.contains(needle),
            "{}",
            out.stderr
        );
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    }
    let out = run(h.moat(), &["--no-such-flag"], None);
    assert_eq!(out.code, 2);
    assert!(h.requests().is_empty());
}

#[test]
fn api_errors_exit_1_with_the_servers_message() {
    let h = Harness::tls();
    h.config("[profiles.default]\nextra_body = { emulate = { status = 429, message = \"slow down\" } }\n");
    let out = run(h.moat(), &["-m", "tiny", "q"], None);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("HTTP 429: slow down"), "{}", out.stderr);
    let mut wrong = h.bare();
    wrong
        .env("MOAT_API_KEY", "sk-wrong")
        .args(["--base-url", &h.emu.base_url(), "--cacert"])
        .arg(&h.ca_file);
    let out = run(wrong, &["-m", "tiny", "q"], None);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("HTTP 401") && out.stderr.contains("moat login"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_broken_stream_is_an_error_not_a_short_answer() {
    let h = Harness::tls();
    h.config("[profiles.default]\nextra_body = { emulate = { error_after_chunks = 1 } }\n");
    let out = run(h.moat(), &["-m", "tiny", "one two three"], None);
    assert_eq!(out.code, 1);
    assert!(out.stdout.starts_with("You"), "{}", out.stdout);
    assert!(
        out.stderr.contains("Emulated mid-stream failure"),
        "{}",
        out.stderr
    );
}

#[test]
fn models_lists_context_and_prices() {
    let h = Harness::tls();
    let out = run(h.moat(), &["models", "claude"], None);
    out.ok();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 2, "{}", out.stdout);
    assert!(lines[0].starts_with("MODEL"));
    assert!(lines[1].starts_with("anthropic/claude-sonnet-4") && lines[1].contains("200000"));
    assert!(
        lines[1].contains("$3.000") && lines[1].ends_with("$15.0"),
        "{}",
        lines[1]
    );
    let out = run(h.moat(), &["models", "--json", "tiny"], None);
    let v: Value = serde_json::from_str(&out.ok().stdout).unwrap();
    assert_eq!(v[0]["id"], "tiny");
}

#[test]
fn completions_and_help() {
    let h = Harness::tls();
    let out = run(h.bare(), &["completions", "bash"], None);
    assert!(out.ok().stdout.contains("_moat()"));
    let out = run(h.bare(), &["--help"], None);
    assert!(out.ok().stdout.contains("Examples:") && out.stdout.contains("moat login"));
}

#[test]
fn works_with_a_plain_http_openai_compatible_server() {
    let h = Harness::with(moat_testkit::EmulatorOptions::default(), false);
    h.config(&format!(
        "[profiles.default]\nbase_url = \"{}\"\nmodel = \"tiny\"\n",
        h.emu.base_url()
    ));
    let mut cmd = h.bare();
    cmd.env("MOAT_API_KEY", KEY);
    let out = run(cmd, &["hello", "local"], None);
    out.ok();
    assert_eq!(out.stdout, "You said: hello local\n");
    // Plain http beyond loopback is refused before anything is sent.
    let out = run(
        h.bare(),
        &["--base-url", "http://192.0.2.1/v1", "-m", "x", "q"],
        None,
    );
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("refusing plain http://"), "{}", out.stderr);
}
