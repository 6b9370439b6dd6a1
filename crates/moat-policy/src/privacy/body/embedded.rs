//! Content inside a string: `data:` URLs, and bare base64. Text inside (a `text/plain` file part, a
//! base64-encoded config) is decoded so it can be scanned, and written back the same way when a
//! redaction changes it. Binary content (an image, a PDF, audio) cannot be scanned and is reported
//! as opaque, with its media type, so the gateway can decide where it may go.

use super::super::validate::base64_decode;

/// Shortest bare base64 string worth decoding: shorter ones are ids and hashes, and too short to
/// hide anything a detector would find.
const MIN_BARE_BASE64: usize = 16;
/// Shortest binary base64 taken for a file in a typed object: shorter ones are ids
/// (`"file_id": "file-6F2ksmvXxt4VdoqmHRw6kL"` next to a `filename`), and too short to hold one.
const MIN_TYPED_BINARY: usize = 64;
/// How much of a base64 payload is decoded to tell text from binary before decoding all of it: an
/// image is rejected after one small piece however large it is.
const SNIFF_BYTES: usize = 4096;

/// How embedded content is written in its string, to write a changed text back the same way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Encoding {
    /// Everything before the payload (`data:text/plain;base64,`), empty for bare base64.
    prefix: String,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Base64 {
        url: bool,
        padded: bool,
    },
    /// A `data:` URL without `;base64`: percent-encoded.
    Percent,
}

/// What a string carries besides its own text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Embedded {
    Nothing,
    /// Decoded text, and how it was encoded.
    Text(String, Encoding),
    /// Binary content that cannot be scanned, with its declared media type.
    Opaque(String),
}

/// Classifies a string value. `typed` says its object declares a media type, file name or format
/// (`{"media_type": "image/png", "data": "iVBOR…"}`), which makes binary base64 in it a file rather
/// than an opaque id or signature.
pub(crate) fn classify(s: &str, typed: bool) -> Embedded {
    if s.len() > 5 && s.as_bytes()[..5].eq_ignore_ascii_case(b"data:") {
        return data_url(s);
    }
    if s.len() < MIN_BARE_BASE64 || !bare_base64(s) {
        return Embedded::Nothing;
    }
    let (url, padded) = (s.contains(['-', '_']), s.ends_with('='));
    match decode_text(s, url) {
        Ok(text) => Embedded::Text(
            text,
            Encoding {
                prefix: String::new(),
                kind: Kind::Base64 { url, padded },
            },
        ),
        Err(()) if typed && s.len() >= MIN_TYPED_BINARY => Embedded::Opaque("binary data".to_owned()),
        Err(()) => Embedded::Nothing,
    }
}

/// `data:[<media type>][;param…][;base64],<payload>` (RFC 2397).
fn data_url(s: &str) -> Embedded {
    let Some(comma) = s.find(',') else {
        return Embedded::Nothing;
    };
    let (head, payload) = (&s[5..comma], &s[comma + 1..]);
    let mut params = head.split(';');
    let media_type = params.next().unwrap_or("").trim().to_ascii_lowercase();
    let media_type = if media_type.is_empty() {
        "text/plain".to_owned()
    } else {
        media_type
    };
    let base64 = params.any(|p| p.trim().eq_ignore_ascii_case("base64"));
    let prefix = s[..=comma].to_owned();
    if base64 {
        let compact: String;
        let payload = if payload.contains(['\r', '\n', ' ']) {
            compact = payload.chars().filter(|c| !c.is_ascii_whitespace()).collect();
            compact.as_str()
        } else {
            payload
        };
        let url = payload.contains(['-', '_']);
        let padded = payload.ends_with('=');
        return match decode_text(payload, url) {
            Ok(text) => Embedded::Text(
                text,
                Encoding {
                    prefix,
                    kind: Kind::Base64 { url, padded },
                },
            ),
            Err(()) => Embedded::Opaque(media_type),
        };
    }
    match percent_decode(payload).and_then(|b| String::from_utf8(b).ok()) {
        Some(text) if printable(&text) => Embedded::Text(
            text,
            Encoding {
                prefix,
                kind: Kind::Percent,
            },
        ),
        _ => Embedded::Opaque(media_type),
    }
}

/// Only base64 characters (either alphabet, not both), with at most two `=` at the end.
fn bare_base64(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    if s.len() - body.len() > 2 {
        return false;
    }
    let (mut std, mut url) = (false, false);
    for b in body.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' => {}
            b'+' | b'/' => std = true,
            b'-' | b'_' => url = true,
            _ => return false,
        }
    }
    !(std && url)
}

/// Base64 that decodes to printable UTF-8 text; `Err` for anything else (binary, or not base64).
fn decode_text(payload: &str, url: bool) -> Result<String, ()> {
    let body = payload.trim_end_matches('=');
    // A first piece decides most payloads (an image header is binary) without decoding megabytes.
    let sniff = body.get(..body.len().min(SNIFF_BYTES / 4 * 4)).ok_or(())?;
    let head = base64_decode(sniff, url).ok_or(())?;
    if !printable_prefix(&head) {
        return Err(());
    }
    let bytes = if sniff.len() == body.len() {
        head
    } else {
        base64_decode(body, url).ok_or(())?
    };
    let text = String::from_utf8(bytes).map_err(|_| ())?;
    if printable(&text) {
        Ok(text)
    } else {
        Err(())
    }
}

/// Text a person or a program would write: no control characters but tab, line feed, carriage
/// return and form feed.
fn printable(s: &str) -> bool {
    !s.chars()
        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\x0c'))
}

/// As [`printable`] for the start of a payload, which may end inside a UTF-8 sequence.
fn printable_prefix(b: &[u8]) -> bool {
    let valid = match std::str::from_utf8(b) {
        Ok(s) => s,
        // Cut inside a character at the end: judge what is complete.
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&b[..e.valid_up_to()]).unwrap_or(""),
        Err(_) => return false,
    };
    printable(valid)
}

fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

impl Encoding {
    /// `text` written back as the string it was found in.
    pub(crate) fn encode(&self, text: &str) -> String {
        let mut out = self.prefix.clone();
        match self.kind {
            Kind::Base64 { url, padded } => base64_encode(text.as_bytes(), url, padded, &mut out),
            Kind::Percent => {
                for &b in text.as_bytes() {
                    if b.is_ascii_alphanumeric() || b"-._~ ".contains(&b) {
                        out.push(char::from(b));
                    } else {
                        out.push_str(&format!("%{b:02X}"));
                    }
                }
            }
        }
        out
    }
}

fn base64_encode(bytes: &[u8], url: bool, padded: bool, out: &mut String) {
    let alphabet: &[u8; 64] = if url {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    } else {
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    };
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &x)| acc | (u32::from(x) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(alphabet[((n >> (18 - 6 * i)) & 63) as usize]));
        }
        if padded {
            for _ in chunk.len()..3 {
                out.push('=');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &[u8]) -> String {
        let mut out = String::new();
        base64_encode(s, false, true, &mut out);
        out
    }

    #[test]
    fn text_data_urls_are_decoded_and_written_back() {
        let url = format!("data:text/plain;base64,{}", b64(b"key: AKIAQ3EGRTPRZ5J4KF6D"));
        let Embedded::Text(text, enc) = classify(&url, false) else {
            panic!("not text")
        };
        assert_eq!(text, "key: AKIAQ3EGRTPRZ5J4KF6D");
        assert_eq!(enc.encode(&text), url);
        let Embedded::Text(text, enc) = classify("data:,a%20b%2Fc", false) else {
            panic!("not text")
        };
        assert_eq!(text, "a b/c");
        assert_eq!(enc.encode("x y"), "data:,x y");
    }

    #[test]
    fn binary_is_opaque_with_its_media_type() {
        let png = format!(
            "data:image/png;base64,{}",
            b64(&[0x89, b'P', b'N', b'G', 13, 10, 26, 10, 0, 0])
        );
        assert_eq!(classify(&png, false), Embedded::Opaque("image/png".into()));
        // A declared binary type whose bytes are text is scanned as text.
        let text = format!(
            "data:application/octet-stream;base64,{}",
            b64(b"password=hunter22")
        );
        assert!(matches!(classify(&text, false), Embedded::Text(..)));
        let raw = b64(&[0u8, 1, 2, 3, 200, 201, 202, 203, 4, 5, 6, 7, 8, 9, 10, 11].repeat(4));
        assert_eq!(
            classify(&raw, false),
            Embedded::Nothing,
            "an untyped blob is an id"
        );
        assert_eq!(classify(&raw, true), Embedded::Opaque("binary data".into()));
        assert_eq!(
            classify("file-6F2ksmvXxt4VdoqmHRw6kL", true),
            Embedded::Nothing,
            "an id"
        );
    }

    #[test]
    fn bare_base64_text_is_decoded() {
        let s = b64(b"export GITHUB_TOKEN=ghp_x");
        assert!(matches!(classify(&s, false), Embedded::Text(t, _) if t.contains("GITHUB_TOKEN")));
        for not in [
            "short",
            "has spaces in it, clearly",
            "mixed+and-alphabets_aaaa",
            "===aaaaaaaaaaaaaaaaaaaa",
        ] {
            assert_eq!(classify(not, false), Embedded::Nothing, "{not}");
        }
    }

    #[test]
    fn round_trips_every_length() {
        for n in 0..20 {
            let text: String = "abcdefghijklmnopqrstuvwxyz".chars().take(n).collect();
            for (url, padded) in [(false, true), (false, false), (true, false)] {
                let mut enc = String::new();
                base64_encode(text.as_bytes(), url, padded, &mut enc);
                let back = base64_decode(enc.trim_end_matches('='), url).unwrap();
                assert_eq!(back, text.as_bytes());
            }
        }
    }
}
