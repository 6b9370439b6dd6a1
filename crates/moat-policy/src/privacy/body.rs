//! Whole-body inspection: every string of a JSON request body, wherever it sits, goes through the
//! [`Scanner`] — known members and unknown ones, object keys, URLs, the text inside `data:` URLs and
//! base64 — after invisible characters are taken out. Texts that follow each other (consecutive
//! messages, content parts, prompts) are also scanned joined, so a secret split in two is found.
//! Binary content (images, PDFs, audio) is reported as opaque, with its place in the body.
//!
//! The body is the request as the client sent it, before any endpoint decodes it, so whatever an
//! endpoint does with its members (forwards them, translates them, passes unknown ones through),
//! nothing reaches a provider unseen. Findings name strings by their position in a fixed walk of the
//! document, so [`redact`] can replace exactly what was found, wherever it is.
//!
//! ```
//! use moat_policy::privacy::{body, Scanner};
//! use serde_json::json;
//!
//! let scanner = Scanner::new(&[]).unwrap();
//! let mut request = json!({
//!     "model": "gpt-4o",
//!     "messages": [{"role": "user", "content": "deploy with key AKIAQ3EGRTPRZ5J4"}, {"role": "user", "content": "KF6D please"}],
//!     "metadata": {"note": "token ghp_R8mK2vQ9xL4pN7bW3cZ6tY1hJ5sD0fGaE2uO here"},
//! });
//! let scan = body::inspect(&scanner, &request);
//! let found: Vec<&str> = scan.findings.iter().map(|f| &*f.detector).collect();
//! assert_eq!(found, ["github_token", "aws_access_key_id"]);
//! body::redact(&mut request, &scan.findings.iter().collect::<Vec<_>>(), |id, _| format!("[{id}]"));
//! assert_eq!(request["messages"][0]["content"], "deploy with key [aws_access_key_id]");
//! assert_eq!(request["messages"][1]["content"], " please");
//! assert_eq!(request["metadata"]["note"], "token [github_token] here");
//! ```

mod embedded;
mod joined;
mod normalize;
mod rewrite;
#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

use super::{Category, DetectorId, Scanner};
use embedded::Embedded;
use normalize::Normalized;

pub use rewrite::redact;

/// What the walk found in one body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BodyScan {
    /// Findings in body order (a split one after those of the single texts).
    pub findings: Vec<BodyFinding>,
    /// Content that could not be scanned, in body order.
    pub opaque: Vec<Opaque>,
}

/// One finding: which detector, and the string ranges it covers (one, or several for a value split
/// across strings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyFinding {
    pub detector: DetectorId,
    pub category: Category,
    pub spans: Vec<Span>,
}

/// A byte range of one string of the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Span {
    /// The string's place in the walk (see [`redact`]).
    pub slot: usize,
    pub part: Part,
    pub start: usize,
    pub end: usize,
}

/// Which text of a string a span is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Part {
    /// The string as written.
    Raw,
    /// The text decoded from it (a `data:` URL's payload, base64).
    Decoded,
}

/// Content that cannot be scanned: where it is (`messages[0].content[1].image_url.url`, never the
/// content) and what it is (its media type, or "binary data").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opaque {
    pub path: String,
    pub media_type: String,
}

/// Members whose presence says the object holds a file, so binary base64 beside them is its content.
const TYPE_MEMBERS: &[&str] = &[
    "media_type",
    "mime_type",
    "mimeType",
    "mediaType",
    "content_type",
    "contentType",
    "format",
    "filename",
];

/// Scans every string of `body` (see the module documentation).
pub fn inspect(scanner: &Scanner, body: &Value) -> BodyScan {
    let mut w = Walker {
        slot: 0,
        path: Vec::new(),
        joined: Vec::new(),
        batch: Batch::default(),
        out: BodyScan::default(),
    };
    w.value(body, false);
    let Walker {
        joined,
        batch,
        mut out,
        ..
    } = w;
    out.findings = batch.findings(scanner);
    let split = joined::split_findings(scanner, &joined, &out.findings);
    out.findings.extend(split);
    out
}

/// Between two strings in the batch: no detector matches across a NUL, and the line breaks give
/// each string a start and an end like a text of its own.
const SEPARATOR: &str = "\n\u{0}\n";

/// Every text of the body in one buffer, scanned in one call: a body of hundreds of short strings
/// (a tool schema) costs one scan, not hundreds.
#[derive(Default)]
struct Batch<'v> {
    text: String,
    entries: Vec<Entry<'v>>,
}

struct Entry<'v> {
    slot: usize,
    part: Part,
    /// Where the text starts in the buffer.
    at: usize,
    text: Normalized<'v>,
}

impl<'v> Batch<'v> {
    fn push(&mut self, slot: usize, part: Part, text: Normalized<'v>) {
        if !self.text.is_empty() {
            self.text.push_str(SEPARATOR);
        }
        let at = self.text.len();
        self.text.push_str(&text.text);
        self.entries.push(Entry { slot, part, at, text });
    }

    /// The findings of the buffer, as spans of the strings they are in.
    fn findings(&self, scanner: &Scanner) -> Vec<BodyFinding> {
        let mut out = Vec::new();
        for f in scanner.scan(&self.text) {
            let first = self
                .entries
                .partition_point(|e| e.at <= f.start)
                .saturating_sub(1);
            let spans: Vec<Span> = self.entries[first..]
                .iter()
                .take_while(|e| e.at < f.end)
                .filter(|e| f.start < e.at + e.text.text.len())
                .map(|e| {
                    let a = f.start.max(e.at) - e.at;
                    let b = f.end.min(e.at + e.text.text.len()) - e.at;
                    let (start, end) = e.text.original(a, b);
                    Span {
                        slot: e.slot,
                        part: e.part,
                        start,
                        end,
                    }
                })
                .collect();
            if !spans.is_empty() {
                out.push(BodyFinding {
                    detector: f.detector,
                    category: f.category,
                    spans,
                });
            }
        }
        out
    }
}

/// One step of a path into the body, for naming opaque members.
#[derive(Debug, Clone, Copy)]
enum Step<'v> {
    Key(&'v str),
    Index(usize),
}

struct Walker<'v> {
    /// The next string's slot: strings are numbered in walk order (object keys before their values).
    slot: usize,
    path: Vec<Step<'v>>,
    /// String values in walk order, for the joined scan.
    joined: Vec<joined::Piece<'v>>,
    batch: Batch<'v>,
    out: BodyScan,
}

impl<'v> Walker<'v> {
    fn value(&mut self, v: &'v Value, typed: bool) {
        match v {
            Value::String(s) => self.string(s, true, typed),
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.path.push(Step::Index(i));
                    self.value(item, false);
                    self.path.pop();
                }
            }
            Value::Object(map) => {
                let typed = is_typed(map);
                for (key, item) in map {
                    self.string(key, false, false);
                    self.path.push(Step::Key(key));
                    self.value(item, typed);
                    self.path.pop();
                }
            }
            Value::Null | Value::Bool(_) | Value::Number(_) => {}
        }
    }

    fn string(&mut self, s: &'v str, is_value: bool, typed: bool) {
        let slot = self.slot;
        self.slot += 1;
        let text = Normalized::new(s);
        if is_value && !joined::is_label(s) {
            self.joined.push(joined::Piece {
                slot,
                text: text.clone(),
            });
        }
        self.batch.push(slot, Part::Raw, text);
        if !is_value {
            return;
        }
        match embedded::classify(s, typed) {
            Embedded::Nothing => {}
            Embedded::Text(decoded, _) => self.batch.push(slot, Part::Decoded, Normalized::owned(decoded)),
            Embedded::Opaque(media_type) => self.out.opaque.push(Opaque {
                path: render(&self.path),
                media_type,
            }),
        }
    }
}

fn is_typed(map: &Map<String, Value>) -> bool {
    TYPE_MEMBERS
        .iter()
        .any(|k| map.get(*k).is_some_and(Value::is_string))
}

/// `messages[0].content[1].image_url.url`; keys that are not plain identifiers are quoted.
fn render(path: &[Step<'_>]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Index(i) => out.push_str(&format!("[{i}]")),
            Step::Key(k) if !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Step::Key(k) => out.push_str(&format!("[{}]", Value::String((*k).to_owned()))),
        }
    }
    if out.is_empty() {
        out.push_str("(the body)");
    }
    out
}
