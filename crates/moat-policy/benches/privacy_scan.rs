//! Throughput of the privacy scanner: `cargo bench -p moat-policy --bench privacy_scan`.
//!
//! Prints MB/s (1 MB = 10^6 bytes) for each kind of text, as the median of several timed rounds, each
//! round at least a quarter of a second; then, per request body, what the whole-body walk
//! (`privacy::body::inspect`: every string, keys, embedded text, joined texts) costs against scanning
//! the message texts alone. Texts come from the deterministic corpora in
//! `moat_policy::privacy::corpus`, so runs are comparable across machines and commits.

use std::hint::black_box;
use std::time::{Duration, Instant};

use moat_policy::privacy::corpus::{dense_near_misses, planted_docs, typical_text, Rng};
use moat_policy::privacy::{body, CustomRule, Scanner};
use serde_json::{json, Value};

const SIZE: usize = 4 << 20;
const ROUNDS: usize = 7;
const MIN_ROUND: Duration = Duration::from_millis(250);

/// Median MB/s of `f` over `bytes` of input.
fn measure(bytes: usize, mut f: impl FnMut() -> usize) -> f64 {
    let mut rates = Vec::with_capacity(ROUNDS);
    black_box(f());
    for _ in 0..ROUNDS {
        let (start, mut n) = (Instant::now(), 0u64);
        while start.elapsed() < MIN_ROUND {
            black_box(f());
            n += 1;
        }
        rates.push(bytes as f64 * n as f64 / start.elapsed().as_secs_f64() / 1e6);
    }
    rates.sort_by(f64::total_cmp);
    rates[ROUNDS / 2]
}

/// Typical text with one planted item (from the mixed-prompt corpus) about every `every` bytes.
fn sparse(every: usize) -> String {
    let base = typical_text(2, SIZE);
    let docs = planted_docs(3, SIZE / every + 1);
    let mut out = String::with_capacity(SIZE + SIZE / 8);
    let mut plants = docs
        .iter()
        .flat_map(|d| d.planted.iter().map(move |p| &d.text[p.start..p.end]));
    let mut last = 0;
    for (i, _) in base.match_indices('\n') {
        if i - last >= every {
            out.push_str(&base[last..i]);
            out.push(' ');
            out.push_str(plants.next().unwrap_or("jane.doe@acme-corp.com"));
            last = i;
        }
    }
    out.push_str(&base[last..]);
    out
}

/// Rows to run: `cargo bench -p moat-policy --bench privacy_scan -- worst` runs those whose name
/// contains "worst"; no filter runs all.
fn selected(name: &str) -> bool {
    let filters: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    filters.is_empty() || filters.iter().any(|f| name.contains(f.as_str()))
}

fn row(name: &str, text: &str, scanner: &Scanner) {
    if !selected(name) {
        return;
    }
    let findings = scanner.scan(text).len();
    let scan = measure(text.len(), || scanner.scan(text).len());
    let has = measure(text.len(), || usize::from(scanner.has_findings(text)));
    println!(
        "| {name:<44} | {:>7.2} | {:>9} | {scan:>10.0} | {has:>14.0} |",
        text.len() as f64 / 1e6,
        findings
    );
}

/// The same text cut into prompt-sized pieces, each scanned on its own (per-call overhead included).
fn row_chunked(name: &str, text: &str, chunk: usize, scanner: &Scanner) {
    if !selected(name) {
        return;
    }
    let mut pieces = Vec::new();
    let mut start = 0;
    while start < text.len() {
        let mut end = (start + chunk).min(text.len());
        while !text.is_char_boundary(end) {
            end += 1;
        }
        pieces.push(&text[start..end]);
        start = end;
    }
    let findings: usize = pieces.iter().map(|p| scanner.scan(p).len()).sum();
    let scan = measure(text.len(), || pieces.iter().map(|p| scanner.scan(p).len()).sum());
    let has = measure(text.len(), || {
        pieces.iter().filter(|p| scanner.has_findings(p)).count()
    });
    println!(
        "| {name:<44} | {:>7.2} | {:>9} | {scan:>10.0} | {has:>14.0} |",
        text.len() as f64 / 1e6,
        findings
    );
}

/// This repository's own Rust sources and Markdown: real code and prose, the text a coding assistant
/// is sent. Read at run time, so the row follows the repository.
fn repository_text() -> String {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut stack = vec![
        root.join("crates"),
        root.join("docs"),
        root.join("bench"),
        root.join("README.md"),
    ];
    let mut out = String::new();
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            let mut entries: Vec<_> = std::fs::read_dir(&p)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path())
                .collect();
            entries.sort();
            stack.extend(entries.into_iter().filter(|e| !e.ends_with("target")));
        } else if p.extension().is_some_and(|x| x == "rs" || x == "md") {
            out.push_str(&std::fs::read_to_string(&p).unwrap_or_default());
        }
    }
    out
}

/// Median microseconds per call of `f`.
fn micros(mut f: impl FnMut() -> usize) -> f64 {
    let mut times = Vec::with_capacity(ROUNDS);
    black_box(f());
    for _ in 0..ROUNDS {
        let (start, mut n) = (Instant::now(), 0u64);
        while start.elapsed() < MIN_ROUND {
            black_box(f());
            n += 1;
        }
        times.push(start.elapsed().as_secs_f64() * 1e6 / n as f64);
    }
    times.sort_by(f64::total_cmp);
    times[ROUNDS / 2]
}

/// A chat request: `messages` texts of about `each` bytes, and `tools` function tools with a
/// parameter schema each.
fn chat_body(text: &str, messages: usize, each: usize, tools: usize) -> Value {
    let mut at = 0;
    let msgs: Vec<Value> = (0..messages)
        .map(|i| {
            let mut end = (at + each).min(text.len());
            while !text.is_char_boundary(end) {
                end += 1;
            }
            let content = &text[at..end];
            at = end;
            json!({"role": if i % 2 == 0 { "user" } else { "assistant" }, "content": content})
        })
        .collect();
    let tools: Vec<Value> = (0..tools)
        .map(|i| {
            json!({"type": "function", "function": {
                "name": format!("tool_{i}"),
                "description": "Looks up the current state of an order in the warehouse system and returns it.",
                "parameters": {"type": "object", "required": ["order_id"], "properties": {
                    "order_id": {"type": "string", "description": "The order's id, as printed on the invoice."},
                    "include_history": {"type": "boolean", "description": "Whether to list every past state too."},
                    "region": {"type": "string", "enum": ["eu", "us", "apac"]}}}}})
        })
        .collect();
    json!({"model": "gpt-4o", "messages": msgs, "tools": tools, "temperature": 0.2, "stream": true})
}

/// What moatd scanned before the whole-body walk: each message's text.
fn texts_only(scanner: &Scanner, body: &Value) -> usize {
    body["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| m["content"].as_str())
        .map(|t| scanner.scan(t).len())
        .sum()
}

fn walk_row(name: &str, body: &Value, scanner: &Scanner) {
    if !selected(name) {
        return;
    }
    let bytes = body.to_string().len();
    let texts = micros(|| texts_only(scanner, body));
    let whole = micros(|| body::inspect(scanner, body).findings.len());
    println!(
        "| {name:<44} | {:>7.1} | {texts:>10.1} | {whole:>10.1} | {:>8.1} | {:>11.0} |",
        bytes as f64 / 1024.0,
        whole - texts,
        bytes as f64 / whole,
    );
}

fn main() {
    let start = Instant::now();
    let builtin = Scanner::new(&[]).unwrap_or_else(|e| unreachable!("built-in detectors compile: {e}"));
    println!(
        "Scanner::new (built-in detectors): {:.1} ms\n",
        start.elapsed().as_secs_f64() * 1e3
    );
    let rules = [
        CustomRule {
            id: "codenames".into(),
            regex: None,
            terms: vec!["Bluebird".into(), "Project Nightjar".into()],
        },
        CustomRule {
            id: "ticket".into(),
            regex: Some(r"\bINC-[0-9]{6}\b".into()),
            terms: vec![],
        },
    ];
    let custom = Scanner::new(&rules).unwrap_or_else(|e| unreachable!("bench rules compile: {e}"));

    let typical = typical_text(1, SIZE);
    let sparse_text = sparse(8 * 1024);
    let planted: String = planted_docs(4, 4000)
        .into_iter()
        .map(|d| d.text)
        .collect::<Vec<_>>()
        .join("\n");
    let worst = dense_near_misses(5, SIZE);
    let mut rng = Rng::new(6);
    let non_ascii: String = (0..SIZE / 40)
        .map(|_| {
            *rng.pick(&[
                "Bitte prüfen Sie den Vertrag. ",
                "この関数の説明をお願いします。",
                "Объясни ошибку. ",
            ])
        })
        .collect();

    println!("| text | MB | findings | scan MB/s | has_findings MB/s |");
    println!("|---|---:|---:|---:|---:|");
    row("clean: typical prose and code", &typical, &builtin);
    row(
        "real: this repository's .rs and .md files",
        &repository_text(),
        &builtin,
    );
    row_chunked("clean: same, as 4 KiB prompts", &typical, 4096, &builtin);
    row("clean: typical, with 2 custom rules", &typical, &custom);
    row("clean: non-ASCII prose (de/ja/ru)", &non_ascii, &builtin);
    row("clean: non-ASCII prose, with 2 custom rules", &non_ascii, &custom);
    row("sparse: one finding per 8 KiB", &sparse_text, &builtin);
    row("dense: generated prompts with plants", &planted, &builtin);
    row("worst: near-misses and hostile repeats", &worst, &builtin);

    println!("\nWhole-body walk per request (µs): message texts alone vs every string of the body\n");
    println!("| request body | KiB | texts µs | whole µs | added µs | whole MB/s |");
    println!("|---|---:|---:|---:|---:|---:|");
    walk_row(
        "chat: 4 messages of 500 B",
        &chat_body(&typical, 4, 500, 0),
        &builtin,
    );
    walk_row(
        "chat: 10 messages of 1 KiB",
        &chat_body(&typical, 10, 1024, 0),
        &builtin,
    );
    walk_row(
        "chat: 10 messages of 1 KiB, 20 tools",
        &chat_body(&typical, 10, 1024, 20),
        &builtin,
    );
    walk_row(
        "chat: 40 messages of 4 KiB",
        &chat_body(&typical, 40, 4096, 0),
        &builtin,
    );
    walk_row(
        "chat: 2 messages of 512 KiB",
        &chat_body(&typical, 2, 512 * 1024, 0),
        &builtin,
    );
}
