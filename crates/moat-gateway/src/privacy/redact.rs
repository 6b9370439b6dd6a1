//! Typed placeholders: `[EMAIL_1]`, `[OPENAI_KEY_2]` replace what a `redact` rule matched before the
//! request leaves, and are put back in the answer. The same value always gets the same placeholder
//! within a request, so a model that repeats it refers to it consistently.

use std::collections::HashMap;

/// The placeholders of one request and what they stand for.
#[derive(Debug, Default, Clone)]
pub struct Redactions {
    /// (placeholder, original), in the order they were made.
    pairs: Vec<(String, String)>,
    by_original: HashMap<String, usize>,
    per_detector: HashMap<String, u32>,
}

impl Redactions {
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// The placeholders with their originals.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    /// Replaces the byte ranges `spans` (sorted, non-overlapping, on char boundaries) of `text`.
    pub fn apply(&mut self, text: &mut String, spans: &[(usize, usize, String)]) {
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (start, end, detector) in spans {
            let (start, end) = (*start, *end);
            if start < at || end > text.len() || !text.is_char_boundary(start) || !text.is_char_boundary(end)
            {
                continue;
            }
            out.push_str(&text[at..start]);
            let original = &text[start..end];
            let placeholder = self.placeholder_for(original, detector);
            out.push_str(&placeholder);
            at = end;
        }
        out.push_str(&text[at..]);
        *text = out;
    }

    /// The placeholder for `original` (the same one each time it comes up in a request).
    pub fn placeholder_for(&mut self, original: &str, detector: &str) -> String {
        if let Some(i) = self.by_original.get(original) {
            return self.pairs[*i].0.clone();
        }
        let n = self.per_detector.entry(detector.to_string()).or_default();
        *n += 1;
        let kind: String = detector
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() {
                    c.to_ascii_uppercase()
                } else {
                    '_'
                }
            })
            .collect();
        let placeholder = format!("[{kind}_{n}]");
        self.by_original.insert(original.to_string(), self.pairs.len());
        self.pairs.push((placeholder.clone(), original.to_string()));
        placeholder
    }

    /// Puts the originals back into a plain string.
    pub fn restore_text(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (placeholder, original) in &self.pairs {
            if out.contains(placeholder.as_str()) {
                out = out.replace(placeholder.as_str(), original);
            }
        }
        out
    }

    /// Puts the originals back into text that is itself JSON (a tool call's arguments): each original
    /// goes in JSON-escaped, so quotes and line breaks in it keep the JSON valid.
    pub fn restore_escaped(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (placeholder, original) in &self.pairs {
            if out.contains(placeholder.as_str()) {
                let escaped = serde_json::to_string(original).unwrap_or_default();
                let escaped = escaped
                    .get(1..escaped.len().saturating_sub(1))
                    .unwrap_or_default();
                out = out.replace(placeholder.as_str(), escaped);
            }
        }
        out
    }

    /// Puts the originals back into a JSON document as bytes: placeholders contain no characters JSON
    /// escapes, so they appear verbatim inside string values, and each original is inserted in its
    /// JSON-escaped form.
    pub fn restore_json(&self, body: &[u8]) -> Vec<u8> {
        let mut out = body.to_vec();
        for (placeholder, original) in &self.pairs {
            let escaped = serde_json::to_string(original).unwrap_or_default();
            let escaped = escaped
                .get(1..escaped.len().saturating_sub(1))
                .unwrap_or_default();
            out = replace_all(&out, placeholder.as_bytes(), escaped.as_bytes());
        }
        out
    }

    /// True when `tail` could be the start of a placeholder not yet complete (so a stream must wait for
    /// the next piece before deciding).
    pub fn could_start_placeholder(&self, tail: &str) -> bool {
        !tail.is_empty()
            && self
                .pairs
                .iter()
                .any(|(p, _)| p.len() > tail.len() && p.starts_with(tail))
    }
}

fn replace_all(haystack: &[u8], needle: &[u8], with: &[u8]) -> Vec<u8> {
    if needle.is_empty() {
        return haystack.to_vec();
    }
    let mut out = Vec::with_capacity(haystack.len());
    let mut at = 0;
    for i in memchr::memmem::find_iter(haystack, needle) {
        if i < at {
            continue;
        }
        out.extend_from_slice(&haystack[at..i]);
        out.extend_from_slice(with);
        at = i + needle.len();
    }
    out.extend_from_slice(&haystack[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_value_same_placeholder_and_round_trip() {
        let mut r = Redactions::default();
        let mut text = "mail a@b.io and c@d.io, again a@b.io".to_string();
        let spans = vec![
            (5, 11, "email".to_string()),
            (16, 22, "email".to_string()),
            (30, 36, "email".to_string()),
        ];
        r.apply(&mut text, &spans);
        assert_eq!(text, "mail [EMAIL_1] and [EMAIL_2], again [EMAIL_1]");
        assert_eq!(r.restore_text(&text), "mail a@b.io and c@d.io, again a@b.io");
    }

    #[test]
    fn json_restore_escapes_the_original() {
        let mut r = Redactions::default();
        let mut text = "key: -----BEGIN\n\"x\"-----".to_string();
        let end = text.len();
        r.apply(&mut text, &[(5, end, "private_key".into())]);
        assert_eq!(text, "key: [PRIVATE_KEY_1]");
        let body = br#"{"content":"I saw [PRIVATE_KEY_1]."}"#;
        let restored = r.restore_json(body);
        let v: serde_json::Value = serde_json::from_slice(&restored).unwrap();
        assert_eq!(v["content"], "I saw -----BEGIN\n\"x\"-----.");
    }

    #[test]
    fn partial_placeholders_are_recognised() {
        let mut r = Redactions::default();
        let mut text = "x@y.z".to_string();
        r.apply(&mut text, &[(0, 5, "email".into())]);
        assert!(r.could_start_placeholder("[EMA"));
        assert!(r.could_start_placeholder("["));
        assert!(!r.could_start_placeholder("[EMAIL_1]"));
        assert!(!r.could_start_placeholder("[X"));
    }
}
