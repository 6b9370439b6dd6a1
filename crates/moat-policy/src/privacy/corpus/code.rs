//! Code and prose for the corpora: snippets that handle secrets without containing any (environment
//! lookups, placeholders, names of secrets), and neutral prose and code for typical-prompt text.

use super::clean::{date, time, version};
use super::values::{lower, DIGITS, HEX};
use super::Rng;

/// Everyday words, without the ones the assignment detector keys on.
const NEUTRAL: &[&str] = &[
    "the",
    "a",
    "of",
    "and",
    "to",
    "in",
    "is",
    "that",
    "for",
    "it",
    "with",
    "as",
    "was",
    "on",
    "be",
    "at",
    "by",
    "this",
    "have",
    "from",
    "or",
    "one",
    "had",
    "but",
    "not",
    "what",
    "all",
    "were",
    "when",
    "we",
    "there",
    "can",
    "an",
    "your",
    "which",
    "their",
    "said",
    "if",
    "do",
    "will",
    "each",
    "about",
    "how",
    "up",
    "out",
    "them",
    "then",
    "she",
    "many",
    "some",
    "so",
    "these",
    "would",
    "other",
    "into",
    "has",
    "more",
    "write",
    "like",
    "time",
    "could",
    "people",
    "my",
    "than",
    "first",
    "water",
    "been",
    "call",
    "who",
    "its",
    "now",
    "find",
    "long",
    "down",
    "day",
    "did",
    "get",
    "come",
    "made",
    "may",
    "part",
    "function",
    "error",
    "value",
    "return",
    "list",
    "string",
    "test",
    "build",
    "server",
    "request",
    "user",
    "data",
    "file",
    "explain",
    "summarise",
    "rewrite",
    "translate",
    "review",
    "improve",
    "example",
    "question",
    "answer",
];

/// Sentences of neutral words, an occasional number.
pub(super) fn neutral_prose(rng: &mut Rng) -> String {
    let mut s = String::new();
    for _ in 0..rng.range(3, 8) {
        let n = rng.range(6, 22);
        let words: Vec<&str> = (0..n).map(|_| *rng.pick(NEUTRAL)).collect();
        let mut sentence = words.join(" ");
        if rng.chance(15) {
            sentence.push_str(&format!(" in {}", rng.range(1990, 2026)));
        }
        if let Some(first) = sentence.get(..1) {
            sentence.replace_range(..1, &first.to_ascii_uppercase());
        }
        s.push_str(&sentence);
        s.push_str(if rng.chance(20) { "?\n" } else { ". " });
    }
    s
}

/// Ordinary code: functions, loops, structs, tests; Rust, Python or TypeScript.
pub(super) fn generic_code(rng: &mut Rng) -> String {
    let len = rng.range(3, 9);
    let name = lower(rng, len);
    let n = rng.range(2, 500);
    match rng.below(3) {
        0 => format!(
            "```rust\n/// Sums the {name} values.\npub fn {name}(items: &[u64]) -> Result<u64, Error> {{\n    \
             let mut total = 0u64;\n    for (i, x) in items.iter().enumerate() {{\n        if i > {n} {{ break; }}\n        \
             total = total.checked_add(*x).ok_or(Error::Overflow)?;\n    }}\n    Ok(total)\n}}\n\n#[test]\nfn {name}_works() \
             {{\n    assert_eq!({name}(&[1, 2, 3]).unwrap(), 6);\n}}\n```\n"
        ),
        1 => format!(
            "```python\ndef {name}(rows, limit={n}):\n    \"\"\"Return the first rows that match.\"\"\"\n    out = []\n    \
             for row in rows:\n        if len(out) >= limit:\n            break\n        if row.get(\"status\") == \"ok\":\n            \
             out.append(row)\n    return out\n\nprint({name}(load(\"data/{name}.csv\")))\n```\n"
        ),
        _ => format!(
            "```ts\nexport interface {name}Props {{ id: number; label: string; items: string[] }}\n\nexport function \
             render{name}(props: {name}Props): string {{\n  const visible = props.items.slice(0, {n});\n  return \
             `<ul>${{visible.map((x) => `<li>${{x}}</li>`).join('')}}</ul>`;\n}}\n```\n"
        ),
    }
}

pub(super) fn python_code(rng: &mut Rng) -> String {
    let lines = [
        "import os\nimport getpass\n".to_string(),
        "DB_PASSWORD = os.environ[\"DB_PASSWORD\"]\n".to_string(),
        "api_key = os.getenv(\"OPENAI_API_KEY\")\n".to_string(),
        "password = getpass.getpass(\"Password: \")\n".to_string(),
        "token = request.headers.get(\"Authorization\")\n".to_string(),
        "secret_key = settings.SECRET_KEY\n".to_string(),
        "tokenizer = AutoTokenizer.from_pretrained(\"bert-base-uncased\")\n".to_string(),
        format!("max_tokens = {}\n", rng.range(256, 8192)),
        format!("timeout_ms = {}\n", rng.range(100, 60000)),
        "def check_password(user, password: str) -> bool:\n    return bcrypt.checkpw(password.encode(), user.password_hash)\n".to_string(),
        format!("    assert resp.status_code == {}, resp.text\n", rng.pick(&[200, 201, 404])),
        format!("tokens = tokenizer.encode(text)[:{}]\n", rng.range(100, 4000)),
        "    password_confirm = form.cleaned_data.get(\"password_confirm\")\n".to_string(),
        "client = OpenAI(api_key=api_key, base_url=BASE_URL)\n".to_string(),
        format!("for i in range({}):\n    total += values[i] * {}.{}\n", rng.range(2, 999), rng.below(10), rng.range(100, 999)),
    ];
    let mut s = String::from("```python\n");
    for _ in 0..rng.range(4, 9) {
        s.push_str(&lines[rng.below(lines.len())]);
    }
    s.push_str("```\n");
    s
}

pub(super) fn js_code(rng: &mut Rng) -> String {
    let lines = [
        "const apiKey = process.env.OPENAI_API_KEY;\n".to_string(),
        "const { password } = req.body;\n".to_string(),
        "if (!token) throw new Error('missing token');\n".to_string(),
        "headers: { Authorization: `Bearer ${token}` },\n".to_string(),
        format!("const retries = {};\n", rng.range(1, 9)),
        format!("import React from 'react'; // react@{}\n", version(rng)),
        "export const secretName = config.get('secrets.db.name');\n".to_string(),
        format!(
            "  .btn-primary {{ color: #{}; padding: {}px; }}\n",
            rng.string(HEX, 6),
            rng.range(2, 24)
        ),
        format!("const mask = 0x{};\n", rng.string(HEX, 8).to_ascii_uppercase()),
        "password: z.string().min(12),\n".to_string(),
    ];
    let mut s = String::from("```ts\n");
    for _ in 0..rng.range(4, 9) {
        s.push_str(&lines[rng.below(lines.len())]);
    }
    s.push_str("```\n");
    s
}

pub(super) fn config_placeholders(rng: &mut Rng) -> String {
    let lines = [
        "OPENAI_API_KEY=sk-your-key-here\n",
        "OPENAI_API_KEY=sk-...\n",
        "DB_PASSWORD=changeme\n",
        "SECRET_KEY=<generate-a-long-random-string>\n",
        "AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n",
        "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n",
        "GITHUB_TOKEN=${{ secrets.GITHUB_TOKEN }}\n",
        "password: ${POSTGRES_PASSWORD}\n",
        "  password: \"{{ .Values.db.password }}\"\n",
        "api_key: xxxxxxxxxxxxxxxxxxxxxxxx\n",
        "REDIS_PASSWORD=\n",
        "token: !vault |\n",
        "  secretKeyRef:\n    name: db-credentials\n    key: password\n",
        "DATABASE_URL=postgres://user:password@localhost:5432/app\n",
        "STRIPE_PUBLISHABLE_KEY=pk_live_51HqLyjWDarjtT1zdp7dcXYZ\n",
        "\"password\": \"<your-password>\",\n",
        "client_secret = None  # set in production\n",
        "PASSWORD_MIN_LENGTH=12\n",
    ];
    let mut s = String::from("# .env.example\n");
    for _ in 0..rng.range(3, 8) {
        s.push_str(lines[rng.below(lines.len())]);
    }
    s
}

/// Assignments whose names contain `password`, `secret`, `token` or `key` but whose values are not
/// secrets: names of secrets, paths, counts, timestamps, algorithm names, URLs.
pub(super) fn tricky_assignments(rng: &mut Rng) -> String {
    let env = *rng.pick(&["prod", "staging", "dev"]);
    let n = rng.range(4, 9);
    let svc = lower(rng, n);
    let lines = [
        format!("secret_name = \"{env}/{svc}/db-credentials\"\n"),
        format!("private_key_path: /etc/ssl/private/{svc}.key\n"),
        format!(
            "password_hash_algorithm = \"{}\"\n",
            rng.pick(&["argon2id", "bcrypt", "scrypt", "pbkdf2_sha256"])
        ),
        format!("\"password_last_changed\": \"{}T{}Z\",\n", date(rng), time(rng)),
        format!("token_expires_at = {}\n", rng.range(1_600_000_000, 1_900_000_000)),
        format!(
            "secret_version: v{}{:02}{:02}\n",
            rng.range(2019, 2026),
            rng.range(1, 12),
            rng.range(1, 28)
        ),
        format!("token_endpoint: https://auth.{svc}.com/oauth/token\n"),
        format!("access_key_rotation_days: {}\n", rng.range(30, 365)),
        format!(
            "\"tokens_used\": {}, \"max_tokens\": {},\n",
            rng.range(1, 9999),
            rng.range(256, 32768)
        ),
        format!(
            "SECRET_MANAGER_PATH=projects/{svc}-{}/secrets/{env}-api/versions/{}\n",
            rng.range(100, 999),
            rng.range(1, 20)
        ),
        "PASSWORD_RESET_TEMPLATE=emails/password_reset.html\n".to_string(),
        format!("api_key_header = \"X-Api-Key\"  # sent by {svc}\n"),
        format!(
            "token_type: {}\n",
            rng.pick(&["Bearer", "bearer", "refresh_token", "access_token"])
        ),
        format!(
            "secretsmanager:GetSecretValue on arn:aws:secretsmanager:eu-west-1:{}:secret:{env}/{svc}\n",
            rng.string(DIGITS, 12)
        ),
    ];
    let mut s = String::new();
    for _ in 0..rng.range(2, 6) {
        s.push_str(&lines[rng.below(lines.len())]);
    }
    s
}
