//! Invisible characters: zero-width spaces and joiners, the soft hyphen, bidi controls, variation
//! selectors and Unicode tag characters render as nothing, so `AKIA\u{200B}Q3EG…` reads as a key to a
//! model and to the person who pasted it, but not to a pattern. They are taken out before matching;
//! tag characters (U+E0020–U+E007E, "ASCII smuggling") are read as the ASCII they shadow. Findings in
//! the normalised text map back to byte ranges of the original.

use std::borrow::Cow;

/// What an invisible character becomes in the normalised text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fate {
    Keep,
    Drop,
    /// A tag character, read as the ASCII character it shadows.
    Ascii(u8),
}

fn fate(c: char) -> Fate {
    match c {
        '\u{00AD}'
        | '\u{034F}'
        | '\u{061C}'
        | '\u{115F}'
        | '\u{1160}'
        | '\u{17B4}'
        | '\u{17B5}'
        | '\u{180B}'..='\u{180F}'
        | '\u{200B}'..='\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{206F}'
        | '\u{3164}'
        | '\u{FE00}'..='\u{FE0F}'
        | '\u{FEFF}'
        | '\u{FFA0}'
        | '\u{1D173}'..='\u{1D17A}'
        | '\u{E0001}'
        | '\u{E007F}'
        | '\u{E0100}'..='\u{E01EF}' => Fate::Drop,
        '\u{E0020}'..='\u{E007E}' => Fate::Ascii((u32::from(c) - 0xE0000) as u8),
        '\u{E0000}'..='\u{E0FFF}' => Fate::Drop,
        _ => Fate::Keep,
    }
}

/// A text with its invisible characters taken out, and where each of its bytes came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Normalized<'a> {
    pub(crate) text: Cow<'a, str>,
    /// For each byte of `text` (when it differs from the original): the original byte range of the
    /// character it belongs to.
    map: Option<Vec<(u32, u32)>>,
}

impl<'a> Normalized<'a> {
    /// Normalises `s`; borrows it unchanged (no allocation) when it holds no invisible character,
    /// which an ASCII text never does.
    pub(crate) fn new(s: &'a str) -> Normalized<'a> {
        if s.is_ascii() || !s.chars().any(|c| fate(c) != Fate::Keep) {
            return Normalized {
                text: Cow::Borrowed(s),
                map: None,
            };
        }
        let mut text = String::with_capacity(s.len());
        let mut map = Vec::with_capacity(s.len());
        for (i, c) in s.char_indices() {
            let span = (i as u32, (i + c.len_utf8()) as u32);
            match fate(c) {
                Fate::Keep => {
                    text.push(c);
                    map.extend(std::iter::repeat_n(span, c.len_utf8()));
                }
                Fate::Ascii(b) => {
                    text.push(char::from(b));
                    map.push(span);
                }
                Fate::Drop => {}
            }
        }
        Normalized {
            text: Cow::Owned(text),
            map: Some(map),
        }
    }

    /// An owned text (decoded content), normalised.
    pub(crate) fn owned(s: String) -> Normalized<'static> {
        let n = Normalized::new(&s);
        match n.map {
            None => Normalized {
                text: Cow::Owned(s),
                map: None,
            },
            map => Normalized {
                text: Cow::Owned(n.text.into_owned()),
                map,
            },
        }
    }

    /// Whether the text differs from the original.
    #[cfg(test)]
    pub(crate) fn changed(&self) -> bool {
        self.map.is_some()
    }

    /// The original byte range of the normalised range `start..end` (`start < end`): from the first
    /// character's start to the last one's end, so invisible characters inside it are covered too.
    pub(crate) fn original(&self, start: usize, end: usize) -> (usize, usize) {
        match &self.map {
            None => (start, end),
            Some(map) => {
                let first = map.get(start).map_or(0, |s| s.0 as usize);
                let last = end
                    .checked_sub(1)
                    .and_then(|i| map.get(i))
                    .map_or(first, |s| s.1 as usize);
                (first, last.max(first))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_and_plain_unicode_are_borrowed() {
        for s in ["plain text", "café 東京 ☃"] {
            let n = Normalized::new(s);
            assert!(matches!(n.text, Cow::Borrowed(_)) && !n.changed());
            assert_eq!(n.original(1, 3), (1, 3));
        }
    }

    #[test]
    fn invisible_characters_go_and_ranges_map_back() {
        let s = "key AKIA\u{200B}Q3EG\u{00AD}RT and \u{202E}x";
        let n = Normalized::new(s);
        assert_eq!(n.text, "key AKIAQ3EGRT and x");
        let at = n.text.find("AKIA").unwrap();
        let (a, b) = n.original(at, at + "AKIAQ3EGRT".len());
        assert_eq!(&s[a..b], "AKIA\u{200B}Q3EG\u{00AD}RT");
    }

    #[test]
    fn tag_characters_read_as_ascii() {
        let hidden: String = "sk-1"
            .chars()
            .map(|c| char::from_u32(0xE0000 + c as u32).unwrap())
            .collect();
        let s = format!("see {hidden}!");
        let n = Normalized::new(&s);
        assert_eq!(n.text, "see sk-1!");
        let (a, b) = n.original(4, 8);
        assert_eq!(&s[a..b], hidden);
    }
}
