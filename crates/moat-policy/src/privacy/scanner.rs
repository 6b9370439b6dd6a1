//! The compiled scanner: every detector's pattern in one multi-pattern automaton, and the loop that
//! turns its matches into validated, non-overlapping findings.
//!
//! The search is leftmost-first over all patterns at once, so a clean prompt costs one pass of a lazy
//! DFA. At a match, the patterns that could start there are tried in priority order (each on its own,
//! anchored, with its capture group) until one passes its check. If none does, the search resumes one
//! character later, so a near-miss (a number failing Luhn) does not hide a real finding inside it; a
//! work budget keeps hostile input, dense with near-misses, linear: once spent, the search skips past
//! failed candidates instead.

use regex_automata::hybrid::dfa::DFA;
use regex_automata::meta::Regex;
use regex_automata::nfa::thompson::WhichCaptures;
use regex_automata::util::primitives::NonMaxUsize;
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input};

use super::detectors::{self, Builtin, Check};
use super::validate::{self, Candidate};
use super::{Category, CustomRule, DetectorId, Finding, PrivacyError};

/// How many bytes of failed candidates may be re-scanned, per byte of text, before the search stops
/// looking inside failed candidates. Typical prompts use a tiny fraction of it.
const RESCAN_PER_BYTE: usize = 4;
/// ... plus this much for any text, so short prompts always get the thorough search.
const RESCAN_BASE: usize = 64 * 1024;

/// One pattern of the combined automaton.
struct Pattern {
    id: DetectorId,
    category: Category,
    check: Check,
    /// The same pattern alone, for the anchored confirmation that reads its capture group.
    single: Regex,
    /// Whether capture group 1 holds the sensitive value (else the whole match is).
    value_group: bool,
    /// Bytes a match of this pattern can start with (conservative), to skip hopeless anchored tries.
    first_bytes: [bool; 256],
    /// A generic credential rule (`password = …`, `Bearer …`) whose value may be a known key format,
    /// in which case the more specific detector is reported.
    generic: bool,
}

/// The privacy scanner: built once from the config, shared by all requests (it is `Send + Sync`;
/// the automaton's scratch space comes from an internal pool).
pub struct Scanner {
    all: Regex,
    patterns: Vec<Pattern>,
    detectors: Vec<(DetectorId, Category)>,
}

impl std::fmt::Debug for Scanner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scanner")
            .field("detectors", &self.detectors)
            .finish_non_exhaustive()
    }
}

impl Scanner {
    /// Compiles the built-in detectors and `custom` rules. A bad rule is an error naming its id.
    pub fn new(custom: &[CustomRule]) -> Result<Scanner, PrivacyError> {
        let mut specs: Vec<(DetectorId, Category, String, Check)> = Vec::new();
        let builtin = |b: &Builtin| {
            (
                DetectorId::builtin(b.id),
                b.category,
                format!("(?-u){}", b.pattern),
                b.check,
            )
        };
        specs.extend(detectors::SECRETS.iter().map(builtin));
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
                specs.push((id.clone(), Category::Custom, pattern, check));
            }
        }
        specs.extend(detectors::PERSONAL.iter().map(builtin));

        let mut patterns = Vec::with_capacity(specs.len());
        for (id, category, pattern, check) in &specs {
            let single = Regex::new(pattern).map_err(|e| PrivacyError::BadRegex {
                id: id.to_string(),
                message: e.to_string(),
            })?;
            let value_group = *category != Category::Custom
                && single.group_info().group_len(regex_automata::PatternID::ZERO) > 1;
            patterns.push(Pattern {
                id: id.clone(),
                category: *category,
                check: *check,
                single,
                value_group,
                first_bytes: first_bytes(pattern),
                generic: matches!(check, Check::Assignment | Check::Bearer),
            });
        }
        let all = Regex::builder()
            .configure(Regex::config().which_captures(WhichCaptures::Implicit))
            .build_many(&specs.iter().map(|s| s.2.as_str()).collect::<Vec<_>>())
            .map_err(|e| PrivacyError::TooLarge {
                message: e.to_string(),
            })?;
        Ok(Scanner {
            all,
            patterns,
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
        let mut pos = 0;
        let mut budget = text
            .len()
            .saturating_mul(RESCAN_PER_BYTE)
            .saturating_add(RESCAN_BASE);
        while pos < text.len() {
            let Some(m) = self.all.search(&Input::new(text).range(pos..)) else {
                return;
            };
            if let Some(f) = self.confirm(text, m.start(), m.pattern().as_usize(), self.patterns.len()) {
                pos = f.end;
                if !emit(f) {
                    return;
                }
                continue;
            }
            let next = next_char(text, m.start());
            let cost = m.end() - m.start();
            if budget >= cost {
                budget -= cost;
                pos = next;
            } else {
                pos = m.end().max(next);
            }
        }
    }

    /// Tries patterns `first..last` anchored at `at`, in priority order; the first that passes its
    /// check gives the finding.
    fn confirm(&self, text: &str, at: usize, first: usize, last: usize) -> Option<Finding> {
        let byte = usize::from(*text.as_bytes().get(at)?);
        for p in self
            .patterns
            .get(first..last)?
            .iter()
            .filter(|p| p.first_bytes[byte])
        {
            let Some(value) = p.anchored(text, at) else {
                continue;
            };
            let cand = Candidate { text, value };
            let Some(span) = validate::run(p.check, &cand) else {
                continue;
            };
            if p.generic {
                if let Some(specific) = self.specific(text, span.clone()) {
                    return Some(specific);
                }
            }
            return Some(Finding {
                detector: p.id.clone(),
                category: p.category,
                start: span.start,
                end: span.end,
            });
        }
        None
    }

    /// A known key format at the start of a generic rule's value (`OPENAI_API_KEY=sk-…` is an
    /// `openai_key`, not just a `password_assignment`).
    fn specific(&self, text: &str, value: std::ops::Range<usize>) -> Option<Finding> {
        let m = self
            .all
            .search(&Input::new(text).range(value.start..).anchored(Anchored::Yes))?;
        let pid = m.pattern().as_usize();
        let p = self.patterns.get(pid)?;
        if p.category != Category::Secret || p.generic || m.end() > value.end {
            return None;
        }
        self.confirm(text, value.start, pid, pid + 1)
    }
}

impl Pattern {
    /// The pattern's match anchored at `at`: the span of its value (group 1, else the whole match).
    fn anchored(&self, text: &str, at: usize) -> Option<std::ops::Range<usize>> {
        let mut slots = [None::<NonMaxUsize>; 4];
        let input = Input::new(text).range(at..).anchored(Anchored::Yes);
        let n = if self.value_group { 4 } else { 2 };
        self.single.search_slots(&input, &mut slots[..n])?;
        let span = |i: usize| Some(slots[i]?.get()..slots[i + 1]?.get());
        let whole = span(0)?;
        Some(if self.value_group {
            span(2).unwrap_or(whole)
        } else {
            whole
        })
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

/// Which bytes a match of `pattern` can begin with, whatever precedes it. Computed from the first
/// transition of a lazy DFA in each look-behind context; all bytes if that DFA cannot be built (e.g.
/// a custom pattern with a Unicode word boundary).
fn first_bytes(pattern: &str) -> [bool; 256] {
    let mut out = [false; 256];
    let dfa = match DFA::builder()
        .configure(DFA::config().starts_for_each_pattern(false))
        .build(pattern)
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
