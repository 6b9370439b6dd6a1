//! Clean text full of near-misses: hashes, git SHAs, UUIDs, versions, dates, IP addresses, base64
//! images, long numbers failing Luhn, code that *fetches* secrets, `.env.example` placeholders,
//! public keys, hex dumps, prose. None of it is sensitive, so every finding on it is a false positive.

use super::code::{
    config_placeholders, generic_code, js_code, neutral_prose, python_code, tricky_assignments,
};
use super::values::{lower, BASE62, BASE64, DIGITS, HEX};
use super::Rng;

const WORDS: &[&str] = &[
    "the",
    "model",
    "request",
    "latency",
    "cache",
    "we",
    "should",
    "consider",
    "a",
    "deployment",
    "of",
    "service",
    "and",
    "then",
    "measure",
    "throughput",
    "under",
    "load",
    "is",
    "it",
    "possible",
    "to",
    "explain",
    "why",
    "this",
    "function",
    "returns",
    "error",
    "when",
    "input",
    "empty",
    "customer",
    "report",
    "quarterly",
    "revenue",
    "grew",
    "team",
    "meeting",
    "notes",
    "summary",
    "design",
    "review",
    "token",
    "budget",
    "secret",
    "password",
    "policy",
    "privacy",
    "key",
    "account",
    "number",
    "phone",
];

const LOREM: &str = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut \
labore et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex \
ea commodo consequat. Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla \
pariatur. Excepteur sint occaecat cupidatat non proident, sunt in culpa qui officia deserunt mollit anim id est \
laborum.";

pub(super) fn prose(rng: &mut Rng) -> String {
    let mut s = String::new();
    for _ in 0..rng.range(3, 7) {
        let n = rng.range(6, 18);
        let words: Vec<&str> = (0..n).map(|_| *rng.pick(WORDS)).collect();
        let mut sentence = words.join(" ");
        if rng.chance(30) {
            sentence.push_str(&format!(" by {}.{}%", rng.range(1, 99), rng.below(10)));
        }
        if rng.chance(20) {
            sentence.push_str(&format!(" in Q{} {}", rng.range(1, 4), rng.range(2015, 2026)));
        }
        if let Some(first) = sentence.get(..1) {
            sentence.replace_range(..1, &first.to_ascii_uppercase());
        }
        s.push_str(&sentence);
        s.push_str(". ");
    }
    s
}

pub(super) fn uuid(rng: &mut Rng) -> String {
    format!(
        "{}-{}-4{}-a{}-{}",
        rng.string(HEX, 8),
        rng.string(HEX, 4),
        rng.string(HEX, 3),
        rng.string(HEX, 3),
        rng.string(HEX, 12)
    )
}

pub(super) fn ip(rng: &mut Rng) -> String {
    format!(
        "{}.{}.{}.{}",
        rng.range(1, 254),
        rng.below(256),
        rng.below(256),
        rng.range(1, 254)
    )
}

pub(super) fn date(rng: &mut Rng) -> String {
    format!(
        "{}-{:02}-{:02}",
        rng.range(2019, 2026),
        rng.range(1, 12),
        rng.range(1, 28)
    )
}

pub(super) fn time(rng: &mut Rng) -> String {
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        rng.below(24),
        rng.below(60),
        rng.below(60),
        rng.below(1000)
    )
}

pub(super) fn version(rng: &mut Rng) -> String {
    format!("{}.{}.{}", rng.below(20), rng.below(40), rng.below(100))
}

/// A 13 to 19 digit number that is not a card: its Luhn check fails.
pub(super) fn non_card_number(rng: &mut Rng) -> String {
    loop {
        let n = {
            let n = rng.range(13, 19);
            rng.string(DIGITS, n)
        };
        let sum: u32 = n
            .bytes()
            .rev()
            .enumerate()
            .map(|(i, b)| {
                let d = u32::from(b - b'0') * if i % 2 == 1 { 2 } else { 1 };
                if d > 9 {
                    d - 9
                } else {
                    d
                }
            })
            .sum();
        if sum % 10 != 0 {
            return n;
        }
    }
}

/// The 13 digits after an IMEI's "35" that make the whole 15 digits pass Luhn (IMEIs use it too).
fn imei_tail(rng: &mut Rng) -> String {
    loop {
        let tail = rng.string(DIGITS, 13);
        let n = format!("35{tail}");
        let sum: u32 = n
            .bytes()
            .rev()
            .enumerate()
            .map(|(i, b)| {
                let d = u32::from(b - b'0') * if i % 2 == 1 { 2 } else { 1 };
                if d > 9 {
                    d - 9
                } else {
                    d
                }
            })
            .sum();
        if sum % 10 == 0 {
            return tail;
        }
    }
}

fn log_lines(rng: &mut Rng) -> String {
    let mut s = String::new();
    for _ in 0..rng.range(4, 12) {
        let line = match rng.below(6) {
            0 => format!(
                "{}T{}Z INFO request_id={} status=200 duration_ms={}\n",
                date(rng),
                time(rng),
                uuid(rng),
                rng.range(1, 900)
            ),
            1 => format!(
                "{} {} GET /api/v1/items/{} HTTP/1.1 200 {}\n",
                ip(rng),
                date(rng),
                rng.range(1, 99999),
                rng.range(100, 99999)
            ),
            2 => format!(
                "[{}] worker {} processed batch {} in {}.{}s\n",
                time(rng),
                rng.below(16),
                rng.range(1000, 999_999),
                rng.below(60),
                rng.range(10, 99)
            ),
            3 => format!(
                "{} WARN retrying upstream {}:{} attempt={}\n",
                date(rng),
                ip(rng),
                rng.range(1024, 65535),
                rng.range(1, 5)
            ),
            4 => format!(
                "trace_id={} span_id={} parent={}\n",
                rng.string(HEX, 32),
                rng.string(HEX, 16),
                rng.string(HEX, 16)
            ),
            _ => format!(
                "ts={} order_id={} amount={}.{:02}\n",
                rng.range(1_600_000_000, 1_800_000_000),
                non_card_number(rng),
                rng.range(1, 9999),
                rng.below(100)
            ),
        };
        s.push_str(&line);
    }
    s
}

fn hashes(rng: &mut Rng) -> String {
    let mut s = String::new();
    for _ in 0..rng.range(2, 6) {
        let line = match rng.below(6) {
            0 => format!("{}  dist/app-{}.tar.gz\n", rng.string(HEX, 64), version(rng)),
            1 => format!(
                "commit {}\nDate:   {} {}\n\n    fix: handle empty input\n",
                rng.string(HEX, 40),
                date(rng),
                time(rng)
            ),
            2 => format!("image: ghcr.io/acme/api@sha256:{}\n", rng.string(HEX, 64)),
            3 => format!("\"integrity\": \"sha512-{}==\"\n", rng.string(BASE64, 86)),
            4 => format!(
                "{} Merge pull request #{} from feature/{}\n",
                rng.string(HEX, 7),
                rng.range(1, 9999),
                lower(rng, 8)
            ),
            _ => format!("md5: {}  uuid: {}\n", rng.string(HEX, 32), uuid(rng)),
        };
        s.push_str(&line);
    }
    s
}

fn versions(rng: &mut Rng) -> String {
    let mut s = String::new();
    for _ in 0..rng.range(3, 8) {
        let line = match rng.below(5) {
            0 => format!("numpy=={}\n", version(rng)),
            1 => format!("\"{}\": \"^{}\",\n", lower(rng, 6), version(rng)),
            2 => format!(
                "npm install {}@{} @types/node@{}\n",
                lower(rng, 5),
                version(rng),
                version(rng)
            ),
            3 => format!("{} = \"{}\"\n", lower(rng, 7), version(rng)),
            _ => format!(
                "Python {} on linux, build {}.{}.{}.{}\n",
                version(rng),
                rng.range(1, 20),
                rng.range(100, 999),
                rng.range(100, 999),
                rng.range(1000, 9999)
            ),
        };
        s.push_str(&line);
    }
    s
}

fn numbers_table(rng: &mut Rng) -> String {
    let mut s = String::from("| date | region | units | revenue | ref |\n|---|---|---|---|---|\n");
    for _ in 0..rng.range(3, 10) {
        s.push_str(&format!(
            "| {} | {} | {} | {}.{:02} | {} |\n",
            date(rng),
            rng.pick(&["EMEA", "APAC", "NA", "LATAM"]),
            rng.range(1, 100_000),
            rng.range(1, 9_999_999),
            rng.below(100),
            non_card_number(rng)
        ));
    }
    s
}

fn base64_image(rng: &mut Rng) -> String {
    format!("![chart](data:image/png;base64,iVBORw0KGgo{}=)\n", {
        let n = rng.range(800, 4000);
        rng.string(BASE64, n)
    })
}

fn markdown_misc(rng: &mut Rng) -> String {
    let items = [
        "Clone with `git clone git@github.com:acme/api.git` and run `make`.\n".to_string(),
        "Icons live in `assets/logo@2x.png` and `assets/logo@3x.png`.\n".to_string(),
        "Decorate the handler with `@app.route(\"/login\")` and `@login_required`.\n".to_string(),
        format!(
            "See RFC {} and ISBN 978-3-16-{}-0 for details.\n",
            rng.range(1000, 9999),
            rng.range(100000, 999999)
        ),
        format!(
            "Mirror at http://{}:{}/repo and [::1]:{} or 2001:db8::{}.\n",
            ip(rng),
            rng.range(1024, 65535),
            rng.range(1024, 65535),
            rng.string(HEX, 4)
        ),
        format!(
            "The meeting is on {} at {:02}:{:02}; dial-in code {}.\n",
            date(rng),
            rng.below(24),
            rng.below(60),
            rng.range(100_000, 999_999)
        ),
        format!(
            "Invalid test SSNs such as 000-{:02}-{:04} or 9{:02}-{:02}-{:04} are rejected.\n",
            rng.range(10, 99),
            rng.range(1000, 9999),
            rng.range(0, 99),
            rng.range(10, 99),
            rng.range(1000, 9999)
        ),
        format!(
            "Pi is about 3.14159 and e about 2.71828; build {}.\n",
            version(rng)
        ),
        format!(
            "Object ids look like cus_{} and pi_{}.\n",
            rng.string(BASE62, 14),
            rng.string(BASE62, 24)
        ),
        format!(
            "Price: EUR 1.{:03}.{:03},{:02} (VAT {}%)\n",
            rng.below(1000),
            rng.below(1000),
            rng.below(100),
            rng.range(5, 25)
        ),
        "Use scikit-learn (sk-learn) with `sk-learn-pipeline-config-v2` presets.\n".to_string(),
        format!(
            "Location: +{}.{} {}.{} (lat, long)\n",
            rng.range(10, 80),
            rng.string(DIGITS, 6),
            rng.range(1, 170),
            rng.string(DIGITS, 6)
        ),
        format!(
            "IMEI 35{} / serial {}-{}\n",
            imei_tail(rng),
            rng.string(HEX, 8).to_ascii_uppercase(),
            rng.range(1000, 9999)
        ),
        format!(
            "Zip 94105-{:04}, suite {}, floor {}.\n",
            rng.below(10000),
            rng.range(100, 999),
            rng.range(1, 40)
        ),
    ];
    let mut s = String::new();
    for _ in 0..rng.range(2, 5) {
        s.push_str(&items[rng.below(items.len())]);
    }
    s
}

fn public_key(rng: &mut Rng) -> String {
    let kind = *rng.pick(&["PUBLIC KEY", "CERTIFICATE", "RSA PUBLIC KEY"]);
    let mut s = format!("-----BEGIN {kind}-----\n");
    for _ in 0..rng.range(3, 12) {
        s.push_str(&rng.string(BASE64, 64));
        s.push('\n');
    }
    s.push_str(&format!("-----END {kind}-----\n"));
    s
}

fn hex_dump(rng: &mut Rng) -> String {
    let mut s = String::new();
    for row in 0..rng.range(3, 10) {
        let groups: Vec<String> = (0..8).map(|_| rng.string(HEX, 4)).collect();
        s.push_str(&format!(
            "{:08x}: {}  ................\n",
            row * 16,
            groups.join(" ")
        ));
    }
    s
}

fn stack_trace(rng: &mut Rng) -> String {
    let mut s = String::from("Traceback (most recent call last):\n");
    for _ in 0..rng.range(2, 6) {
        s.push_str(&format!(
            "  File \"/usr/lib/python3.11/site-packages/{}/{}.py\", line {}, in {}\n",
            lower(rng, 6),
            lower(rng, 5),
            rng.range(1, 2000),
            lower(rng, 7)
        ));
    }
    s.push_str("ValueError: invalid literal for int() with base 10: 'abc'\n");
    s
}

fn lorem(rng: &mut Rng) -> String {
    let n = rng.range(1, 3);
    (0..n).map(|_| LOREM).collect::<Vec<_>>().join("\n\n") + "\n"
}

fn non_english(rng: &mut Rng) -> String {
    let texts = [
        "Bitte fassen Sie den Bericht zusammen: Der Umsatz stieg um 12,5 % gegenüber dem Vorjahr.\n",
        "Résumez ce document en trois points ; la réunion a lieu à 14 h 30.\n",
        "この関数がエラーを返す理由を説明してください。バージョン 3.2.1 で発生します。\n",
        "Объясни, почему этот запрос выполняется 2,5 секунды.\n",
        "请解释这个错误：连接超时（30 秒）。\n",
    ];
    rng.pick(&texts).to_string()
}

/// One clean document of `parts` snippets, each of a random kind.
pub fn clean_doc(rng: &mut Rng, parts: usize) -> String {
    let mut s = String::new();
    for _ in 0..parts {
        let snippet = match rng.below(17) {
            0 | 1 => prose(rng),
            16 => tricky_assignments(rng),
            2 => lorem(rng),
            3 => python_code(rng),
            4 => js_code(rng),
            5 => config_placeholders(rng),
            6 => log_lines(rng),
            7 => hashes(rng),
            8 => versions(rng),
            9 => numbers_table(rng),
            10 => base64_image(rng),
            11 => markdown_misc(rng),
            12 => public_key(rng),
            13 => hex_dump(rng),
            14 => stack_trace(rng),
            _ => non_english(rng),
        };
        s.push_str(&snippet);
        s.push('\n');
    }
    s
}

/// `n` clean documents of two to six snippets each.
pub fn clean_docs(seed: u64, n: usize) -> Vec<String> {
    let mut rng = Rng::new(seed);
    (0..n)
        .map(|_| {
            let parts = rng.range(2, 6);
            clean_doc(&mut rng, parts)
        })
        .collect()
}

/// About `bytes` of typical prompt text (for throughput benchmarks): 70% everyday prose and code,
/// 30% the near-miss-rich snippets of the clean corpus (code handling secrets, logs, stack traces,
/// dependency lists), without the base64 blobs and dumps that make scanning easier.
pub fn typical_text(seed: u64, bytes: usize) -> String {
    let mut rng = Rng::new(seed);
    let mut s = String::with_capacity(bytes + 4096);
    while s.len() < bytes {
        if rng.chance(70) {
            let snippet = if rng.chance(55) {
                neutral_prose(&mut rng)
            } else {
                generic_code(&mut rng)
            };
            s.push_str(&snippet);
            s.push('\n');
            continue;
        }
        let snippet = match rng.below(10) {
            0..=3 => prose(&mut rng),
            4 => python_code(&mut rng),
            5 => js_code(&mut rng),
            6 => log_lines(&mut rng),
            7 => stack_trace(&mut rng),
            8 => markdown_misc(&mut rng),
            _ => versions(&mut rng),
        };
        s.push_str(&snippet);
        s.push('\n');
    }
    s
}

/// About `bytes` of adversarial text dense with candidates that (almost all) fail validation:
/// numbers failing Luhn, IBANs with random check digits, invalid SSNs, assignments of placeholders,
/// repeated key prefixes, `@`s and PEM headers. The worst case for the scanner's confirmation step.
pub fn dense_near_misses(seed: u64, bytes: usize) -> String {
    let mut rng = Rng::new(seed);
    let mut s = String::with_capacity(bytes + 256);
    while s.len() < bytes {
        let piece = match rng.below(10) {
            0 => format!("{} ", non_card_number(&mut rng)),
            8 => rng
                .pick(&[
                    "sk-sk-sk-sk-sk-sk-sk-sk-sk-sk-sk-sk ",
                    "a@a@a@a@a@a@a@a@a@a@ ",
                    "password=password=password=password ",
                    "-----BEGIN PRIVATE KEY----------BEGIN RSA PRIVATE KEY----- ",
                    "1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 ",
                    "http://a:b@c://d:e@f://g:h@ ",
                    "Bearer Bearer Bearer Bearer Bearer ",
                ])
                .to_string(),
            9 => format!(
                "{}={} ",
                rng.pick(&["token", "secret", "api_key"]),
                lower(&mut rng, 12)
            ),
            1 => format!(
                "DE{:02} {} {} {} {} {} ",
                rng.below(100),
                rng.string(DIGITS, 4),
                rng.string(DIGITS, 4),
                rng.string(DIGITS, 4),
                rng.string(DIGITS, 4),
                rng.string(DIGITS, 2)
            ),
            2 => format!(
                "9{:02}-{:02}-{:04} ",
                rng.below(100),
                rng.range(1, 99),
                rng.range(1, 9999)
            ),
            3 => "password = changeme; token: ${TOKEN}; secret=<none> ".to_string(),
            4 => format!("sk-{} ", lower(&mut rng, 24)),
            5 => format!("{}@{}.png ", lower(&mut rng, 6), rng.range(1, 3)),
            6 => format!("+{} ", rng.string(DIGITS, 17)),
            _ => format!(
                "eyJ{}.eyJ{}.{} ",
                rng.string(BASE62, 12),
                rng.string(BASE62, 12),
                rng.string(BASE62, 8)
            ),
        };
        s.push_str(&piece);
    }
    s
}
