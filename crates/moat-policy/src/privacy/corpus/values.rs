//! Generators of valid sensitive values in their real formats: API keys, tokens, private keys,
//! passwords, emails, phone numbers, payment cards, IBANs, SSNs.

use super::Rng;
use crate::privacy::Category;

pub(super) const LOWER: &[u8] = b"abcdefghijklmnopqrstuvwxyz";
pub(super) const DIGITS: &[u8] = b"0123456789";
pub(super) const HEX: &[u8] = b"0123456789abcdef";
pub(super) const BASE62: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
pub(super) const BASE64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
pub(super) const BASE64URL: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const BASE32: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/// Characters people put in passwords that survive unquoted in `.env` and YAML.
const PASSWORD: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!$%&*+-./:=?@^_~";

/// A generated value and the detector expected to report it.
#[derive(Debug, Clone)]
pub(super) struct Value {
    pub text: String,
    pub detector: &'static str,
    pub category: Category,
    /// Variable name it usually lives under (for secret contexts).
    pub env_name: &'static str,
    /// Whether the detector needs that name next to it (the value alone is not recognisable).
    pub needs_name: bool,
    pub expected: bool,
}

/// Every secret detector the generator plants.
pub(super) const SECRET_KINDS: &[&str] = &[
    "openai_key",
    "anthropic_key",
    "openrouter_key",
    "aws_access_key_id",
    "aws_secret_key",
    "github_token",
    "slack_token",
    "google_api_key",
    "stripe_key",
    "jwt",
    "private_key",
    "password_assignment",
];

fn b64url_json(json: &str) -> String {
    const A: &[u8] = BASE64URL;
    let b = json.as_bytes();
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &x)| acc | (u32::from(x) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

/// A secret of `kind` (one of [`SECRET_KINDS`]).
pub(super) fn secret(rng: &mut Rng, kind: &str) -> Value {
    let (text, env_name, needs_name) = match kind {
        "openai_key" => {
            let t = if rng.chance(50) {
                format!("sk-{}T3BlbkFJ{}", rng.string(BASE62, 20), rng.string(BASE62, 20))
            } else {
                format!("sk-proj-{}", {
                    let n = rng.range(120, 160);
                    rng.string(BASE64URL, n)
                })
            };
            (t, "OPENAI_API_KEY", false)
        }
        "anthropic_key" => (
            format!("sk-ant-api03-{}AA", rng.string(BASE64URL, 93)),
            "ANTHROPIC_API_KEY",
            false,
        ),
        "openrouter_key" => (
            format!("sk-or-v1-{}", rng.string(HEX, 64)),
            "OPENROUTER_API_KEY",
            false,
        ),
        "aws_access_key_id" => {
            let p = *rng.pick(&["AKIA", "ASIA"]);
            (
                format!("{p}{}", rng.string(BASE32, 16)),
                "AWS_ACCESS_KEY_ID",
                false,
            )
        }
        "aws_secret_key" => (rng.string(BASE64, 40), "AWS_SECRET_ACCESS_KEY", true),
        "github_token" => {
            let t = if rng.chance(60) {
                format!(
                    "{}_{}",
                    rng.pick(&["ghp", "gho", "ghu", "ghs", "ghr"]),
                    rng.string(BASE62, 36)
                )
            } else {
                format!("github_pat_{}_{}", rng.string(BASE62, 22), rng.string(BASE62, 59))
            };
            (t, "GITHUB_TOKEN", false)
        }
        "slack_token" => {
            let t = format!(
                "xox{}-{}-{}-{}",
                rng.pick(&["b", "p", "a"]),
                rng.string(DIGITS, 12),
                rng.string(DIGITS, 13),
                rng.string(BASE62, 24)
            );
            (t, "SLACK_BOT_TOKEN", false)
        }
        "google_api_key" => (
            format!("AIza{}", rng.string(BASE64URL, 35)),
            "GOOGLE_API_KEY",
            false,
        ),
        "stripe_key" => {
            let t = format!("{}_live_{}", rng.pick(&["sk", "rk"]), {
                let n = rng.range(24, 99);
                rng.string(BASE62, n)
            });
            (t, "STRIPE_SECRET_KEY", false)
        }
        "jwt" => (jwt(rng), "AUTH_TOKEN", false),
        "private_key" => (pem(rng), "PRIVATE_KEY", false),
        _ => (
            {
                // Never a leading `=`: after `KEY=` it reads as `==` (people quote such values).
                let first: Vec<u8> = PASSWORD.iter().copied().filter(|&b| b != b'=').collect();
                let n = rng.range(11, 27);
                format!("{}{}", rng.string(&first, 1), rng.string(PASSWORD, n))
            },
            *rng.pick(&[
                "DB_PASSWORD",
                "ADMIN_PASSWORD",
                "SMTP_PASSWORD",
                "REDIS_PASSWORD",
                "API_SECRET",
            ]),
            true,
        ),
    };
    let detector = SECRET_KINDS
        .iter()
        .copied()
        .find(|k| *k == kind)
        .unwrap_or("password_assignment");
    Value {
        text,
        detector,
        category: Category::Secret,
        env_name,
        needs_name,
        expected: true,
    }
}

fn jwt(rng: &mut Rng) -> String {
    let alg = *rng.pick(&["HS256", "RS256", "ES256"]);
    let header = if rng.chance(50) {
        format!("{{\"alg\":\"{alg}\",\"typ\":\"JWT\"}}")
    } else {
        format!(
            "{{\"typ\":\"JWT\",\"alg\":\"{alg}\",\"kid\":\"{}\"}}",
            rng.string(HEX, 16)
        )
    };
    let payload = format!(
        "{{\"sub\":\"{}\",\"name\":\"{}\",\"iat\":{},\"exp\":{}}}",
        rng.string(DIGITS, 10),
        rng.pick(&["Jane Doe", "Ola Nordmann", "Wei Zhang"]),
        1_700_000_000 + rng.below(50_000_000),
        1_760_000_000 + rng.below(50_000_000)
    );
    let sig = rng.string(BASE64URL, if alg == "HS256" { 43 } else { 86 });
    format!("{}.{}.{sig}", b64url_json(&header), b64url_json(&payload))
}

fn pem(rng: &mut Rng) -> String {
    let kind = *rng.pick(&["RSA ", "EC ", "OPENSSH ", "", "ENCRYPTED ", "DSA "]);
    let mut s = format!("-----BEGIN {kind}PRIVATE KEY-----\n");
    for _ in 0..rng.range(3, 25) {
        s.push_str(&rng.string(BASE64, 64));
        s.push('\n');
    }
    s.push_str(&{
        let n = rng.range(4, 60);
        rng.string(BASE64, n)
    });
    s.push_str(&format!("==\n-----END {kind}PRIVATE KEY-----"));
    s
}

fn personal(text: String, detector: &'static str, expected: bool) -> Value {
    Value {
        text,
        detector,
        category: Category::Personal,
        env_name: "",
        needs_name: false,
        expected,
    }
}

pub(super) fn email(rng: &mut Rng) -> Value {
    let first = *rng.pick(&[
        "jane", "john", "maria", "wei", "olu", "anna", "r", "k", "dev", "mohammed", "sofia",
    ]);
    let last = *rng.pick(&[
        "doe", "smith", "rossi", "zhang", "okafor", "nordmann", "garcia", "kowalski",
    ]);
    let local = match rng.below(5) {
        0 => format!("{first}.{last}"),
        1 => format!("{first}{last}{}", rng.range(1, 99)),
        2 => format!("{first}_{last}"),
        3 => format!("{first}.{last}+{}", rng.pick(&["billing", "news", "x"])),
        _ => format!("{}{last}", &first[..1]),
    };
    let domain = *rng.pick(&[
        "gmail.com",
        "outlook.com",
        "acme-corp.com",
        "mail.example.co.uk",
        "uni-heidelberg.de",
        "proton.me",
        "company.io",
        "yahoo.fr",
        "startup.ai",
    ]);
    personal(format!("{local}@{domain}"), "email", true)
}

pub(super) fn phone(rng: &mut Rng) -> Value {
    let d = |rng: &mut Rng, n| rng.string(DIGITS, n);
    let area = format!("{}{}", rng.range(2, 9), d(rng, 2));
    let exch = format!("{}{}", rng.range(2, 9), d(rng, 2));
    let line = d(rng, 4);
    let (text, expected) = match rng.below(13) {
        0 => (format!("+1{area}{exch}{line}"), true),
        1 => (format!("+1 {area} {exch} {line}"), true),
        2 => (format!("+44 20 {} {}", d(rng, 4), d(rng, 4)), true),
        3 => (format!("+49 30 {}", d(rng, 8)), true),
        4 => (
            format!("+33 6 {} {} {} {}", d(rng, 2), d(rng, 2), d(rng, 2), d(rng, 2)),
            true,
        ),
        5 => (format!("({area}) {exch}-{line}"), true),
        6 => (format!("{area}-{exch}-{line}"), true),
        7 => (format!("{area}.{exch}.{line}"), true),
        8 => (format!("1-{area}-{exch}-{line}"), true),
        9 => (format!("020 {} {}", d(rng, 4), d(rng, 4)), true),
        10 => (format!("030 {}", d(rng, 8)), true),
        11 => (
            format!("06 {} {} {} {}", d(rng, 2), d(rng, 2), d(rng, 2), d(rng, 2)),
            true,
        ),
        // A bare national number: indistinguishable from an order id, deliberately not matched.
        _ => (format!("{area}{exch}{line}"), false),
    };
    personal(text, "phone", expected)
}

fn luhn_complete(prefix: &str, len: usize, rng: &mut Rng) -> String {
    let mut s = prefix.to_string();
    while s.len() < len - 1 {
        s.push(char::from(*rng.pick(DIGITS)));
    }
    // Choose the check digit that makes the Luhn sum 0.
    let sum: u32 = s
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    s.push(char::from(b'0' + ((10 - sum % 10) % 10) as u8));
    s
}

pub(super) fn card(rng: &mut Rng) -> Value {
    let (prefix, len) = match rng.below(8) {
        0 | 1 => ("4".to_string(), 16),
        2 => (format!("5{}", rng.range(1, 5)), 16),
        3 => (format!("{}", rng.range(2221, 2720)), 16),
        4 => (rng.pick(&["34", "37"]).to_string(), 15),
        5 => ("6011".to_string(), 16),
        6 => (format!("35{}", rng.range(28, 89)), 16),
        _ => ("62".to_string(), rng.range(16, 19)),
    };
    let n = luhn_complete(&prefix, len, rng);
    let text = match (rng.below(3), len) {
        (0, _) => n,
        (_, 15) => format!("{} {} {}", &n[..4], &n[4..10], &n[10..]),
        (k, _) => {
            let sep = if k == 1 { " " } else { "-" };
            n.as_bytes()
                .chunks(4)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join(sep)
        }
    };
    personal(text, "payment_card", true)
}

fn mod97(s: &str) -> u32 {
    s.bytes().fold(0u32, |rem, ch| {
        let v = if ch.is_ascii_digit() {
            u32::from(ch - b'0')
        } else {
            u32::from(ch - b'A') + 10
        };
        if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        }
    })
}

pub(super) fn iban(rng: &mut Rng) -> Value {
    const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let (cc, bban) = match rng.below(7) {
        0 => ("DE", rng.string(DIGITS, 18)),
        1 => (
            "GB",
            format!("{}{}", rng.string(UPPER, 4), rng.string(DIGITS, 14)),
        ),
        2 => ("FR", rng.string(DIGITS, 23)),
        3 => (
            "NL",
            format!("{}{}", rng.string(UPPER, 4), rng.string(DIGITS, 10)),
        ),
        4 => ("ES", rng.string(DIGITS, 20)),
        5 => (
            "IT",
            format!("{}{}", rng.string(UPPER, 1), rng.string(DIGITS, 22)),
        ),
        _ => ("CH", rng.string(DIGITS, 17)),
    };
    let check = 98 - mod97(&format!("{bban}{cc}00"));
    let plain = format!("{cc}{check:02}{bban}");
    let text = if rng.chance(50) {
        plain
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    } else {
        plain
    };
    personal(text, "iban", true)
}

pub(super) fn ssn(rng: &mut Rng) -> Value {
    let mut area = rng.range(1, 899);
    if area == 666 {
        area = 667;
    }
    let (g, s) = (rng.range(1, 99), rng.range(1, 9999));
    let (text, expected) = match rng.below(10) {
        0 => (format!("{area:03}{g:02}{s:04}"), false),
        1 => (format!("{area:03} {g:02} {s:04}"), true),
        _ => (format!("{area:03}-{g:02}-{s:04}"), true),
    };
    personal(text, "us_ssn", expected)
}

pub(super) fn lower(rng: &mut Rng, n: usize) -> String {
    rng.string(LOWER, n)
}
