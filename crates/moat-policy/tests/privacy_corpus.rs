//! Recall and false-positive rates of the privacy detectors on the generated corpora
//! (`moat_policy::privacy::corpus`). Run with `--nocapture` to see the table that docs/PRIVACY.md
//! quotes.
//!
//! Thresholds, and why:
//! - secrets: 100% recall. Every planted secret is in a format a detector claims to cover, and the
//!   default policy (keep secrets local) is only as good as this number.
//! - personal data: ≥ 95% of all plants and 100% of those in formats the detectors claim. About 2.5%
//!   of the plants are deliberately in formats no pattern matcher can tell from IDs (a bare 10-digit
//!   phone number, an undashed SSN), so 97.5% is the ceiling; recall on the claimed formats must be
//!   complete, and the headline number must not drift down as the generator or patterns change.
//!   Personal data is allowed by default, so a miss costs less than a missed secret.
//! - clean corpus: ≤ 1% of documents with any finding. A false positive under the default policy
//!   routes a prompt to a local model or redacts a harmless string; one in a hundred prompts of
//!   near-miss-dense text is noticeable but tolerable. The development seed was used to tune the
//!   checks, so a second, held-out seed is measured too (and docs/PRIVACY.md adds a measurement on
//!   300 MB of third-party source code, which the checks were not tuned on).

use std::collections::BTreeMap;

use moat_policy::privacy::corpus::{clean_docs, gitleaks_docs, planted_docs, secret_docs, Doc};
use moat_policy::privacy::{body, Category, Finding, Scanner};

const SEED: u64 = 0x6d6f_6174;
/// A seed never used while tuning the checks.
const HELD_OUT_SEED: u64 = 0x2026_1123;

fn covers(f: &Finding, start: usize, end: usize) -> bool {
    f.start <= start && f.end >= end
}

/// Per-detector (planted, expected, found-with-the-right-id) counts, plus findings overlapping no plant.
#[derive(Default)]
struct Tally {
    per: BTreeMap<&'static str, (usize, usize, usize, usize)>,
    stray: BTreeMap<String, usize>,
}

fn tally(scanner: &Scanner, docs: &[Doc]) -> Tally {
    let mut t = Tally::default();
    for d in docs {
        let found = scanner.scan(&d.text);
        for p in &d.planted {
            let e = t.per.entry(p.detector).or_default();
            e.0 += 1;
            e.1 += usize::from(p.expected);
            let hit = found
                .iter()
                .any(|f| covers(f, p.start, p.end) && *f.detector == *p.detector);
            e.2 += usize::from(hit);
            e.3 += usize::from(hit && p.expected);
            if p.expected && !hit {
                eprintln!("MISS {} {:?} in {:?}", p.detector, &d.text[p.start..p.end], found);
            }
        }
        for f in &found {
            if !d.planted.iter().any(|p| f.start < p.end && p.start < f.end) {
                *t.stray.entry(f.detector.to_string()).or_default() += 1;
                eprintln!("STRAY {} {:?}", f.detector, &d.text[f.range()]);
            }
        }
    }
    t
}

fn print(title: &str, t: &Tally) {
    println!("{title}");
    println!(
        "  {:<20} {:>8} {:>9} {:>8} {:>9} {:>12}",
        "detector", "planted", "found", "recall", "claimed", "claimed rec."
    );
    for (id, (n, exp, hit, hit_exp)) in &t.per {
        println!(
            "  {:<20} {:>8} {:>9} {:>7.2}% {:>9} {:>11.2}%",
            id,
            n,
            hit,
            100.0 * *hit as f64 / *n as f64,
            exp,
            100.0 * *hit_exp as f64 / (*exp).max(1) as f64
        );
    }
    println!("  findings on no plant: {:?}", t.stray);
}

#[test]
fn every_planted_secret_is_found() {
    let scanner = Scanner::new(&[]).unwrap();
    let docs = secret_docs(SEED, 60);
    let t = tally(&scanner, &docs);
    print("secrets, one per document, every detector in every context", &t);
    for (id, (n, _, hit, _)) in &t.per {
        assert_eq!(hit, n, "{id}: {hit}/{n} found");
    }
    assert_eq!(t.per.len(), 12);
}

/// gitleaks' default rules, for every format moat covers, in gitleaks' own sample contexts: moat
/// finds everything gitleaks would.
#[test]
fn recall_is_at_least_gitleaks_on_its_formats() {
    let scanner = Scanner::new(&[]).unwrap();
    let docs = gitleaks_docs(SEED, 120);
    let mut per: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for (rule, d) in &docs {
        let found = scanner.scan(&d.text);
        let e = per.entry(rule).or_default();
        e.0 += 1;
        for p in &d.planted {
            let hit = found
                .iter()
                .any(|f| covers(f, p.start, p.end) && *f.detector == *p.detector);
            e.1 += usize::from(hit);
            if !hit {
                eprintln!("MISS {rule} {:?}: {:?}", d.text, found);
            }
        }
    }
    println!(
        "gitleaks' formats in gitleaks' sample contexts ({} documents)",
        docs.len()
    );
    println!("  {:<32} {:>8} {:>8}", "gitleaks rule", "planted", "found");
    for (rule, (n, hit)) in &per {
        println!("  {rule:<32} {n:>8} {hit:>8}");
    }
    let (n, hit) = per.values().fold((0, 0), |(a, b), (n, h)| (a + n, b + h));
    println!("  all: {hit}/{n}");
    assert_eq!(hit, n, "moat misses what gitleaks finds");
}

#[test]
fn recall_on_mixed_prompts() {
    let scanner = Scanner::new(&[]).unwrap();
    let docs = planted_docs(SEED, 3000);
    let t = tally(&scanner, &docs);
    print("mixed prompts (secrets and personal data among clean filler)", &t);
    let secret_ids: Vec<&str> = scanner
        .detectors()
        .filter(|(_, c)| *c == Category::Secret)
        .map(|(id, _)| id)
        .collect();
    let (mut pn, mut phit, mut pexp, mut phit_exp) = (0, 0, 0, 0);
    for (id, (n, exp, hit, hit_exp)) in &t.per {
        if secret_ids.contains(id) {
            assert_eq!(hit, n, "secret {id}: {hit}/{n}");
        } else {
            pn += n;
            phit += hit;
            pexp += exp;
            phit_exp += hit_exp;
        }
    }
    let recall = phit as f64 / pn as f64;
    println!(
        "  personal data: {phit}/{pn} = {:.2}% of all plants, {phit_exp}/{pexp} = {:.2}% of claimed formats",
        100.0 * recall,
        100.0 * phit_exp as f64 / pexp as f64
    );
    assert!(recall >= 0.95, "personal recall {recall}");
    assert_eq!(
        phit_exp, pexp,
        "every personal plant in a claimed format is found"
    );
    let stray: usize = t.stray.values().sum();
    assert!(
        stray * 100 <= docs.len(),
        "{stray} findings on filler in {} documents",
        docs.len()
    );
}

#[test]
fn false_positives_on_clean_text() {
    let scanner = Scanner::new(&[]).unwrap();
    for (seed, name) in [(SEED, "development seed"), (HELD_OUT_SEED, "held-out seed")] {
        let docs = clean_docs(seed, 3000);
        let bytes: usize = docs.iter().map(String::len).sum();
        let mut per: BTreeMap<String, usize> = BTreeMap::new();
        let mut flagged = 0;
        for d in &docs {
            let found = scanner.scan(d);
            flagged += usize::from(!found.is_empty());
            for f in &found {
                *per.entry(f.detector.to_string()).or_default() += 1;
                eprintln!("FP {} {:?}", f.detector, &d[f.range()]);
            }
            assert_eq!(scanner.has_findings(d), !found.is_empty());
        }
        let rate = flagged as f64 / docs.len() as f64;
        let total: usize = per.values().sum();
        println!(
            "clean corpus, {name}: {} documents, {:.1} MB; {flagged} with a finding ({:.2}%); {total} findings ({:.2} per MB): {per:?}",
            docs.len(),
            bytes as f64 / 1e6,
            100.0 * rate,
            total as f64 / (bytes as f64 / 1e6)
        );
        assert!(rate <= 0.01, "false-positive rate {rate} ({name})");
    }
}

/// The clean corpus as request bodies: consecutive documents as consecutive messages and content
/// parts, so the joined scan (secrets split across strings) runs over every junction. Joining must
/// not make findings of its own.
#[test]
fn false_positives_on_clean_bodies_with_joined_texts() {
    let scanner = Scanner::new(&[]).unwrap();
    for (seed, name) in [(SEED, "development seed"), (HELD_OUT_SEED, "held-out seed")] {
        let docs = clean_docs(seed, 3000);
        let mut flagged = 0;
        let mut junctions = 0;
        for group in docs.chunks(10) {
            let messages: Vec<serde_json::Value> = group
                .chunks(2)
                .map(|pair| {
                    let parts: Vec<serde_json::Value> = pair
                        .iter()
                        .map(|d| serde_json::json!({"type": "text", "text": d}))
                        .collect();
                    serde_json::json!({"role": "user", "content": parts})
                })
                .collect();
            junctions += group.len() - 1;
            let body = serde_json::json!({"model": "m", "messages": messages});
            let scan = body::inspect(&scanner, &body);
            flagged += usize::from(!scan.findings.is_empty());
            for f in &scan.findings {
                eprintln!("FP {} {:?}", f.detector, f.spans);
            }
        }
        println!(
            "clean bodies, {name}: {} bodies of 10 documents, {junctions} junctions; {flagged} with a finding",
            docs.len() / 10
        );
        assert_eq!(flagged, 0, "{name}");
    }
}

/// Findings per detector on real files (not a pass/fail test): `MOAT_PRIVACY_SCAN_DIR=~/.cargo/registry/src
/// cargo test --release -p moat-policy --test privacy_corpus -- --ignored --nocapture`. Prints a sample
/// of each detector's findings so they can be judged by eye.
#[test]
#[ignore = "reads MOAT_PRIVACY_SCAN_DIR"]
fn findings_on_a_directory() {
    let Ok(dir) = std::env::var("MOAT_PRIVACY_SCAN_DIR") else {
        return;
    };
    let scanner = Scanner::new(&[]).unwrap();
    let mut stack = vec![std::path::PathBuf::from(dir)];
    let (mut files, mut bytes, mut flagged) = (0usize, 0usize, 0usize);
    let mut per: BTreeMap<String, Vec<String>> = BTreeMap::new();
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            for e in std::fs::read_dir(&p).into_iter().flatten().flatten() {
                stack.push(e.path());
            }
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&p) else {
            continue;
        };
        files += 1;
        bytes += text.len();
        let found = scanner.scan(&text);
        flagged += usize::from(!found.is_empty());
        for f in found {
            let sample = text[f.range()].chars().take(80).collect::<String>();
            per.entry(f.detector.to_string())
                .or_default()
                .push(format!("{}: {sample:?}", p.display()));
        }
    }
    println!(
        "{files} files, {:.1} MB, {flagged} with a finding",
        bytes as f64 / 1e6
    );
    for (id, list) in &per {
        println!(
            "{id}: {} ({:.2} per MB)",
            list.len(),
            list.len() as f64 / (bytes as f64 / 1e6)
        );
        // MOAT_PRIVACY_SHOW=phone prints every finding of that detector.
        let all = std::env::var("MOAT_PRIVACY_SHOW").is_ok_and(|d| d == *id);
        let step = if all { 1 } else { (list.len() / 15).max(1) };
        for s in list.iter().step_by(step).take(if all { usize::MAX } else { 15 }) {
            println!("    {s}");
        }
    }
}
