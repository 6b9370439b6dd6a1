//! Secrets split across strings: `"sk-proj-4fT9aQ"` in one message and the rest of the key in the
//! next. The string values of a body are joined in walk order, with nothing between them, and the
//! joined text is scanned; a finding the strings alone did not yield is reported, with a span in
//! each string it covers. Only the text near each junction is joined (a window at each end of a long string),
//! so the extra scan costs at most two windows per string, not a second pass over long texts.
//!
//! Labels (`"user"`, `"text"`, `"image_url"`: short lowercase words) are left out of the joined text:
//! they are the structure between two messages or parts, and would otherwise sit in the middle of a
//! key split across them.

use std::ops::Range;

use super::normalize::Normalized;
use super::{BodyFinding, Part, Span};
use crate::privacy::{Finding, Scanner};

/// How much of each end of a string takes part in the joined scan: longer than any key format
/// (PEM blocks aside, whose header and first lines are enough to be found).
const WINDOW: usize = 256;
/// How far back from a junction the text is scanned again, ending there: longer than any value whose
/// pattern ends at a word boundary (an AWS key id, a card, an IBAN, a phone number, most emails).
const JUNCTION_WINDOW: usize = 96;
/// Stands between the two ends of a long string: no detector matches across it (no `\s`, no `.`),
/// and a finding that touches it is dropped anyway.
const BREAK: &str = "\n\u{0}\n";

/// A string value taking part in the joined scan.
#[derive(Debug)]
pub(crate) struct Piece<'v> {
    pub(crate) slot: usize,
    pub(crate) text: Normalized<'v>,
}

/// A run of one piece's text in the joined buffer.
struct Region {
    piece: usize,
    buf: Range<usize>,
    /// Where the run starts in the piece's (normalised) text.
    text_start: usize,
    /// The run starts (ends) inside its text rather than at its edge. A finding that starts (ends)
    /// exactly there may exist only because of the cut (a long number cut into a card-length one).
    cut_start: bool,
    cut_end: bool,
}

/// A short lowercase word that structures a request rather than saying something in it.
pub(crate) fn is_label(s: &str) -> bool {
    (1..=24).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i += 1;
    }
    i
}

/// Where to start a run that would start at `at` inside `s`: just after the next whitespace within
/// `slack` bytes, so the run starts between words as the text does (a run starting inside
/// `2.320.341.5929` would make a phone number of its tail); else at `at`.
fn soft_start(s: &str, at: usize, slack: usize) -> usize {
    let b = s.as_bytes();
    (at..(at + slack).min(b.len()))
        .find(|&i| b[i].is_ascii_whitespace())
        .map_or(ceil_boundary(s, at), |i| i + 1)
}

/// Where to end a run that would end at `at`: at the last whitespace within `slack` bytes before it.
fn soft_end(s: &str, at: usize, slack: usize) -> usize {
    let b = s.as_bytes();
    (at.saturating_sub(slack)..at)
        .rev()
        .find(|&i| b[i].is_ascii_whitespace())
        .unwrap_or_else(|| floor_boundary(s, at))
}

/// Findings of the joined text that the single pieces' findings (`single`) do not already cover:
/// those that cross from one piece into the next, and those a piece yields only after the one
/// before it (`password` ending one message, `=Xk29fLmQ8vTz` starting the next: the finding is
/// the value, in the second piece alone). A value that ends one piece and runs on into the next
/// (a key, then a message starting with a word) is reported again as crossing: whether the word is
/// the rest of the key cannot be told, and a redaction then takes both.
pub(crate) fn split_findings(
    scanner: &Scanner,
    pieces: &[Piece<'_>],
    single: &[BodyFinding],
) -> Vec<BodyFinding> {
    if pieces.len() < 2 {
        return Vec::new();
    }
    let mut buf = String::new();
    let mut regions: Vec<Region> = Vec::with_capacity(pieces.len() + 8);
    let mut breaks: Vec<Range<usize>> = Vec::new();
    let last = pieces.len() - 1;
    for (i, p) in pieces.iter().enumerate() {
        let t: &str = &p.text.text;
        let mut run = |buf: &mut String, range: Range<usize>| {
            let at = buf.len();
            buf.push_str(&t[range.clone()]);
            regions.push(Region {
                piece: i,
                buf: at..buf.len(),
                text_start: range.start,
                cut_start: range.start > 0,
                cut_end: range.end < t.len(),
            });
        };
        if t.len() <= 2 * WINDOW {
            run(&mut buf, 0..t.len());
            continue;
        }
        // A long string: its head joins the previous string, its tail the next one.
        if i > 0 {
            run(&mut buf, 0..soft_end(t, WINDOW, WINDOW / 2));
        }
        if i > 0 && i < last {
            let at = buf.len();
            buf.push_str(BREAK);
            breaks.push(at..buf.len());
        }
        if i < last {
            run(&mut buf, soft_start(t, t.len() - WINDOW, WINDOW / 2)..t.len());
        }
    }
    // The joined text, and the joined text up to each junction: a value ending where a string ends
    // (`…KF6D` before `cloud/tiny`) needs that end to be the end of the text, not glued to the next
    // string's first word, to pass patterns that end at a word boundary.
    let mut candidates: Vec<(usize, Finding)> = scanner.scan(&buf).into_iter().map(|f| (0, f)).collect();
    let word = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_alphanumeric() || *b == b'_');
    // Only where two words are glued together: elsewhere the joined text already ends the value.
    let glued = regions.windows(2).filter(|w| {
        w[0].piece != w[1].piece
            && word(buf.as_bytes().get(w[0].buf.end.wrapping_sub(1)))
            && word(buf.as_bytes().get(w[1].buf.start))
    });
    for r in glued {
        let end = r[0].buf.end;
        let floor = breaks
            .iter()
            .map(|b| b.end)
            .filter(|&b| b <= end)
            .max()
            .unwrap_or(0);
        let nominal = end.saturating_sub(JUNCTION_WINDOW);
        let from = if nominal <= floor {
            floor
        } else {
            soft_start(&buf, nominal, JUNCTION_WINDOW / 2).min(end)
        };
        for f in scanner.scan(&buf[from..end]) {
            candidates.push((
                from,
                Finding {
                    start: f.start + from,
                    end: f.end + from,
                    ..f
                },
            ));
        }
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (window_start, f) in candidates {
        if !seen.insert((f.start, f.end, f.detector.clone())) {
            continue;
        }
        // A window's start may fall inside a string: a finding starting there may exist only
        // because of the cut.
        if f.start == window_start
            && window_start > 0
            && !regions
                .iter()
                .any(|r| r.buf.start == window_start && !r.cut_start)
        {
            continue;
        }
        let touches = |r: &Range<usize>| f.start < r.end && r.start < f.end;
        if breaks.iter().any(touches) {
            continue;
        }
        let crossed: Vec<&Region> = regions.iter().filter(|r| touches(&r.buf)).collect();
        let at_cut = crossed
            .iter()
            .any(|r| (r.cut_start && f.start == r.buf.start) || (r.cut_end && f.end == r.buf.end));
        if at_cut {
            continue;
        }
        let spans: Vec<Span> = crossed
            .iter()
            .filter_map(|r| {
                let piece = pieces.get(r.piece)?;
                let a = f.start.max(r.buf.start) - r.buf.start + r.text_start;
                let b = f.end.min(r.buf.end) - r.buf.start + r.text_start;
                let (start, end) = piece.text.original(a, b);
                Some(Span {
                    slot: piece.slot,
                    part: Part::Raw,
                    start,
                    end,
                })
            })
            .collect();
        let covered = |s: &Span| {
            single
                .iter()
                .flat_map(|g| &g.spans)
                .any(|g| g.slot == s.slot && g.part == s.part && g.start <= s.start && s.end <= g.end)
        };
        if spans.iter().all(covered) {
            continue;
        }
        out.push(BodyFinding {
            detector: f.detector,
            category: f.category,
            spans,
        });
    }
    out
}
