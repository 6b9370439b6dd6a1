use moat_policy::privacy::corpus::{planted_docs, typical_text};
use regex_automata::{meta::Regex, Input};
use std::time::Instant;
const PATS: &[(&str, &str)] = &[
    (
        "private_key",
        r"-----BEGIN[ A-Z0-9]{0,40} PRIVATE KEY(?: BLOCK)?-----(?:[A-Za-z0-9+/=\s:,.\\\-]*?-----END[ A-Z0-9]{0,40} PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s:,.\\]*)",
    ),
    ("anthropic_key", r"\bsk-ant-[A-Za-z0-9_\-]{20,}"),
    ("openrouter_key", r"\bsk-or-[A-Za-z0-9_\-]{20,}"),
    ("openai_key", r"\bsk-[A-Za-z0-9_\-]{20,}"),
    ("stripe_key", r"\b[rs]k_live_[A-Za-z0-9]{20,}"),
    ("github_token", r"\bgh[pousr]_[A-Za-z0-9]{36,}"),
    ("github_token", r"\bgithub_pat_[A-Za-z0-9_]{40,}"),
    ("slack_token", r"\bxox[abposr]-[A-Za-z0-9\-]{10,}"),
    ("google_api_key", r"\bAIza[A-Za-z0-9_\-]{35}"),
    (
        "aws_access_key_id",
        r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA)[A-Z2-7]{16}\b",
    ),
    (
        "jwt",
        r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*",
    ),
    (
        "aws_secret_key",
        r#"(?i:aws[A-Za-z0-9_.\-]{0,20}secret|secret_?access)[A-Za-z0-9_.\-]{0,20}["']?[ \t]{0,4}(?::=|=>|=|:)[ \t]{0,4}["']?([A-Za-z0-9/+]{40})"#,
    ),
    (
        "password_assignment",
        r#"(?i:password|passwd|passphrase|pwd|secret|token|api[_\-]?key|access[_\-]?key|auth[_\-]?key|private[_\-]?key|credentials?)[A-Za-z0-9_\-]{0,30}["']?[ \t]{0,4}(?::=|=>|=|:)[ \t]{0,4}["'`]?([A-Za-z0-9!#$%&()*+\-./:<=>?@\[\]^_{|}~\\]{8,})"#,
    ),
    (
        "password_assignment",
        r"\b[A-Za-z][A-Za-z0-9+.\-]{1,20}://[A-Za-z0-9._~%\-]{1,64}:([A-Za-z0-9._~%!$&*+=\-]{3,128})@",
    ),
    (
        "password_assignment",
        r"\b(?i:bearer)[ \t]+([A-Za-z0-9\-._~+/]{16,}=*)",
    ),
    (
        "password_assignment",
        r"\b(?i:basic)[ \t]+([A-Za-z0-9+/]{8,}={0,2})",
    ),
    ("iban", r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]){11,32}\b"),
    (
        "email",
        r"[A-Za-z0-9._%+\-]{1,64}@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,24}\b",
    ),
    ("payment_card", r"\b[0-9](?:[ \-]?[0-9]){12,18}\b"),
    ("us_ssn", r"\b[0-9]{3}(?:-[0-9]{2}-| [0-9]{2} )[0-9]{4}\b"),
    ("phone", r"\+[1-9][0-9 .\-()]{6,24}[0-9]\b"),
    (
        "phone",
        r"(?:\b1[ .\-])?(?:\b[2-9][0-9]{2}[ .\-]|\([2-9][0-9]{2}\) ?)[2-9][0-9]{2}[ .\-][0-9]{4}\b",
    ),
    ("phone", r"\b0[1-9][0-9]{0,3}[ \-][0-9]{3,4}[ \-]?[0-9]{3,4}\b"),
    (
        "phone",
        r"\b0[1-9](?: [0-9]{2}){4}\b|\b0[1-9](?:\.[0-9]{2}){4}\b|\b0[1-9](?:-[0-9]{2}){4}\b",
    ),
];
fn rate(re: &Regex, text: &str) -> f64 {
    let t = Instant::now();
    let mut n = 0;
    for _ in 0..3 {
        let mut pos = 0;
        while let Some(m) = re.search(&Input::new(text).range(pos..)) {
            n += 1;
            pos = m.start() + 1;
        }
    }
    std::hint::black_box(n);
    3.0 * text.len() as f64 / t.elapsed().as_secs_f64() / 1e6
}
fn build(ps: &[&str], cap: usize, pre: bool) -> Regex {
    let ps: Vec<String> = ps.iter().map(|p| format!("(?-u){p}")).collect();
    Regex::builder()
        .configure(
            Regex::config()
                .hybrid_cache_capacity(cap)
                .auto_prefilter(pre)
                .which_captures(regex_automata::nfa::thompson::WhichCaptures::Implicit),
        )
        .build_many(&ps)
        .unwrap()
}
fn main() {
    let typical = typical_text(1, 4 << 20);
    let dense: String = planted_docs(4, 2000)
        .into_iter()
        .map(|d| d.text)
        .collect::<Vec<_>>()
        .join("\n");
    let cap: usize = std::env::var("CAP")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2 << 20);
    let secrets: Vec<&str> = PATS.iter().take(16).map(|p| p.1).collect();
    let digit = r"\b[0-9](?:[ .\-]?[0-9]|\) ?[0-9]){8}";
    let iban = r"\b[A-Z]{2}[0-9]{2} ?[A-Z0-9]{4}";
    let email = r"[A-Za-z0-9_%+\-]@[A-Za-z0-9]";
    let sets: Vec<(&str, Vec<&str>)> = vec![
        ("digit", vec![digit]),
        ("iban", vec![iban]),
        ("email", vec![email]),
        ("secrets", secrets.clone()),
        (
            "secrets-no-assign",
            secrets
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != 12)
                .map(|(_, p)| *p)
                .collect(),
        ),
        ("triggers", {
            let mut v = secrets.clone();
            v.extend([digit, iban, email]);
            v
        }),
        ("triggers-no-assign", {
            let mut v: Vec<&str> = secrets
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != 12)
                .map(|(_, p)| *p)
                .collect();
            v.extend([digit, iban, email]);
            v
        }),
    ];
    for (name, ps) in &sets {
        for pre in [true, false] {
            let re = build(ps, cap, pre);
            println!(
                "{name:<20} pre={pre:<5}: typical {:>6.0} dense {:>6.1}",
                rate(&re, &typical),
                rate(&re, &dense)
            );
        }
        let t = Instant::now();
        let ps2: Vec<String> = ps.iter().map(|p| format!("(?-u){p}")).collect();
        match regex_automata::dfa::regex::Regex::builder()
            .dense(regex_automata::dfa::dense::Config::new().minimize(false))
            .build_many(&ps2)
        {
            Ok(d) => {
                let built = t.elapsed();
                let t2 = Instant::now();
                let mut n = 0;
                for _ in 0..3 {
                    let mut pos = 0;
                    while let Ok(Some(m)) = d.try_search(&Input::new(&typical).range(pos..)) {
                        n += 1;
                        pos = m.start() + 1;
                    }
                }
                std::hint::black_box(n);
                let r = 3.0 * typical.len() as f64 / t2.elapsed().as_secs_f64() / 1e6;
                println!(
                    "{name:<20} dense-DFA: build {:?} mem {} KB typical {:.0}",
                    built,
                    (d.forward().memory_usage() + d.reverse().memory_usage()) / 1024,
                    r
                );
            }
            Err(e) => println!("{name} dense DFA error {e}"),
        }
    }
}
