//! Checks for numbers: payment cards (Luhn, issuer prefixes and lengths, grouping), IBANs (country
//! length, mod-97), US SSNs (never-issued ranges) and phone numbers (digit counts, separators), plus
//! the context rules that keep them from firing on pieces of longer numbers, hex dumps and tables.

use std::ops::Range;

use super::Candidate;

/// Digits-and-separators candidates must not be a piece of a longer number, version or date.
fn digits_isolated(c: &Candidate<'_>, span: &Range<usize>) -> bool {
    let before = c.byte_before(span.start);
    let after = c.byte_at(span.end);
    let after2 = c.byte_at(span.end + 1);
    let before2 = span.start.checked_sub(1).and_then(|i| c.byte_before(i));
    let digit = |b: Option<u8>| matches!(b, Some(x) if x.is_ascii_digit());
    // Glued to a word or a sign, or joined to more digits by `.`, `-`, `/` or `:` (a CSV comma is fine).
    let glued_before = matches!(before, Some(b) if b.is_ascii_alphanumeric() || b == b'_' || b == b'+');
    let joined_before = matches!(before, Some(b'.' | b'-' | b'/' | b':')) && digit(before2);
    let glued_after = matches!(after, Some(b) if b.is_ascii_alphanumeric() || b == b'_');
    let joined_after = matches!(after, Some(b'.' | b'-' | b'/' | b':')) && digit(after2);
    !(glued_before || joined_before || glued_after || joined_after)
}

/// Whether the span sits among space-separated groups of four hex digits, as in an `xxd` dump row:
/// two such groups on one side, or one on each.
fn in_hex_dump(c: &Candidate<'_>, span: &Range<usize>) -> bool {
    let b = c.text.as_bytes();
    let group = |at: usize| at + 4 <= b.len() && b[at..at + 4].iter().all(u8::is_ascii_hexdigit);
    // Groups right after `end` (each ` xxxx`), and right before `start` (each `xxxx `).
    let after =
        |n: usize| (0..n).all(|k| b.get(span.end + 5 * k) == Some(&b' ') && group(span.end + 5 * k + 1));
    let before = |n: usize| {
        (1..=n).all(|k| span.start >= 5 * k && b[span.start - 5 * k + 4] == b' ' && group(span.start - 5 * k))
    };
    after(2) || before(2) || (after(1) && before(1))
}

pub(super) fn phone(c: &Candidate<'_>) -> Option<Range<usize>> {
    let v = c.value_str();
    let digits = v.bytes().filter(u8::is_ascii_digit).count();
    let international = v.starts_with('+');
    let (min, max) = if international { (8, 15) } else { (10, 11) };
    if !(min..=max).contains(&digits) || !digits_isolated(c, &c.value) || in_hex_dump(c, &c.value) {
        return None;
    }
    // One more group a space away means a longer run: code points, tables, byte dumps (`03 01 00`).
    let b = c.text.as_bytes();
    let alnum = |ch: char| ch.is_ascii_alphanumeric();
    let token_before = c
        .text
        .get(..c.value.start.saturating_sub(1))
        .and_then(|t| t.rsplit(|ch| !alnum(ch)).next());
    let token_after = c
        .text
        .get((c.value.end + 1).min(b.len())..)
        .and_then(|t| t.split(|ch| !alnum(ch)).next());
    let group = |t: Option<&str>| {
        t.is_some_and(|t| {
            let digits = !t.is_empty() && t.bytes().all(|x| x.is_ascii_digit());
            let byte = t.len() == 2 && t.bytes().all(|x| x.is_ascii_hexdigit());
            digits || byte
        })
    };
    if (c.byte_before(c.value.start) == Some(b' ') && group(token_before))
        || (c.byte_at(c.value.end) == Some(b' ') && group(token_after))
    {
        return None;
    }
    let groups: Vec<&str> = v
        .split(|ch: char| !ch.is_ascii_digit())
        .filter(|g| !g.is_empty())
        .collect();
    // `+12345-03-04`: a date with an extended year.
    if international
        && groups.len() == 3
        && v.matches('-').count() == 2
        && groups[1..].iter().all(|g| g.len() <= 2)
    {
        return None;
    }
    // +1 is the North American plan: exactly ten digits after it, area code and exchange from 2-9.
    if let Some(rest) = v.strip_prefix("+1") {
        let d: Vec<u8> = rest.bytes().filter(u8::is_ascii_digit).collect();
        if d.len() != 10 || d[0] < b'2' || d[3] < b'2' {
            return None;
        }
    }
    // `252.227-7013`: a North American number keeps one separator.
    if !international && !v.starts_with(['0', '(']) {
        let seps: Vec<u8> = v.bytes().filter(|x| matches!(x, b' ' | b'.' | b'-')).collect();
        if seps.windows(2).any(|w| w[0] != w[1]) {
            return None;
        }
    }
    // Separators: never two in a row (other than ") "), parentheses balanced and holding digits only.
    let b = v.as_bytes();
    let sep = |x: u8| matches!(x, b' ' | b'.' | b'-');
    if b.windows(2).any(|w| sep(w[0]) && sep(w[1])) {
        return None;
    }
    let (open, close) = (v.matches('(').count(), v.matches(')').count());
    if open != close || open > 1 || (open == 1 && v.find('(') > v.find(')')) {
        return None;
    }
    // A dot next to a long digit group is a decimal point (coordinates: `+48.856613 2.352222`).
    if v.contains('.') && v.split(|ch: char| !ch.is_ascii_digit()).any(|g| g.len() >= 5) {
        return None;
    }
    // Dotted numbers with 3+ dots are versions or addresses unless grouped like a phone.
    if v.matches('.').count() >= 3 && !international && !v.starts_with('0') {
        return None;
    }
    Some(c.value.clone())
}

fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

/// Known issuer prefixes and the lengths each issues.
fn issuer_ok(d: &[u8]) -> bool {
    let n = d.len();
    let prefix = |k: usize| d.iter().take(k).fold(0u32, |acc, &x| acc * 10 + u32::from(x));
    let (p1, p2, p3, p4) = (prefix(1), prefix(2), prefix(3), prefix(4));
    match p1 {
        4 => matches!(n, 13 | 16 | 19),                             // Visa
        5 if (51..=55).contains(&p2) => n == 16,                    // Mastercard
        2 if (2221..=2720).contains(&p4) => n == 16,                // Mastercard 2-series
        2 if (2200..=2204).contains(&p4) => (16..=19).contains(&n), // Mir
        3 if p2 == 34 || p2 == 37 => n == 15,                       // Amex
        3 if (3528..=3589).contains(&p4) => (16..=19).contains(&n), // JCB
        3 if (300..=305).contains(&p3) || p4 == 3095 || matches!(p2, 36 | 38 | 39) => (14..=19).contains(&n), // Diners
        6 if p4 == 6011 || (644..=649).contains(&p3) || p2 == 65 => (16..=19).contains(&n), // Discover
        6 if p2 == 62 => (16..=19).contains(&n),                                            // UnionPay
        5 | 6 if matches!(p4, 5018 | 5020 | 5038 | 5893 | 6304 | 6759 | 6761 | 6762 | 6763) => {
            (13..=19).contains(&n) // Maestro
        }
        _ => false,
    }
}

/// Whether a plain number sits in a table of constants, hashes or IDs: another number of 13+ digits
/// within 40 bytes, with only separators in between, that is *not* a card (fails Luhn or has no
/// issuer prefix). In such tables one number in ~30 passes both checks by chance; in a list of real
/// cards, the neighbours pass too.
fn in_number_table(c: &Candidate<'_>, span: &Range<usize>) -> bool {
    let b = c.text.as_bytes();
    // Standalone numbers only: digits glued to letters (an IBAN, a hex hash) are something else.
    let window = |r: &[u8]| {
        r.split(|x| !x.is_ascii_alphanumeric()).any(|tok| {
            let d: Vec<u8> = tok.iter().map(|x| x.wrapping_sub(b'0')).collect();
            d.len() >= 13 && d.iter().all(|&x| x <= 9) && !(luhn(&d) && issuer_ok(&d))
        })
    };
    // Whole tokens only: widen each window to the edge of the token it cuts.
    let mut lo = span.start.saturating_sub(40);
    while lo > 0 && b[lo - 1].is_ascii_alphanumeric() {
        lo -= 1;
    }
    let mut hi = (span.end + 40).min(b.len());
    while hi < b.len() && b[hi].is_ascii_alphanumeric() {
        hi += 1;
    }
    // Only numbers with nothing but separators in between: a word ends the table.
    let before = &b[lo..span.start];
    let before = &before[before
        .iter()
        .rposition(u8::is_ascii_alphabetic)
        .map_or(0, |i| i + 1)..];
    let after = &b[span.end..hi];
    let after = &after[..after
        .iter()
        .position(u8::is_ascii_alphabetic)
        .unwrap_or(after.len())];
    window(before) || window(after)
}

/// A card number, written plain or in groups (4-4-4-4, 4-6-5, …) with one kind of separator. A
/// trailing group that makes the checksum fail is dropped and the rest tried again.
pub(super) fn card(c: &Candidate<'_>) -> Option<Range<usize>> {
    let v = c.value_str();
    // Groups of digits and the separator after each (the last has none).
    let mut groups: Vec<(&str, Option<u8>)> = Vec::new();
    let mut rest = v;
    while !rest.is_empty() {
        let end = rest.find(|ch: char| !ch.is_ascii_digit()).unwrap_or(rest.len());
        let sep = rest.as_bytes().get(end).copied();
        groups.push((&rest[..end], sep));
        rest = rest.get(end + 1..).unwrap_or("");
    }
    for keep in (1..=groups.len()).rev() {
        let g = &groups[..keep];
        let len: usize = g.iter().map(|x| x.0.len()).sum();
        if !(13..=19).contains(&len) {
            continue;
        }
        let one_sep = g[..keep - 1].windows(2).all(|w| w[0].1 == w[1].1);
        let sizes: Vec<usize> = g.iter().map(|x| x.0.len()).collect();
        let grouped_ok = keep == 1
            || (sizes[..keep - 1].iter().all(|&n| n == 4) && sizes[keep - 1] <= 4)
            || (sizes.len() == 3 && sizes[0] == 4 && sizes[1] == 6 && (4..=5).contains(&sizes[2]));
        let digits: Vec<u8> = g.iter().flat_map(|x| x.0.bytes()).map(|b| b - b'0').collect();
        let span = c.value.start..c.value.start + len + (keep - 1);
        let table = keep == 1 && in_number_table(c, &span);
        if one_sep
            && grouped_ok
            && !table
            && luhn(&digits)
            && issuer_ok(&digits)
            && digits_isolated(c, &span)
            && !in_hex_dump(c, &span)
        {
            return Some(span);
        }
    }
    None
}

/// IBAN length by country (ISO 13616 registry), as country code and length.
const IBAN_LENGTHS: &str = "AD24 AE23 AL28 AT20 AZ28 BA20 BE16 BG22 BH22 BR29 BY28 CH21 CR22 CY28 CZ24 DE22 DK18 \
    DO28 EE20 EG29 ES24 FI18 FO18 FR27 GB22 GE22 GI23 GL18 GR27 GT28 HR21 HU28 IE22 IL23 IQ23 IS26 IT27 JO30 KW30 \
    KZ20 LB28 LC32 LI21 LT20 LU20 LV21 MC27 MD24 ME22 MK19 MR27 MT31 MU30 NL18 NO15 PK24 PL28 PS29 PT25 QA29 RO24 \
    RS22 SA24 SC31 SE24 SI19 SK24 SM27 ST25 SV28 TL23 TN24 TR26 UA29 VA22 VG24 XK20";

fn iban_len(cc: &str) -> Option<usize> {
    IBAN_LENGTHS
        .split_whitespace()
        .find(|e| e.get(..2) == Some(cc))
        .and_then(|e| e.get(2..)?.parse().ok())
}

fn iban_mod97(chars: &[u8]) -> bool {
    // Move the first four characters to the end, letters to 10..35, and reduce mod 97 as we go.
    let mut rem: u32 = 0;
    for &ch in chars[4..].iter().chain(&chars[..4]) {
        let v = match ch {
            b'0'..=b'9' => u32::from(ch - b'0'),
            b'A'..=b'Z' => u32::from(ch - b'A') + 10,
            _ => return false,
        };
        rem = if v >= 10 {
            (rem * 100 + v) % 97
        } else {
            (rem * 10 + v) % 97
        };
    }
    rem == 1
}

/// The country fixes the length, so the span is cut to exactly that many characters (a greedy match
/// may have run into a following word); spaced IBANs must be grouped by four.
pub(super) fn iban(c: &Candidate<'_>) -> Option<Range<usize>> {
    let v = c.value_str();
    let want = iban_len(v.get(..2)?)?;
    let spaced = v.as_bytes().get(4) == Some(&b' ');
    let mut chars = Vec::with_capacity(want);
    let mut end = 0;
    for (i, b) in v.bytes().enumerate() {
        if b == b' ' {
            // Groups of four: a space may only follow the 4th, 8th, … character.
            if !spaced || chars.len() % 4 != 0 {
                return None;
            }
            continue;
        }
        chars.push(b);
        end = i + 1;
        if chars.len() == want {
            break;
        }
    }
    if chars.len() != want || !iban_mod97(&chars) {
        return None;
    }
    let span = c.value.start..c.value.start + end;
    matches!(
        c.byte_at(span.end),
        None | Some(b' ' | b'\n' | b'\r' | b'\t' | b',' | b';' | b'.' | b')' | b'"' | b'\'' | b'<')
    )
    .then_some(span)
}

pub(super) fn ssn(c: &Candidate<'_>) -> bool {
    let v = c.value_str();
    let d: Vec<u32> = v
        .bytes()
        .filter(u8::is_ascii_digit)
        .map(|b| u32::from(b - b'0'))
        .collect();
    if d.len() != 9 {
        return false;
    }
    let area = d[0] * 100 + d[1] * 10 + d[2];
    let group = d[3] * 10 + d[4];
    let serial = d[5] * 1000 + d[6] * 100 + d[7] * 10 + d[8];
    let known_fake = matches!(v, "078-05-1120" | "123-45-6789" | "219-09-9999");
    area != 0
        && area != 666
        && area < 900
        && group != 0
        && serial != 0
        && !known_fake
        && digits_isolated(c, &c.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums() {
        assert!(luhn(&[4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1]));
        assert!(!luhn(&[4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2]));
        assert!(iban_mod97(b"DE89370400440532013000"));
        assert!(iban_mod97(b"GB82WEST12345698765432"));
        assert!(!iban_mod97(b"GB82WEST12345698765433"));
        assert_eq!(iban_len("DE"), Some(22));
        assert_eq!(iban_len("XK"), Some(20));
        assert_eq!(iban_len("US"), None);
    }

    #[test]
    fn issuers() {
        let d = |s: &str| s.bytes().map(|b| b - b'0').collect::<Vec<u8>>();
        assert!(issuer_ok(&d("4111111111111111")));
        assert!(issuer_ok(&d("378282246310005")));
        assert!(issuer_ok(&d("2221000000000009")));
        assert!(!issuer_ok(&d("1234567812345670")));
        assert!(!issuer_ok(&d("37828224631000")));
    }
}
