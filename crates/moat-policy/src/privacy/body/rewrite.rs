//! Redaction in place: the strings a scan's findings cover are rewritten, wherever they are (values,
//! object keys, the text inside a `data:` URL or base64, several strings for a split secret).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::embedded::{self, Embedded, Encoding};
use super::{is_typed, BodyFinding, Part};
use crate::privacy::DetectorId;

/// One replacement in one text of one string.
#[derive(Debug, Clone)]
struct Edit {
    part: Part,
    start: usize,
    end: usize,
    detector: DetectorId,
    with: String,
}

/// A string's texts, as the scan saw them.
struct Texts {
    raw: String,
    decoded: Option<(String, Encoding)>,
}

/// Replaces what `findings` cover in `body` with `placeholder(detector, original)`. A finding split
/// across strings puts its placeholder in the first and removes its other parts; overlapping
/// findings are merged. The strings are found by the walk that [`super::inspect`] numbered them
/// with, so `body` must be the body that was scanned.
pub fn redact(
    body: &mut Value,
    findings: &[&BodyFinding],
    mut placeholder: impl FnMut(&DetectorId, &str) -> String,
) {
    let wanted: BTreeSet<usize> = findings
        .iter()
        .flat_map(|f| f.spans.iter().map(|s| s.slot))
        .collect();
    if wanted.is_empty() {
        return;
    }
    let mut texts = BTreeMap::new();
    collect(body, false, &mut 0, &wanted, &mut texts);
    let text_of = |texts: &BTreeMap<usize, Texts>, slot: usize, part: Part| -> Option<String> {
        let t = texts.get(&slot)?;
        match part {
            Part::Raw => Some(t.raw.clone()),
            Part::Decoded => t.decoded.as_ref().map(|(d, _)| d.clone()),
        }
    };
    let mut edits: BTreeMap<usize, Vec<Edit>> = BTreeMap::new();
    for f in findings {
        let mut original = String::new();
        for s in &f.spans {
            if let Some(piece) =
                text_of(&texts, s.slot, s.part).and_then(|t| t.get(s.start..s.end).map(str::to_owned))
            {
                original.push_str(&piece);
            }
        }
        let with = placeholder(&f.detector, &original);
        for (i, s) in f.spans.iter().enumerate() {
            edits.entry(s.slot).or_default().push(Edit {
                part: s.part,
                start: s.start,
                end: s.end,
                detector: f.detector.clone(),
                with: if i == 0 { with.clone() } else { String::new() },
            });
        }
    }
    let mut rewritten: BTreeMap<usize, String> = BTreeMap::new();
    for (slot, list) in edits {
        let Some(t) = texts.get(&slot) else { continue };
        rewritten.insert(slot, rewrite(t, list, &mut placeholder));
    }
    apply(body, &mut 0, &rewritten);
}

/// The new string for one slot.
fn rewrite(
    t: &Texts,
    mut list: Vec<Edit>,
    placeholder: &mut impl FnMut(&DetectorId, &str) -> String,
) -> String {
    list.sort_by_key(|e| (e.part, e.start));
    let decoded = list.iter().any(|e| e.part == Part::Decoded);
    let raw = list.iter().any(|e| e.part == Part::Raw);
    match (&t.decoded, decoded, raw) {
        (Some((text, encoding)), true, false) => {
            let list = merge(text, list, placeholder);
            encoding.encode(&splice(text, &list))
        }
        // Findings both in the encoded string and in its decoded text: the whole string goes.
        (_, true, true) | (None, true, false) => {
            let detector = list
                .first()
                .map(|e| e.detector.clone())
                .unwrap_or_else(|| DetectorId::builtin("redacted"));
            placeholder(&detector, &t.raw)
        }
        _ => {
            let list = merge(&t.raw, list, placeholder);
            splice(&t.raw, &list)
        }
    }
}

/// Sorted edits of one text, with overlapping ones merged into one covering both (and a placeholder
/// for the whole), and ranges that are not on char boundaries widened to the whole text.
fn merge(
    text: &str,
    list: Vec<Edit>,
    placeholder: &mut impl FnMut(&DetectorId, &str) -> String,
) -> Vec<Edit> {
    let mut out: Vec<Edit> = Vec::with_capacity(list.len());
    for mut e in list {
        if e.end > text.len()
            || e.start > e.end
            || !text.is_char_boundary(e.start)
            || !text.is_char_boundary(e.end)
        {
            (e.start, e.end) = (0, text.len());
        }
        match out.last_mut() {
            Some(prev) if e.start < prev.end => {
                prev.end = prev.end.max(e.end);
                prev.with = placeholder(&prev.detector, &text[prev.start..prev.end]);
            }
            _ => out.push(e),
        }
    }
    out
}

fn splice(text: &str, list: &[Edit]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for e in list {
        out.push_str(&text[at..e.start]);
        out.push_str(&e.with);
        at = e.end;
    }
    out.push_str(&text[at..]);
    out
}

/// The texts of the `wanted` slots, numbered as [`super::inspect`]'s walk numbers them.
fn collect(
    v: &Value,
    typed: bool,
    slot: &mut usize,
    wanted: &BTreeSet<usize>,
    out: &mut BTreeMap<usize, Texts>,
) {
    match v {
        Value::String(s) => take(s, true, typed, slot, wanted, out),
        Value::Array(items) => {
            for item in items {
                collect(item, false, slot, wanted, out);
            }
        }
        Value::Object(map) => {
            let typed = is_typed(map);
            for (key, item) in map {
                take(key, false, false, slot, wanted, out);
                collect(item, typed, slot, wanted, out);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

fn take(
    s: &str,
    is_value: bool,
    typed: bool,
    slot: &mut usize,
    wanted: &BTreeSet<usize>,
    out: &mut BTreeMap<usize, Texts>,
) {
    if wanted.contains(slot) {
        let decoded = match is_value.then(|| embedded::classify(s, typed)) {
            Some(Embedded::Text(text, encoding)) => Some((text, encoding)),
            _ => None,
        };
        out.insert(
            *slot,
            Texts {
                raw: s.to_owned(),
                decoded,
            },
        );
    }
    *slot += 1;
}

/// Writes the new strings back, renaming object keys whose text changed.
fn apply(v: &mut Value, slot: &mut usize, new: &BTreeMap<usize, String>) {
    match v {
        Value::String(s) => {
            if let Some(n) = new.get(slot) {
                n.clone_into(s);
            }
            *slot += 1;
        }
        Value::Array(items) => {
            for item in items {
                apply(item, slot, new);
            }
        }
        Value::Object(map) => {
            let mut renames = Vec::new();
            for (key, item) in map.iter_mut() {
                if let Some(n) = new.get(slot) {
                    renames.push((key.clone(), n.clone()));
                }
                *slot += 1;
                apply(item, slot, new);
            }
            for (old, renamed) in renames {
                if let Some(item) = map.remove(&old) {
                    map.insert(renamed, item);
                }
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}
