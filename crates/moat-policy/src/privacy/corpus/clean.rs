//! Clean text full of near-misses: hashes, git SHAs, UUIDs, versions, dates, IP addresses, base64
//! images, long numbers failing Luhn, code that *fetches* secrets, `.env.example` placeholders,
//! public keys, hex dumps, prose. None of it is sensitive, so every finding on it is a false positive.

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

fn prose(rng: &mut Rng) -> String {
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

fn uuid(rng: &mut Rng) -> String {
    format!(
        "{}-{}-4{}-a{}-{}",
        rng.string(HEX, 8),
        rng.string(HEX, 4),
        rng.string(HEX, 3),
        rng.string(HEX, 3),
        rng.string(HEX, 12)
    )
}

fn ip(rng: &mut Rng) -> String {
    format!(
        "{}.{}.{}.{}",
        rng.range(1, 254),
        rng.below(256),
        rng.below(256),
        rng.range(1, 254)
    )
}

fn date(rng: &mut Rng) -> String {
    format!(
        "{}-{:02}-{:02}",
        rng.range(2019, 2026),
        rng.range(1, 12),
        rng.range(1, 28)
    )
}

fn time(rng: &mut Rng) -> String {
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        rng.below(24),
        rng.below(60),
        rng.below(60),
        rng.below(1000)
    )
}

fn version(rng: &mut Rng) -> String {
    format!("{}.{}.{}", rng.below(20), rng.below(40), rng.below(100))
}

/// A 13 to 19 digit number that is not a card: its Luhn check fails.
fn non_card_number(rng: &mut Rng) -> String {
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

fn python_code(rng: &mut Rng) -> String {
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

fn js_code(rng: &mut Rng) -> String {
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

fn config_placeholders(rng: &mut Rng) -> String {
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
        s.push_str(&lines[rng.below(lines.len())]);
    }
    s
}

/// Assignments whose names contain `password`, `secret`, `token` or `key` but whose values are not
/// secrets: names of secrets, paths, counts, timestamps, algorithm names, URLs.
fn tricky_assignments(rng: &mut Rng) -> String {
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

/// About `bytes` of typical prompt text, mostly prose and code (for throughput benchmarks): the mix a
/// chat or coding assistant sees, without the base64 blobs and dumps that make scanning easier.
pub fn typical_text(seed: u64, bytes: usize) -> String {
    let mut rng = Rng::new(seed);
    let mut s = String::with_capacity(bytes + 4096);
    while s.len() < bytes {
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

/// About `bytes` of adversarial text dense with candidates that fail validation: numbers failing
/// Luhn, invalid IBANs and SSNs, assignments of placeholders, repeated key prefixes. The worst case
/// for the scanner's confirmation step.
pub fn dense_near_misses(seed: u64, bytes: usize) -> String {
    let mut rng = Rng::new(seed);
    let mut s = String::with_capacity(bytes + 256);
    while s.len() < bytes {
        let piece = match rng.below(8) {
            0 => format!("{} ", non_card_number(&mut rng)),
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
