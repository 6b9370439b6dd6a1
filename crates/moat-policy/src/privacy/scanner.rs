//! The compiled scanner: every detector's trigger in one multi-pattern automaton, and the loop that
//! turns its matches into validated, non-overlapping findings.
//!
//! The search is leftmost-first over all triggers at once, so a clean prompt costs one pass of a lazy
//! DFA (see `detectors.rs` for why triggers rather than full patterns). Where a trigger fires, the
//! triggers that match there are taken in priority order, and their full patterns run anchored (each
//! on its own, with its capture group) until one passes its check. If none does, the search resumes
//! just after the trigger's start, so a near-miss (a number failing Luhn) does not hide a real finding
//! inside it. Each byte is re-read by a bounded number of failed candidates, so hostile input dense
//! with near-misses stays linear.

use regex_automata::hybrid::dfa::DFA;
use regex_automata::meta::Regex;
use regex_automata::nfa::thompson::{self, WhichCaptures};
use regex_automata::util::primitives::NonMaxUsize;
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input};

use super::detectors::{self, Builtin, Check, Family, Trigger};
use super::validate::{self, Candidate};
use super::{Category, CustomRule, DetectorId, Finding, PrivacyError};

use regex_syntax::hir::{Capture, Hir, HirKind, Look, Repetition};
use std::ops::Range;

/// Lazy-DFA cache per thread for the trigger automaton. The default (2 MiB) is plenty for the
/// built-in triggers; the headroom is for custom rules.
const CACHE_CAPACITY: usize = 8 << 20;

/// One full pattern: what it reports and how its candidates are checked.
struct Detail {
    id: DetectorId,
    category: Category,
    check: Check,
    /// The pattern alone, run anchored where its trigger fired.
    regex: Regex,
    /// Whether capture group 1 holds the sensitive value (else the whole match is).
    value_group: bool,
    /// A generic credential rule (`password = …`, `Bearer …`) whose value may be a known key format,
    /// in which case the more specific detector is reported.
    generic: bool,
}

/// Where, relative to a trigger's start, its full patterns are anchored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Anchor {
    Start,
    /// Back over a URL scheme (`https` before `://`).
    Scheme,
    /// Back over an email's local part (before `x@`).
    LocalPart,
    /// At a digit run, or one byte before it when that is `+` or `(`.
    Digits,
}

/// One pattern of the trigger automaton.
struct Trig {
    anchor: Anchor,
    /// Indices into `Scanner::details`, in priority order.
    details: Vec<usize>,
    /// The trigger alone, to test whether it (too) matches where another one fired.
    regex: Regex,
    /// A shared family, if any (to merge detectors onto one trigger).
    family: Option<Family>,
}

/// The privacy scanner: built once from the config, shared by all requests (it is `Send + Sync`;
/// the automaton's scratch space comes from an internal pool).
pub struct Scanner {
    triggers_all: Regex,
    triggers: Vec<Trig>,
    /// Per byte, the triggers a match can start with it (conservative), in priority order: where
    /// one trigger fires, only these can fire too.
    by_first_byte: Vec<Vec<usize>>,
    details: Vec<Detail>,
    detectors: Vec<(DetectorId, Category)>,
}

impl std::fmt::Debug for Scanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scanner")
            .field("detectors", &self.detectors)
            .finish_non_exhaustive()
    }
}

/// A full pattern before compilation: id, category, pattern, check, trigger, anchor.
struct Spec {
    id: DetectorId,
    category: Category,
    pattern: String,
    check: Check,
    trigger: Result<Hir, String>,
    anchor: Anchor,
    family: Option<Family>,
}

fn builtin_spec(b: &Builtin) -> Spec {
    let (trigger, anchor, family) = match b.trigger {
        Trigger::Own(p) => (p, Anchor::Start, None),
        Trigger::Shared(f) => {
            let anchor = match f {
                Family::Url => Anchor::Scheme,
                Family::Email => Anchor::LocalPart,
                Family::Digits => Anchor::Digits,
                Family::Assign | Family::AuthHeader | Family::Iban => Anchor::Start,
            };
            (f.pattern(), anchor, Some(f))
        }
    };
    Spec {
        id: DetectorId::builtin(b.id),
        category: b.category,
        pattern: format!("(?-u){}", b.pattern),
        check: b.check,
        trigger: syntax::parse(&format!("(?-u){trigger}")).map_err(|e| e.to_string()),
        anchor,
        family,
    }
}

impl Scanner {
    /// Compiles the built-in detectors and `custom` rules. A bad rule is an error naming its id.
    pub fn new(custom: &[CustomRule]) -> Result<Scanner, PrivacyError> {
        let mut specs: Vec<Spec> = detectors::SECRETS.iter().map(builtin_spec).collect();
        let mut detectors: Vec<(DetectorId, Category)> = detectors::ids()
            .map(|(id, c)| (DetectorId::builtin(id), c))
            .collect();
        for rule in custom {
            validate_id(&rule.id)?;
            if detectors.iter().any(|(d, _)| **d == *rule.id) {
                return Err(PrivacyError::DuplicateId { id: rule.id.clone() });
            }
            let id = DetectorId::custom(&rule.id);
            detectors.push((id.clone(), Category::Custom));
            for (pattern, check) in custom_patterns(rule)? {
                let trigger = syntax::parse(&pattern)
                    .map(|h| relax(&h))
                    .map_err(|e| e.to_string());
                let (anchor, family) = (Anchor::Start, None);
                specs.push(Spec {
                    id: id.clone(),
                    category: Category::Custom,
                    pattern,
                    check,
                    trigger,
                    anchor,
                    family,
                });
            }
        }
        specs.extend(detectors::PERSONAL.iter().map(builtin_spec));

        let mut details = Vec::with_capacity(specs.len());
        let mut triggers: Vec<Trig> = Vec::new();
        let mut trigger_hirs: Vec<Hir> = Vec::new();
        let mut by_first_byte: Vec<Vec<usize>> = vec![Vec::new(); 256];
        for (i, spec) in specs.iter().enumerate() {
            let bad = |message: String| PrivacyError::BadRegex {
                id: spec.id.to_string(),
                message,
            };
            let regex = Regex::new(&spec.pattern).map_err(|e| bad(e.to_string()))?;
            let value_group = spec.category != Category::Custom
                && regex.group_info().group_len(regex_automata::PatternID::ZERO) > 1;
            details.push(Detail {
                id: spec.id.clone(),
                category: spec.category,
                check: spec.check,
                regex,
                value_group,
                generic: matches!(spec.check, Check::Assignment | Check::Bearer),
            });
            match triggers
                .iter_mut()
                .find(|t| spec.family.is_some() && t.family == spec.family)
            {
                Some(t) => t.details.push(i),
                None => {
                    let hir = spec.trigger.clone().map_err(bad)?;
                    triggers.push(Trig {
                        anchor: spec.anchor,
                        details: vec![i],
                        regex: Regex::builder()
                            .build_from_hir(&hir)
                            .map_err(|e| bad(e.to_string()))?,
                        family: spec.family,
                    });
                    let starts = first_bytes(&hir);
                    for (b, list) in by_first_byte.iter_mut().enumerate() {
                        if starts[b] {
                            list.push(triggers.len() - 1);
                        }
                    }
                    trigger_hirs.push(hir);
                }
            }
        }
        let config = Regex::config()
            .which_captures(WhichCaptures::Implicit)
            .hybrid_cache_capacity(CACHE_CAPACITY);
        let triggers_all = Regex::builder()
            .configure(config)
            .build_many_from_hir(&trigger_hirs)
            .map_err(|e| PrivacyError::TooLarge {
                message: e.to_string(),
            })?;
        Ok(Scanner {
            triggers_all,
            triggers,
            by_first_byte,
            details,
            detectors,
        })
    }

    /// Every detector (built-in and custom) with its category, each id once, in priority order.
    pub fn detectors(&self) -> impl Iterator<Item = (&str, Category)> {
        self.detectors.iter().map(|(id, c)| (id.as_str(), *c))
    }

    /// All findings in `text`: validated, non-overlapping, sorted by start.
    pub fn scan(&self, text: &str) -> Vec<Finding> {
        let mut out = Vec::new();
        self.each(text, |f| {
            out.push(f);
            true
        });
        out
    }

    /// Whether [`Scanner::scan`] would find anything; stops at the first finding.
    pub fn has_findings(&self, text: &str) -> bool {
        let mut any = false;
        self.each(text, |_| {
            any = true;
            false
        });
        any
    }

    /// Calls `emit` for each finding in order until it returns false.
    fn each(&self, text: &str, mut emit: impl FnMut(Finding) -> bool) {
        // `floor`: end of the last finding; no anchor may reach back before it.
        let (mut pos, mut floor) = (0, 0);
        // Per trigger, the end of its last matched-but-rejected candidate: the same trigger firing
        // again inside it is not retried, which keeps hostile runs (`sk-sk-sk-…`) linear.
        let mut suppressed = vec![0usize; self.triggers.len()];
        while pos < text.len() {
            let Some(m) = self.triggers_all.search(&Input::new(text).range(pos..)) else {
                return;
            };
            let (at, first) = (m.start(), m.pattern().as_usize());
            match self.confirm(text, at, first..self.triggers.len(), floor, &mut suppressed) {
                Some(f) => {
                    (pos, floor) = (f.end, f.end);
                    if !emit(f) {
                        return;
                    }
                }
                None => pos = self.resume(text, at, first),
            }
        }
    }

    /// Where to search again after the trigger `first` fired at `at` and nothing was found there.
    fn resume(&self, text: &str, at: usize, first: usize) -> usize {
        let b = text.as_bytes();
        let next = next_char(text, at);
        match self.triggers.get(first).map(|t| t.anchor) {
            // Digit patterns start at a word boundary: nothing starts inside this run of digits.
            Some(Anchor::Digits) => (at..b.len())
                .find(|&i| !b[i].is_ascii_digit())
                .unwrap_or(b.len())
                .max(next),
            // `x@y`: past the `@`.
            Some(Anchor::LocalPart) => (at + 2).min(b.len()).max(next),
            _ => next,
        }
    }

    /// Tries the triggers in `range` that match at `at`, in priority order, and their full patterns
    /// at their anchors; the first candidate that passes its check is the finding.
    fn confirm(
        &self,
        text: &str,
        at: usize,
        range: Range<usize>,
        floor: usize,
        suppressed: &mut [usize],
    ) -> Option<Finding> {
        let byte = usize::from(*text.as_bytes().get(at)?);
        let first = range.start;
        // The trigger that fired, then the others that can start with this byte.
        let others = self.by_first_byte.get(byte)?.iter().copied();
        let candidates = std::iter::once(first).chain(others.filter(|&ti| ti > first && ti < range.end));
        for ti in candidates {
            let t = self.triggers.get(ti)?;
            let also = || {
                t.regex
                    .is_match(Input::new(text).range(at..).anchored(Anchored::Yes))
            };
            if at < suppressed.get(ti).copied().unwrap_or(0) || (ti != first && !also()) {
                continue;
            }
            for anchor in anchors(t.anchor, text, at, floor).into_iter().flatten() {
                for &di in &t.details {
                    let d = self.details.get(di)?;
                    let Some((whole, value)) = d.anchored(text, anchor) else {
                        continue;
                    };
                    if let Some(span) = validate::run(d.check, &Candidate { text, value }) {
                        if d.generic {
                            if let Some(f) = self.specific(text, span.clone()) {
                                return Some(f);
                            }
                        }
                        return Some(Finding {
                            detector: d.id.clone(),
                            category: d.category,
                            start: span.start,
                            end: span.end,
                        });
                    }
                    if t.anchor == Anchor::Start {
                        if let Some(s) = suppressed.get_mut(ti) {
                            *s = (*s).max(whole.end);
                        }
                    }
                }
            }
        }
        None
    }

    /// A known key format at the start of a generic rule's value (`OPENAI_API_KEY=sk-…` is an
    /// `openai_key`, not just a `password_assignment`).
    fn specific(&self, text: &str, value: Range<usize>) -> Option<Finding> {
        let input = Input::new(text).range(value.start..).anchored(Anchored::Yes);
        let ti = self.triggers_all.search(&input)?.pattern().as_usize();
        let t = self.triggers.get(ti)?;
        let own_secret = t.family.is_none()
            && t.details.iter().all(|&d| {
                self.details
                    .get(d)
                    .is_some_and(|d| d.category == Category::Secret)
            });
        if !own_secret {
            return None;
        }
        let f = self.confirm(text, value.start, ti..ti + 1, value.start, &mut [])?;
        (f.end <= value.end).then_some(f)
    }
}

impl Detail {
    /// The pattern's match anchored at `at`: the whole span and the value span (group 1 if the
    /// pattern has one, else the whole match).
    fn anchored(&self, text: &str, at: usize) -> Option<(Range<usize>, Range<usize>)> {
        let mut slots = [None::<NonMaxUsize>; 4];
        let input = Input::new(text).range(at..).anchored(Anchored::Yes);
        let n = if self.value_group { 4 } else { 2 };
        self.regex.search_slots(&input, &mut slots[..n])?;
        let span = |i: usize| Some(slots[i]?.get()..slots[i + 1]?.get());
        let whole = span(0)?;
        let value = if self.value_group {
            span(2).unwrap_or(whole.clone())
        } else {
            whole.clone()
        };
        Some((whole, value))
    }
}

/// Where a trigger's full patterns are tried: up to two positions, never before `floor`.
fn anchors(anchor: Anchor, text: &str, at: usize, floor: usize) -> [Option<usize>; 2] {
    let b = text.as_bytes();
    let back = |ok: fn(u8) -> bool, max: usize| {
        let mut i = at;
        while i > floor && at - i < max && ok(b[i - 1]) {
            i -= 1;
        }
        i
    };
    match anchor {
        Anchor::Start => [Some(at), None],
        Anchor::Scheme => {
            let start = back(|c| c.is_ascii_alphanumeric() || b"+.-".contains(&c), 21);
            [(start < at).then_some(start), None]
        }
        // `at` is the last character of the local part; the part may go back 64 bytes in all.
        Anchor::LocalPart => [
            Some(back(|c| c.is_ascii_alphanumeric() || b"._%+-".contains(&c), 63)),
            None,
        ],
        Anchor::Digits => {
            let sign = at > floor && matches!(b.get(at.wrapping_sub(1)), Some(b'+' | b'('));
            [sign.then(|| at - 1), Some(at)]
        }
    }
}

/// The next char boundary after `i`.
fn next_char(text: &str, i: usize) -> usize {
    (i + 1..=text.len())
        .find(|&j| text.is_char_boundary(j))
        .unwrap_or(text.len())
}

fn validate_id(id: &str) -> Result<(), PrivacyError> {
    let ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(PrivacyError::BadId { id: id.to_string() })
    }
}

/// A custom rule's patterns: its regex as written, and its terms as one case-insensitive alternation.
fn custom_patterns(rule: &CustomRule) -> Result<Vec<(String, Check)>, PrivacyError> {
    let id = || rule.id.clone();
    let mut out = Vec::new();
    if let Some(re) = &rule.regex {
        let hir = syntax::parse(re).map_err(|e| PrivacyError::BadRegex {
            id: id(),
            message: e.to_string(),
        })?;
        if hir.properties().minimum_len().unwrap_or(0) == 0 {
            return Err(PrivacyError::EmptyMatch { id: id() });
        }
        out.push((re.clone(), Check::None));
    }
    if !rule.terms.is_empty() {
        let mut alts = Vec::with_capacity(rule.terms.len());
        for (index, term) in rule.terms.iter().enumerate() {
            let words: Vec<String> = term.split_whitespace().map(escape).collect();
            if words.is_empty() {
                return Err(PrivacyError::BlankTerm { id: id(), index });
            }
            alts.push(words.join(r"\s+"));
        }
        out.push((format!("(?i:{})", alts.join("|")), Check::Term));
    }
    if out.is_empty() {
        return Err(PrivacyError::EmptyRule { id: id() });
    }
    Ok(out)
}

/// Escapes regex meta characters so a term matches literally.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 2);
    for c in s.chars() {
        if r"\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A custom pattern's trigger: the pattern without its Unicode word-boundary assertions. It matches
/// wherever the pattern does (and a little more), and unlike the pattern it lets the lazy DFA run on
/// non-ASCII text, where a Unicode `\b` would send the whole search to a far slower engine. The
/// pattern itself, exactly as written, runs where the trigger fires.
fn relax(hir: &Hir) -> Hir {
    match hir.kind() {
        HirKind::Look(look) if unicode_word_look(*look) => Hir::empty(),
        HirKind::Concat(subs) => Hir::concat(subs.iter().map(relax).collect()),
        HirKind::Alternation(subs) => Hir::alternation(subs.iter().map(relax).collect()),
        HirKind::Repetition(rep) => Hir::repetition(Repetition {
            sub: Box::new(relax(&rep.sub)),
            ..rep.clone()
        }),
        HirKind::Capture(cap) => Hir::capture(Capture {
            sub: Box::new(relax(&cap.sub)),
            ..cap.clone()
        }),
        _ => hir.clone(),
    }
}

fn unicode_word_look(look: Look) -> bool {
    matches!(
        look,
        Look::WordUnicode
            | Look::WordUnicodeNegate
            | Look::WordStartUnicode
            | Look::WordEndUnicode
            | Look::WordStartHalfUnicode
            | Look::WordEndHalfUnicode
    )
}

/// Which bytes a match of `hir` can begin with, whatever precedes it. Computed from the first
/// transition of a lazy DFA in each look-behind context; all bytes if that DFA cannot be built.
fn first_bytes(hir: &Hir) -> [bool; 256] {
    let mut out = [false; 256];
    let nfa = match thompson::Compiler::new().build_from_hir(hir) {
        Ok(nfa) => nfa,
        Err(_) => return [true; 256],
    };
    let dfa = match DFA::builder()
        .configure(DFA::config().starts_for_each_pattern(false))
        .build_from_nfa(nfa)
    {
        Ok(dfa) => dfa,
        Err(_) => return [true; 256],
    };
    let mut cache = dfa.create_cache();
    for before in ["", "a", " ", "\n", "\u{e9}"] {
        let input = Input::new(before).range(before.len()..).anchored(Anchored::Yes);
        let Ok(start) = dfa.start_state_forward(&mut cache, &input) else {
            return [true; 256];
        };
        for (b, slot) in out.iter_mut().enumerate() {
            match dfa.next_state(&mut cache, start, b as u8) {
                Ok(s) if s.is_dead() => {}
                _ => *slot = true,
            }
        }
    }
    out
}
