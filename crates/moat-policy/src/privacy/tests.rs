use super::*;

fn ids(scanner: &Scanner, text: &str) -> Vec<(String, String)> {
    scanner
        .scan(text)
        .iter()
        .map(|f| (f.detector.to_string(), text[f.range()].to_string()))
        .collect()
}

#[test]
fn smoke() {
    let s = Scanner::new(&[]).unwrap();
    for t in [
        "OPENAI_API_KEY=sk-proj-4fT9aQx8LmZ2vR7pK3nW1cY6bH0jE5uD",
        "key sk-ant-api03-Zx9Lm2Qv8Rt5Kp3Nw7Yc1Hb6Jd0Fs4Gu-AAAA more",
        "export GITHUB_TOKEN=ghp_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8",
        "password = \"Xk29fLmQ8vTz!\"",
        "password = os.environ[\"DB_PASSWORD\"]",
        "mail me at jane.doe@example.org",
        "card 4111 1111 1111 1111 exp 12/27",
        "call +44 20 7946 0958 or (415) 555-2671",
        "IBAN DE89 3704 0044 0532 0130 00 thanks",
        "ssn 536-22-1234",
        "version 1.2.3 date 2024-01-15 ip 192.168.1.100 sha 3f2a9c1e",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA1b2c3d4e5f6g7h8i9j0k1l2m3n4o5p6q7r8s9t0u1v2w3x4y5z6A7B8C9D0E1F2G3H4\n-----END RSA PRIVATE KEY-----",
        "token: eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzzKEY1234",
        "Authorization: Bearer abcDEF123456ghiJKL789",
        "postgres://app:S3cr3tPw@db:5432/app",
    ] {
        println!("{t:?} -> {:?}", ids(&s, t));
    }
}
