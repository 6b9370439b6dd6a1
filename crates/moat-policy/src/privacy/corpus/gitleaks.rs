//! A recall corpus from gitleaks' default rules, for the formats moat's detectors cover: each rule's
//! documented format (its pattern, written out as a generator), its published true-positive shapes,
//! and gitleaks' own sample contexts (INI, JSON, escaped JSON, XML, YAML block scalars, C#, Go,
//! Java, Kotlin, PHP, Python, CSV, Logstash, Makefile assignments). moat must find everything here:
//! gitleaks would. Values are generated, never copied.

use super::values::{BASE62, DIGITS, HEX};
use super::{Doc, DocBuilder, Rng};
use crate::privacy::Category;

const UPPER_DIGITS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const WORD: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_";
const URLSAFE: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
const LOWER_DIGITS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// gitleaks' sample contexts (`GenerateSampleSecrets`): `{i}` is an identifier, `{s}` the secret.
const CONTEXTS: &[&str] = &[
    "{i}Token=\"{s}\"",
    "{i}Token = \"{s}\"",
    "{i}Token={s}",
    "{i}Token = {s}",
    "{\n    \"{i}_token\": \"{s}\"\n}",
    "\\{\n    \\\"{i}_token\\\": \\\"{s}\\\"\n\\}",
    "<{i}Token>{s}</{i}Token>",
    "<{i}Token>\n    {s}\n</{i}Token>",
    "{i}_token: {s}",
    "{i}_token: '{s}'",
    "{i}_token: \"{s}\"",
    "{i}_token: |\n  {s}",
    "{i}_token: >\n  {s}",
    "string {i}Token = \"{s}\";",
    "var {i}Token string = \"{s}\"",
    "{i}Token := \"{s}\"",
    "{i}Token := `{s}`",
    "String {i}Token = \"{s}\";",
    "var {i}Token = \"{s}\"",
    "${i}Token .= \"{s}\"",
    "{i}Token = '{s}'",
    "{i}Token = \"{s}\"",
    "{i}Token,{s},",
    "  \"{i}Token\" => \"{s}\"",
    "{i}_TOKEN = \"{s}\"",
    "{i}_TOKEN := \"{s}\"",
    "{i}_TOKEN ::= \"{s}\"",
    "{i}_TOKEN :::= \"{s}\"",
    "{i}_TOKEN ?= \"{s}\"",
    "{i}_TOKEN += \"{s}\"",
];

/// One gitleaks rule's format: the moat detector that covers it, and a generator.
struct Format {
    /// gitleaks' rule id, for the report.
    rule: &'static str,
    detector: &'static str,
    make: fn(&mut Rng) -> String,
}

fn s(rng: &mut Rng, alphabet: &[u8], n: usize) -> String {
    rng.string(alphabet, n)
}

/// A value for the generic rule: gitleaks' own published shapes, a random 20–40 character
/// alphanumeric password with a digit, and passwords starting with `$`.
fn generic(rng: &mut Rng) -> String {
    match rng.below(5) {
        0 => format!("CLOJARS_{}", s(rng, HEX, 60)),
        1 => loop {
            let n = rng.range(20, 40);
            let v = s(rng, BASE62, n);
            if v.bytes().any(|b| b.is_ascii_digit()) {
                break v;
            }
        },
        2 => loop {
            let v = format!("${}", s(rng, BASE62, 15));
            if v.bytes().any(|b| b.is_ascii_digit()) {
                break v;
            }
        },
        3 => format!(
            "{}-{}-{}-{}-{}",
            s(rng, HEX, 8),
            s(rng, HEX, 4),
            s(rng, HEX, 4),
            s(rng, HEX, 4),
            s(rng, HEX, 12)
        ),
        _ => s(
            rng,
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=",
            30,
        ),
    }
}

const FORMATS: &[Format] = &[
    Format {
        rule: "aws-access-token",
        detector: "aws_access_key_id",
        make: |r| {
            let p = *r.pick(&["AKIA", "ASIA", "ABIA", "ACCA"]);
            // Keys with 0, 1, 8 or 9, which AWS's own base32 ids never hold but the rule matches.
            loop {
                let v = format!("{p}{}", r.string(UPPER_DIGITS, 16));
                if v[4..].bytes().any(|b| b"0189".contains(&b)) || r.chance(30) {
                    break v;
                }
            }
        },
    },
    Format {
        rule: "aws-access-token (A3T)",
        detector: "aws_access_key_id",
        make: |r| format!("A3T{}{}", r.string(UPPER_DIGITS, 1), r.string(UPPER_DIGITS, 16)),
    },
    Format {
        rule: "github-pat",
        detector: "github_token",
        make: |r| format!("ghp_{}", r.string(BASE62, 36)),
    },
    Format {
        rule: "github-oauth",
        detector: "github_token",
        make: |r| format!("gho_{}", r.string(BASE62, 36)),
    },
    Format {
        rule: "github-app-token",
        detector: "github_token",
        make: |r| format!("{}_{}", r.pick(&["ghu", "ghs"]), r.string(BASE62, 36)),
    },
    Format {
        rule: "github-refresh-token",
        detector: "github_token",
        make: |r| format!("ghr_{}", r.string(BASE62, 36)),
    },
    Format {
        rule: "github-fine-grained-pat",
        detector: "github_token",
        make: |r| format!("github_pat_{}", r.string(WORD, 82)),
    },
    Format {
        rule: "openai-api-key",
        detector: "openai_key",
        make: |r| {
            let p = *r.pick(&["proj", "svcacct", "admin"]);
            let n = *r.pick(&[58usize, 74]);
            format!("sk-{p}-{}T3BlbkFJ{}", r.string(URLSAFE, n), r.string(URLSAFE, n))
        },
    },
    Format {
        rule: "openai-api-key (legacy)",
        detector: "openai_key",
        make: |r| format!("sk-{}T3BlbkFJ{}", r.string(BASE62, 20), r.string(BASE62, 20)),
    },
    Format {
        rule: "anthropic-api-key",
        detector: "anthropic_key",
        make: |r| format!("sk-ant-api03-{}AA", r.string(URLSAFE, 93)),
    },
    Format {
        rule: "anthropic-admin-api-key",
        detector: "anthropic_key",
        make: |r| format!("sk-ant-admin01-{}AA", r.string(URLSAFE, 93)),
    },
    Format {
        rule: "stripe-access-token",
        detector: "stripe_key",
        make: |r| {
            let n = r.range(10, 99);
            format!(
                "{}_{}_{}",
                r.pick(&["sk", "rk"]),
                r.pick(&["test", "live", "prod"]),
                r.string(BASE62, n)
            )
        },
    },
    Format {
        rule: "slack-bot-token",
        detector: "slack_token",
        make: |r| {
            let (a, b) = (r.range(10, 13), r.range(10, 13));
            format!(
                "xoxb-{}-{}-{}",
                r.string(DIGITS, a),
                r.string(DIGITS, b),
                r.string(BASE62, 24)
            )
        },
    },
    Format {
        rule: "slack-user-token",
        detector: "slack_token",
        make: |r| {
            let p = *r.pick(&["xoxp", "xoxe"]);
            format!(
                "{p}-{}-{}-{}-{}",
                r.string(DIGITS, 12),
                r.string(DIGITS, 13),
                r.string(DIGITS, 13),
                r.string(LOWER_DIGITS, 32)
            )
        },
    },
    Format {
        rule: "slack-app-token",
        detector: "slack_token",
        make: |r| {
            format!(
                "xapp-1-A{}-{}-{}",
                r.string(DIGITS, 10),
                r.string(DIGITS, 13),
                r.string(LOWER_DIGITS, 64)
            )
        },
    },
    Format {
        rule: "slack-config-access-token",
        detector: "slack_token",
        make: |r| {
            let n = r.range(163, 166);
            format!("xoxe.xox{}-1-{}", r.pick(&["b", "p"]), r.string(BASE62, n))
        },
    },
    Format {
        rule: "slack-config-refresh-token",
        detector: "slack_token",
        make: |r| format!("xoxe-1-{}", r.string(BASE62, 146)),
    },
    Format {
        rule: "slack-legacy-bot-token",
        detector: "slack_token",
        make: |r| {
            let n = r.range(8, 14);
            let m = r.range(18, 26);
            format!("xoxb-{}-{}", r.string(DIGITS, n), r.string(BASE62, m))
        },
    },
    Format {
        rule: "slack-legacy-workspace-token",
        detector: "slack_token",
        make: |r| {
            let p = *r.pick(&["xoxa", "xoxr"]);
            let n = r.range(12, 48);
            if r.chance(50) {
                format!("{p}-{}-{}", r.range(1, 9), r.string(BASE62, n))
            } else {
                format!("{p}-{}", r.string(BASE62, n))
            }
        },
    },
    Format {
        rule: "slack-legacy-token",
        detector: "slack_token",
        make: |r| {
            let p = *r.pick(&["xoxo", "xoxs"]);
            format!(
                "{p}-{}-{}-{}-{}",
                r.string(DIGITS, 10),
                r.string(DIGITS, 10),
                r.string(DIGITS, 10),
                r.string(HEX, 10)
            )
        },
    },
    Format {
        rule: "slack-webhook-url",
        detector: "slack_token",
        make: |r| {
            let kind = *r.pick(&["services", "workflows", "triggers"]);
            let n = r.range(43, 56);
            format!(
                "https://hooks.slack.com/{kind}/{}",
                r.string(
                    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
                    n
                )
            )
        },
    },
    Format {
        rule: "gcp-api-key",
        detector: "google_api_key",
        make: |r| format!("AIza{}", r.string(URLSAFE, 35)),
    },
    Format {
        rule: "generic-api-key",
        detector: "password_assignment",
        make: generic,
    },
];

/// Every format in every gitleaks sample context, `per_format` times, one per document. The
/// generic rule's values sit only where gitleaks looks for them (after a name); key formats also
/// alone in prose.
pub fn gitleaks_docs(seed: u64, per_format: usize) -> Vec<(&'static str, Doc)> {
    let mut rng = Rng::new(seed);
    let mut out = Vec::new();
    for f in FORMATS {
        for i in 0..per_format {
            let value = (f.make)(&mut rng);
            let context = CONTEXTS[i % CONTEXTS.len()];
            let ident = *rng.pick(&["db", "api", "github", "slack", "service", "MyApp", "prod"]);
            let (before, after) = context.split_once("{s}").unwrap_or((context, ""));
            let mut b = DocBuilder::new();
            b.text(&before.replace("{i}", ident));
            b.plant(&super::values::Value {
                text: value,
                detector: f.detector,
                category: Category::Secret,
                env_name: "",
                needs_name: f.detector == "password_assignment",
                expected: true,
            });
            b.text(&after.replace("{i}", ident));
            out.push((f.rule, b.doc));
        }
    }
    out
}
