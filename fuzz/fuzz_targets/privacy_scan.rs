//! The privacy scanner (every built-in detector plus custom rules) over arbitrary text: no panic,
//! findings inside the text on character boundaries, and `has_findings` agreeing with `scan`.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use moat_policy::privacy::{CustomRule, Scanner};

fn scanner() -> &'static Scanner {
    static SCANNER: OnceLock<Scanner> = OnceLock::new();
    SCANNER.get_or_init(|| {
        let rules = [
            CustomRule {
                id: "codename".into(),
                regex: None,
                terms: vec!["Bluebird".into(), "Ünïcode term".into()],
            },
            CustomRule {
                id: "ticket".into(),
                regex: Some(r"\bPROJ-\d{3,6}\b".into()),
                terms: Vec::new(),
            },
        ];
        Scanner::new(&rules).expect("the rules compile")
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let findings = scanner().scan(&text);
    for f in &findings {
        let r = f.range();
        assert!(r.start <= r.end && r.end <= text.len(), "{r:?} outside the text");
        assert!(
            text.is_char_boundary(r.start) && text.is_char_boundary(r.end),
            "{r:?} splits a character"
        );
    }
    assert_eq!(scanner().has_findings(&text), !findings.is_empty());
});
