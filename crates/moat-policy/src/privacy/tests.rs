//! Unit and property tests of the privacy scanner: each detector on its formats and near-misses,
//! custom rules and their errors, and the invariants of findings on random text.

use super::corpus::{self, Rng};
use super::*;
use proptest::prelude::*;

fn scanner() -> Scanner {
    Scanner::new(&[]).unwrap()
}

/// One scanner for all property-test cases (compiling it per case would dominate the run).
fn shared() -> &'static Scanner {
    static SCANNER: std::sync::OnceLock<Scanner> = std::sync::OnceLock::new();
    SCANNER.get_or_init(scanner)
}

/// (detector, matched text) for each finding.
fn found(s: &Scanner, text: &str) -> Vec<(String, String)> {
    s.scan(text)
        .iter()
        .map(|f| (f.detector.to_string(), text[f.range()].to_string()))
        .collect()
}

fn one(s: &Scanner, text: &str) -> (String, String) {
    let f = found(s, text);
    assert_eq!(f.len(), 1, "{text:?}: {f:?}");
    f.into_iter().next().unwrap()
}

#[test]
fn each_detector_finds_its_format() {
    let s = scanner();
    let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
    let pem = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW\nQyNTUxOQAAACDnR2nVfWfJ3Xk9Qm5o7P1L0rX2a8Zt4vW6yHcK3bJdSg==\n-----END OPENSSH PRIVATE KEY-----";
    let cases: &[(&str, &str, &str)] = &[
        (
            "openai_key",
            "use sk-proj-4fT9aQx8LmZ2vR7pK3nW1cY6bH0jE5uD please",
            "sk-proj-4fT9aQx8LmZ2vR7pK3nW1cY6bH0jE5uD",
        ),
        (
            "anthropic_key",
            "sk-ant-api03-Zx9Lm2Qv8Rt5Kp3Nw7Yc1Hb6Jd0Fs4Gu-AAAA",
            "sk-ant-api03-Zx9Lm2Qv8Rt5Kp3Nw7Yc1Hb6Jd0Fs4Gu-AAAA",
        ),
        (
            "openrouter_key",
            "key=sk-or-v1-0f3a9c2e7b1d4f6a0c5e8b2d9f1a3c7e",
            "sk-or-v1-0f3a9c2e7b1d4f6a0c5e8b2d9f1a3c7e",
        ),
        (
            "aws_access_key_id",
            "id AKIAQ3EGRTPRZ5J4KF6D.",
            "AKIAQ3EGRTPRZ5J4KF6D",
        ),
        (
            "aws_secret_key",
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzzKEY1234\n",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzzKEY1234",
        ),
        (
            "github_token",
            "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",
            "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",
        ),
        (
            "slack_token",
            "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
            "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        ),
        (
            "google_api_key",
            "AIzaSyD4fT9aQx8LmZ2vR7pK3nW1cY6bH0jE5uD ok",
            "AIzaSyD4fT9aQx8LmZ2vR7pK3nW1cY6bH0jE5uD",
        ),
        (
            "stripe_key",
            "sk_live_51HqLyjWDarjtT1zdp7dc4fT9aQx8",
            "sk_live_51HqLyjWDarjtT1zdp7dc4fT9aQx8",
        ),
        ("jwt", jwt, jwt),
        ("private_key", pem, pem),
        (
            "password_assignment",
            "password = \"Xk29fLmQ8vTz!\"",
            "Xk29fLmQ8vTz!",
        ),
        (
            "password_assignment",
            "DB_PASSWORD=Xk29fLmQ8vTz\n",
            "Xk29fLmQ8vTz",
        ),
        ("password_assignment", "password = \"a.b.c(x)\"", "a.b.c(x)"),
        (
            "password_assignment",
            "KEY_PASSWORD=&vV&/XX.KT0+G6aP",
            "&vV&/XX.KT0+G6aP",
        ),
        (
            "password_assignment",
            "postgres://app:S3cr3tPw@db:5432/app",
            "S3cr3tPw",
        ),
        (
            "password_assignment",
            "Authorization: Bearer abcDEF123456ghiJKL789",
            "abcDEF123456ghiJKL789",
        ),
        (
            "password_assignment",
            "Authorization: Basic dXNlcjpodW50ZXIy",
            "dXNlcjpodW50ZXIy",
        ),
        (
            "email",
            "mail jane.doe+x@acme-corp.co.uk.",
            "jane.doe+x@acme-corp.co.uk",
        ),
        ("phone", "call +44 20 7946 0958 now", "+44 20 7946 0958"),
        ("phone", "call (415) 555-2671 now", "(415) 555-2671"),
        ("phone", "tel 06 12 34 56 78", "06 12 34 56 78"),
        ("phone", "sms +14155552671.", "+14155552671"),
        (
            "payment_card",
            "card 4111 1111 1111 1111 exp 12/27",
            "4111 1111 1111 1111",
        ),
        ("payment_card", "amex 3782-822463-10005", "3782-822463-10005"),
        (
            "iban",
            "IBAN DE89 3704 0044 0532 0130 00 thanks",
            "DE89 3704 0044 0532 0130 00",
        ),
        ("iban", "GB82WEST12345698765432", "GB82WEST12345698765432"),
        ("us_ssn", "ssn 536-22-1234", "536-22-1234"),
    ];
    for (id, text, want) in cases {
        assert_eq!(one(&s, text), (id.to_string(), want.to_string()), "{text:?}");
    }
}

#[test]
fn near_misses_are_clean() {
    let s = scanner();
    for text in [
        "version 1.2.3 date 2024-01-15 ip 192.168.1.100 sha 3f2a9c1e",
        "commit 3f2a9c1e8d7b6a5f4e3d2c1b0a9f8e7d6c5b4a39 uuid 550e8400-e29b-41d4-a716-446655440000",
        "password = os.environ[\"DB_PASSWORD\"]",
        "api_key = settings.OPENAI_API_KEY",
        "password: ${POSTGRES_PASSWORD}",
        "OPENAI_API_KEY=sk-your-key-here",
        "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE",
        "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "card 4111 1111 1111 1112 (fails Luhn)",
        "IBAN DE89 3704 0044 0532 0130 01 (bad checksum)",
        "ssn 000-12-3456 666-12-3456 912-12-3456",
        "git clone git@github.com:acme/api.git; logo@2x.png; jane@example.com",
        "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEA\n-----END PUBLIC KEY-----",
        "-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----",
        "00000010: 0951 2005 2972 4111 1111 1111 1111 0000  ................",
        "Location: +48.856613 2.352222; tokens_used = 1024; max_tokens: 4096",
        "secret_name = \"prod/billing/db-credentials\"; token_type: Bearer",
        "dates +12345-03-04 and +10000-12-31; ts +1441497364 is not +1 numbering",
        "der: hex!(\"30 0a 03 03 01 00 01 ff\"); clause DFARS 252.227-7013; code points 0300 0315 0062",
    ] {
        assert_eq!(found(&s, text), Vec::<(String, String)>::new(), "{text:?}");
    }
}

#[test]
fn cards_in_tables_of_numbers() {
    let s = scanner();
    // Constants: the neighbours are not cards, so the one that passes Luhn by chance is not either.
    assert!(found(&s, "[4386812962460287, 1234567890123456789, 9876543210987654]").is_empty());
    // A list of cards: every neighbour is a card too.
    let list = "4111111111111111,5555555555554444\n378282246310005";
    assert_eq!(found(&s, list).len(), 3);
}

#[test]
fn assignment_reports_the_known_format_and_only_the_value() {
    let s = scanner();
    let f = one(&s, "OPENAI_API_KEY=sk-proj-4fT9aQx8LmZ2vR7pK3nW1cY6bH0jE5uD");
    assert_eq!(f.0, "openai_key");
    let f = one(
        &s,
        "  \"api_token\": \"ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8\",",
    );
    assert_eq!(
        f,
        (
            "github_token".into(),
            "ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8".into()
        )
    );
    // A value that is not a secret does not hide a card right after it.
    assert_eq!(one(&s, "token=4111111111111111").0, "payment_card");
}

#[test]
fn gitleaks_shapes_are_found() {
    let s = scanner();
    let value = |text: &str| one(&s, text).1;
    // AWS key ids with 0, 1, 8 or 9 (outside AWS's base32) and the `A3T` prefix, as gitleaks flags.
    assert_eq!(value("id AKIA0189ZXCVBNMQWE12 ok"), "AKIA0189ZXCVBNMQWE12");
    assert_eq!(value("id A3TX0189ZXCVBNMQWE12 ok"), "A3TX0189ZXCVBNMQWE12");
    // Passwords that start with `$` (not `$VAR`), and 20 random alphanumerics.
    assert_eq!(value(r#"DB_PASSWORD="$I4N6xzuU7bCx4o2""#), "$I4N6xzuU7bCx4o2");
    assert_eq!(value("DB_PASSWORD=k3J9xQ2mW7pL4vR8tY1z"), "k3J9xQ2mW7pL4vR8tY1z");
    assert!(found(&s, r#"DB_PASSWORD="$DB_PASSWORD""#).is_empty());
    assert!(found(&s, "password: $dbPassword").is_empty());
    // gitleaks' contexts: XML text, YAML block scalars, Go types, Make and PHP operators, CSV,
    // escaped JSON.
    for text in [
        "<dbToken>Zf3D0LXCM3EIMbgJpUNnkRtOfOueHznB</dbToken>",
        "<dbToken>\n    Zf3D0LXCM3EIMbgJpUNnkRtOfOueHznB\n</dbToken>",
        "db_token: |\n  Zf3D0LXCM3EIMbgJpUNnkRtOfOueHznB",
        "var dbToken string = \"Zf3D0LXCM3EIMbgJpUNnkRtOfOueHznB\"",
        "DB_TOKEN ?= \"Zf3D0LXCM3EIMbgJpUNnkRtOfOueHznB\"",
        "DB_TOKEN ::= \"Zf3D0LXCM3EIMbgJpUNnkRtOfOueHznB\"",
        "$dbToken .= \"Zf3D0LXCM3EIMbgJpUNnkRtOfOueHznB\"",
        "dbToken,Zf3D0LXCM3EIMbgJpUNnkRtOfOueHznB,",
        r#"\"db_token\": \"Zf3D0LXCM3EIMbgJpUNnkRtOfOueHznB\""#,
    ] {
        assert_eq!(value(text), "Zf3D0LXCM3EIMbgJpUNnkRtOfOueHznB", "{text:?}");
    }
    // Slack's app tokens and webhook URLs; Stripe's test keys.
    assert_eq!(
        one(
            &s,
            "xapp-1-A0123456789-5171572773297-610b6a11f4b7eb819e87b767d80e6575"
        )
        .0,
        "slack_token"
    );
    assert_eq!(
        one(
            &s,
            "post to https://hooks.slack.com/services/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"
        )
        .0,
        "slack_token"
    );
    assert_eq!(one(&s, "STRIPE=sk_test_4eC39HqLyjWDarjtT1zdp7dc").0, "stripe_key");
}

#[test]
fn custom_rules() {
    let rules = [
        CustomRule {
            id: "codenames".into(),
            regex: None,
            terms: vec!["Bluebird".into(), "Project  Nightjar".into(), "café".into()],
        },
        CustomRule {
            id: "ticket".into(),
            regex: Some(r"\bINC-[0-9]{6}\b".into()),
            terms: vec![],
        },
    ];
    let s = Scanner::new(&rules).unwrap();
    let text = "BLUEBIRD and project\nnightjar, not bluebirds; CAFÉ but not cafés; see INC-123456.";
    assert_eq!(
        found(&s, text),
        [
            ("codenames", "BLUEBIRD"),
            ("codenames", "project\nnightjar"),
            ("codenames", "CAFÉ"),
            ("ticket", "INC-123456")
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert!(s.scan(text).iter().all(|f| f.category == Category::Custom));
    // A Unicode `\b` keeps its meaning (the trigger drops it, the rule itself does not).
    assert_eq!(
        found(&s, "ÉINC-123456 INC-1234567 «INC-654321»"),
        [("ticket".to_string(), "INC-654321".to_string())]
    );
    let ids: Vec<(&str, Category)> = s.detectors().collect();
    assert!(ids.contains(&("codenames", Category::Custom)) && ids.contains(&("ticket", Category::Custom)));
    assert!(ids.contains(&("email", Category::Personal)) && ids.contains(&("jwt", Category::Secret)));
    let mut names: Vec<&str> = ids.iter().map(|(id, _)| *id).collect();
    let n = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), n, "each id once");
    assert_eq!(n, 17 + 2);
}

#[test]
fn bad_rules_are_errors_naming_the_rule() {
    let rule = |id: &str, regex: Option<&str>, terms: &[&str]| CustomRule {
        id: id.into(),
        regex: regex.map(Into::into),
        terms: terms.iter().map(|t| t.to_string()).collect(),
    };
    let err = |r: CustomRule| Scanner::new(&[r]).unwrap_err();
    let e = err(rule("broken", Some("a(b"), &[]));
    assert!(
        matches!(&e, PrivacyError::BadRegex { id, .. } if id == "broken"),
        "{e}"
    );
    assert!(e.to_string().contains("`broken`"));
    assert_eq!(
        err(rule("empty", Some("x*"), &[])),
        PrivacyError::EmptyMatch { id: "empty".into() }
    );
    assert_eq!(
        err(rule("none", None, &[])),
        PrivacyError::EmptyRule { id: "none".into() }
    );
    assert_eq!(
        err(rule("blank", None, &["ok", "  "])),
        PrivacyError::BlankTerm {
            id: "blank".into(),
            index: 1
        }
    );
    assert_eq!(
        err(rule("has space", None, &["x"])),
        PrivacyError::BadId {
            id: "has space".into()
        }
    );
    assert_eq!(
        err(rule("email", None, &["x"])),
        PrivacyError::DuplicateId { id: "email".into() }
    );
    let twice = [rule("a", None, &["x"]), rule("a", None, &["y"])];
    assert_eq!(
        Scanner::new(&twice).unwrap_err(),
        PrivacyError::DuplicateId { id: "a".into() }
    );
}

#[test]
fn detector_ids_are_stable() {
    let s = scanner();
    let ids: Vec<(&str, Category)> = s.detectors().collect();
    let want = [
        ("private_key", Category::Secret),
        ("anthropic_key", Category::Secret),
        ("openrouter_key", Category::Secret),
        ("openai_key", Category::Secret),
        ("stripe_key", Category::Secret),
        ("github_token", Category::Secret),
        ("slack_token", Category::Secret),
        ("google_api_key", Category::Secret),
        ("aws_access_key_id", Category::Secret),
        ("jwt", Category::Secret),
        ("aws_secret_key", Category::Secret),
        ("password_assignment", Category::Secret),
        ("iban", Category::Personal),
        ("email", Category::Personal),
        ("payment_card", Category::Personal),
        ("us_ssn", Category::Personal),
        ("phone", Category::Personal),
    ];
    assert_eq!(ids, want);
}

#[test]
fn scanner_is_shareable() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Scanner>();
    let f = scanner().scan("jane.doe@acme-corp.com").remove(0);
    let id: DetectorId = f.detector.clone();
    assert_eq!(id, "email");
    assert_eq!(&*id, "email");
}

/// Hostile inputs dense with candidates must scan in linear time; a quadratic path would take
/// minutes here even in an optimised build.
#[test]
fn hostile_inputs_stay_linear() {
    let s = scanner();
    let start = std::time::Instant::now();
    for unit in [
        "sk-",
        "password=",
        "a@",
        "-----BEGIN PRIVATE KEY-----",
        "1 ",
        "eyJ",
        "DE89",
        "+1",
        "://a:b@",
        "xoxb-",
        "Bearer ",
        "token: &",
        "4111",
        "AKIA",
    ] {
        let text = unit.repeat(200_000 / unit.len());
        let _ = s.scan(&text);
        let long = format!("{unit}{}", "a".repeat(200_000));
        let _ = s.scan(&long);
    }
    assert!(
        start.elapsed() < std::time::Duration::from_secs(60),
        "{:?}",
        start.elapsed()
    );
}

/// Words, digits, punctuation and non-ASCII text around planted values.
fn filler() -> impl Strategy<Value = String> {
    proptest::collection::vec(
        prop_oneof![
            "[a-zA-Z]{1,10}",
            // Short numbers: a 13+-digit number next to a card marks a table of constants (see
            // `in_number_table`), which is tested on its own below.
            "[0-9]{1,6} ",
            Just(" ".to_string()),
            Just("\n".to_string()),
            "[-.,:;=@+/()\"'_]",
            "[é中ж😀]",
        ],
        0..40,
    )
    .prop_map(|v| v.concat())
}

const PLANTABLE: &[&str] = &[
    "payment_card",
    "iban",
    "email",
    "us_ssn",
    "openai_key",
    "anthropic_key",
    "openrouter_key",
    "github_token",
    "slack_token",
    "google_api_key",
    "stripe_key",
    "jwt",
    "aws_access_key_id",
    "private_key",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn findings_are_sorted_disjoint_and_on_char_boundaries(text in filler(), seed in any::<u64>(), k in 0..PLANTABLE.len()) {
        let s = shared();
        let value = corpus::sample(&mut Rng::new(seed), PLANTABLE[k]).unwrap();
        let text = format!("{text} {value} {text}");
        let findings = s.scan(&text);
        for f in &findings {
            prop_assert!(f.start < f.end && f.end <= text.len());
            prop_assert!(text.is_char_boundary(f.start) && text.is_char_boundary(f.end));
        }
        for w in findings.windows(2) {
            prop_assert!(w[0].end <= w[1].start, "{:?}", w);
        }
        prop_assert_eq!(&findings, &s.scan(&text));
        prop_assert_eq!(s.has_findings(&text), !findings.is_empty());
    }

    #[test]
    fn planted_values_are_found_in_random_text(before in filler(), after in filler(), seed in any::<u64>(), k in 0..PLANTABLE.len()) {
        let s = shared();
        let id = PLANTABLE[k];
        let value = corpus::sample(&mut Rng::new(seed), id).unwrap();
        // ` ; ` ends any run of digit groups: `4111 1111 1111 1111 0000 0000` is one longer number.
        let text = format!("{before} ; {value} ; {after}");
        let start = before.len() + 3;
        let end = start + value.len();
        let findings = s.scan(&text);
        prop_assert!(
            findings.iter().any(|f| f.start <= start && f.end >= end && *f.detector == *id),
            "{} {:?} not found in {:?}: {:?}", id, value, text, findings
        );
    }

    #[test]
    fn random_text_never_panics(text in "\\PC{0,300}") {
        let s = shared();
        let findings = s.scan(&text);
        prop_assert_eq!(s.has_findings(&text), !findings.is_empty());
        for f in &findings {
            prop_assert!(text.is_char_boundary(f.start) && text.is_char_boundary(f.end));
        }
    }
}
