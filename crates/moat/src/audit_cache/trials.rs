//! The pure parts of the audit: random prompts, the interleaved trial plan, and the verdict.
//!
//! Prompts are words drawn from a fixed list, so each word is about one token with any tokenizer
//! and a fresh prompt shares no prefix with any earlier one (the chance that two 200-word prompts
//! start alike is nil). The randomness is a SplitMix64 stream: it needs to be unpredictable to a
//! provider's cache, not to an adversary.

/// Common short English words: about one token each.
const WORDS: &[&str] = &[
    "able", "acid", "aged", "also", "area", "army", "away", "baby", "back", "ball", "band", "bank", "base",
    "bath", "bear", "beat", "been", "beer", "bell", "belt", "best", "bill", "bird", "blow", "blue", "boat",
    "body", "bomb", "bond", "bone", "book", "boom", "born", "boss", "both", "bowl", "bulk", "burn", "bush",
    "busy", "call", "calm", "came", "camp", "card", "care", "case", "cash", "cast", "cell", "chat", "chip",
    "city", "club", "coal", "coat", "code", "cold", "come", "cook", "cool", "cope", "copy", "core", "cost",
    "crew", "crop", "dark", "data", "date", "dawn", "days", "dead", "deal", "dean", "dear", "debt", "deep",
    "deny", "desk", "dial", "diet", "disc", "disk", "does", "done", "door", "dose", "down", "draw", "drew",
    "drop", "drug", "dual", "duke", "dust", "duty", "each", "earn", "ease", "east", "easy", "edge", "else",
    "even", "ever", "evil", "exit", "face", "fact", "fail", "fair", "fall", "farm", "fast", "fate", "fear",
    "feed", "feel", "feet", "fell", "felt", "file", "fill", "film", "find", "fine", "fire", "firm", "fish",
    "five", "flat", "flow", "food", "foot", "ford", "form", "fort", "four", "free", "from", "fuel", "full",
    "fund", "gain", "game", "gate", "gave", "gear", "gene", "gift", "girl", "give", "glad", "goal", "goes",
    "gold", "golf", "gone", "good", "gray", "grew", "grey", "grow", "gulf", "hair", "half", "hall", "hand",
    "hang", "hard", "harm", "hate", "have", "head", "hear", "heat", "held", "hell", "help", "here", "hero",
    "high", "hill", "hire", "hold", "hole", "holy", "home", "hope", "host", "hour", "huge", "hung", "hunt",
    "hurt", "idea", "inch", "into", "iron", "item", "jack", "jane", "jean", "john", "join", "jump", "jury",
    "just", "keen", "keep", "kent", "kept", "kick", "kill", "kind", "king", "knee", "knew", "know", "lack",
    "lady", "laid", "lake", "land", "lane", "last", "late", "lead", "left", "less", "life", "lift", "like",
    "line", "link", "list", "live", "load", "loan", "lock", "long", "look", "lord", "lose", "loss", "lost",
    "love", "luck", "made", "mail", "main",
];

/// A SplitMix64 stream.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0); the modulo bias is irrelevant at these sizes.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n.max(1) as u64) as usize
    }

    /// A prompt of `words` random words.
    pub fn prompt(&mut self, words: usize) -> Vec<&'static str> {
        (0..words).map(|_| WORDS[self.below(WORDS.len())]).collect()
    }
}

/// The two kinds of trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A's prompt, then B's prompt sharing its first 95%: timed on B.
    Hit,
    /// A's prompt, then an unrelated fresh prompt from B: timed on B.
    Miss,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Hit => "hit",
            Kind::Miss => "miss",
        }
    }
}

/// `trials` of each kind in random order, so drift in the endpoint's load affects both alike.
pub fn plan(trials: usize, rng: &mut Rng) -> Vec<Kind> {
    let mut kinds: Vec<Kind> = std::iter::repeat_n(Kind::Hit, trials)
        .chain(std::iter::repeat_n(Kind::Miss, trials))
        .collect();
    for i in (1..kinds.len()).rev() {
        kinds.swap(i, rng.below(i + 1));
    }
    kinds
}

/// The prompts of one trial: A's, then B's. For a hit, B keeps the first 95% of A's words and
/// replaces the rest; for a miss, both are fresh (A's request still goes first, so both kinds see the
/// same load pattern).
pub fn prompts(kind: Kind, words: usize, rng: &mut Rng) -> (String, String) {
    let a = rng.prompt(words);
    let b = match kind {
        Kind::Hit => {
            let keep = shared_prefix_words(words);
            let mut b = a[..keep].to_vec();
            b.extend(rng.prompt(words - keep));
            b
        }
        Kind::Miss => rng.prompt(words),
    };
    (a.join(" "), b.join(" "))
}

/// 95% of the words, at least one fewer than all (so a hit is a prefix match, not a repeat).
pub fn shared_prefix_words(words: usize) -> usize {
    (words * 95 / 100).min(words.saturating_sub(1))
}

/// What the test says about the endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// p < 1e-8: hits are faster; the prompt cache is shared between the two keys.
    Shared,
    /// p > 0.01: no sign of sharing.
    Isolated,
    Inconclusive,
}

/// Gu et al.'s thresholds: a very small false-positive rate for "shared", a generous one for
/// "isolated", and honesty in between.
pub fn verdict(p_value: f64) -> Verdict {
    if p_value < 1e-8 {
        Verdict::Shared
    } else if p_value > 0.01 {
        Verdict::Isolated
    } else {
        Verdict::Inconclusive
    }
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Shared => "shared",
            Verdict::Isolated => "isolated",
            Verdict::Inconclusive => "inconclusive",
        }
    }

    /// The process exit code: 0 isolated, 3 shared, 4 inconclusive (1 and 2 stay errors).
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Isolated => 0,
            Verdict::Shared => 3,
            Verdict::Inconclusive => 4,
        }
    }
}

/// The median of a sample (0 for an empty one).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_interleave_equal_numbers() {
        let mut rng = Rng::new(1);
        let p = plan(40, &mut rng);
        assert_eq!(p.len(), 80);
        assert_eq!(p.iter().filter(|k| **k == Kind::Hit).count(), 40);
        // Shuffled: not all hits first.
        assert!(p[..40].contains(&Kind::Miss));
        assert_ne!(p, plan(40, &mut Rng::new(2)));
    }

    #[test]
    fn hit_prompts_share_95_percent_and_misses_share_nothing() {
        let mut rng = Rng::new(9);
        let (a, b) = prompts(Kind::Hit, 200, &mut rng);
        let (aw, bw): (Vec<&str>, Vec<&str>) = (a.split(' ').collect(), b.split(' ').collect());
        assert_eq!((aw.len(), bw.len()), (200, 200));
        assert_eq!(aw[..190], bw[..190]);
        assert_ne!(aw[190..], bw[190..]);
        let (a, b) = prompts(Kind::Miss, 200, &mut rng);
        assert_ne!(
            a.split(' ').take(3).collect::<Vec<_>>(),
            b.split(' ').take(3).collect::<Vec<_>>()
        );
        assert_eq!(shared_prefix_words(10), 9);
        assert_eq!(shared_prefix_words(1), 0);
    }

    #[test]
    fn verdict_thresholds() {
        assert_eq!(verdict(1e-9), Verdict::Shared);
        assert_eq!(verdict(1e-8), Verdict::Inconclusive);
        assert_eq!(verdict(0.01), Verdict::Inconclusive);
        assert_eq!(verdict(0.011), Verdict::Isolated);
        assert_eq!(Verdict::Shared.exit_code(), 3);
        assert_eq!(Verdict::Isolated.exit_code(), 0);
        assert_eq!(Verdict::Inconclusive.exit_code(), 4);
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert_eq!(median(&[]), 0.0);
    }
}
