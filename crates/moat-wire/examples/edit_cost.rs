//! What writing one forwarded body costs, encoded again or edited in place, for a conversation of a
//! given size: run under callgrind at two iteration counts and divide the difference (see
//! docs/BENCHMARKS.md, "In-place edit").
//!
//! ```sh
//! cargo build --release -p moat-wire --example edit_cost
//! valgrind --tool=callgrind target/release/examples/edit_cost edit 1000 40
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use moat_wire::edit::{edit, parse};
use moat_wire::openai::ChatCompletionRequest;

/// The members the gateway sets (moat-gateway's `SET_MEMBERS`).
const FRESH: &[&str] = &[
    "model",
    "models",
    "stream_options",
    "provider",
    "user",
    "prompt_cache_key",
    "cache_salt",
    "cache_prompt",
];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (how, n, messages) = (
        args[1].as_str(),
        args[2].parse::<usize>().unwrap(),
        args[3].parse::<usize>().unwrap(),
    );
    // A conversation of `messages` turns of about 1 KB each, as a client's JSON.
    let turn = r#"The quick brown fox jumps over the lazy dog; \"quoted\" text and a line\n. "#.repeat(14);
    let turns: Vec<String> = (0..messages)
        .map(|i| {
            let role = if i % 2 == 0 { "user" } else { "assistant" };
            format!(r#"{{"role": "{role}", "content": "{turn}{i}"}}"#)
        })
        .collect();
    let body = format!(
        r#"{{"model": "emu/tiny", "messages": [{}], "max_tokens": 8, "temperature": 0.7}}"#,
        turns.join(", ")
    );
    let (value, unique) = parse(body.as_bytes()).unwrap();
    let unique = unique.unwrap();
    let mut request: ChatCompletionRequest = serde_json::from_value(value).unwrap();
    request.model = Some("tiny".into());
    request.cache_salt = Some("a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1".into());
    let mut written = 0;
    for _ in 0..n {
        let out = match how {
            "encode" => serde_json::to_vec(&request).unwrap(),
            "edit" => edit(&unique, &request, FRESH).unwrap(),
            _ => panic!("encode or edit"),
        };
        written += std::hint::black_box(out).len();
    }
    println!(
        "{how}: {n} bodies of {} bytes, {written} bytes written",
        body.len()
    );
}
