//! AWS's binary event-stream framing (`application/vnd.amazon.eventstream`), which Bedrock's
//! ConverseStream answers in: messages of a 12-byte prelude (total length, headers length, the
//! prelude's CRC-32), typed headers, a payload and a CRC-32 of the whole message, all big-endian.
//!
//! [`Decoder`] takes bytes split anywhere and gives back whole, CRC-checked [`Message`]s. A broken
//! frame (a bad CRC, impossible lengths, a malformed header) is an error after which the decoder
//! refuses further input: with the framing lost there is no safe place to resume.
//!
//! ```
//! use moat_translate::eventstream::{encode, Decoder, HeaderValue};
//!
//! let bytes = encode(&[(":event-type", HeaderValue::String("messageStart".into()))], b"{}");
//! let mut d = Decoder::new();
//! let mut out = Vec::new();
//! d.feed(&bytes[..5], &mut out).unwrap();
//! assert!(out.is_empty());
//! d.feed(&bytes[5..], &mut out).unwrap();
//! assert_eq!(out[0].header_str(":event-type"), Some("messageStart"));
//! ```

/// The largest message accepted (AWS documents 16 MiB as the maximum message size).
pub const MAX_MESSAGE: usize = 16 * 1024 * 1024;
/// The largest headers section accepted (AWS documents 128 KiB).
pub const MAX_HEADERS: usize = 128 * 1024;

const PRELUDE: usize = 12;
const MIN_MESSAGE: usize = PRELUDE + 4;

/// A header's typed value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderValue {
    Bool(bool),
    Byte(i8),
    Short(i16),
    Int(i32),
    Long(i64),
    Bytes(Vec<u8>),
    String(String),
    /// Milliseconds since the Unix epoch.
    Timestamp(i64),
    Uuid([u8; 16]),
}

/// One decoded message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message {
    pub headers: Vec<(String, HeaderValue)>,
    pub payload: Vec<u8>,
}

impl Message {
    /// A string header's value (`:message-type`, `:event-type`, `:exception-type`, …).
    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.headers.iter().find_map(|(n, v)| match v {
            HeaderValue::String(s) if n == name => Some(s.as_str()),
            _ => None,
        })
    }
}

/// Why a stream could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("event stream: prelude checksum mismatch")]
    PreludeCrc,
    #[error("event stream: message checksum mismatch")]
    MessageCrc,
    #[error("event stream: message length {0} is out of bounds")]
    Length(usize),
    /// Within AWS's bounds but past this decoder's (`Decoder::with_max_message`).
    #[error("event stream: a message of {len} bytes is longer than {limit} bytes")]
    TooLarge { len: usize, limit: usize },
    #[error("event stream: headers length {0} is out of bounds")]
    HeadersLength(usize),
    #[error("event stream: malformed header")]
    Header,
    #[error("event stream: the stream is already broken")]
    Broken,
}

/// An incremental decoder. A message's length is known from its prelude, so a message past the
/// bound is refused before it is buffered, and each piece is looked at once.
#[derive(Debug)]
pub struct Decoder {
    buf: Vec<u8>,
    broken: bool,
    max_message: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    pub fn new() -> Self {
        Self::with_max_message(MAX_MESSAGE)
    }

    /// A decoder refusing messages longer than `max_message` bytes (at most [`MAX_MESSAGE`]).
    pub fn with_max_message(max_message: usize) -> Self {
        Decoder {
            buf: Vec::new(),
            broken: false,
            max_message: max_message.min(MAX_MESSAGE),
        }
    }

    /// Bytes held for a message not yet complete.
    pub fn pending(&self) -> usize {
        self.buf.len()
    }

    /// Appends the messages `chunk` completes to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<Message>) -> Result<(), FrameError> {
        if self.broken {
            return Err(FrameError::Broken);
        }
        self.buf.extend_from_slice(chunk);
        let result = self.drain(out);
        if result.is_err() {
            self.broken = true;
            self.buf = Vec::new();
        }
        result
    }

    fn drain(&mut self, out: &mut Vec<Message>) -> Result<(), FrameError> {
        let mut start = 0;
        loop {
            let rest = &self.buf[start..];
            if rest.len() < PRELUDE {
                break;
            }
            let total = be32(&rest[0..4]) as usize;
            let headers_len = be32(&rest[4..8]) as usize;
            if crc(&rest[0..8]) != be32(&rest[8..12]) {
                return Err(FrameError::PreludeCrc);
            }
            if !(MIN_MESSAGE..=MAX_MESSAGE).contains(&total) {
                return Err(FrameError::Length(total));
            }
            if total > self.max_message {
                return Err(FrameError::TooLarge {
                    len: total,
                    limit: self.max_message,
                });
            }
            if headers_len > MAX_HEADERS || headers_len > total - MIN_MESSAGE {
                return Err(FrameError::HeadersLength(headers_len));
            }
            if rest.len() < total {
                break;
            }
            let frame = &rest[..total];
            if crc(&frame[..total - 4]) != be32(&frame[total - 4..]) {
                return Err(FrameError::MessageCrc);
            }
            let headers = parse_headers(&frame[PRELUDE..PRELUDE + headers_len])?;
            out.push(Message {
                headers,
                payload: frame[PRELUDE + headers_len..total - 4].to_vec(),
            });
            start += total;
        }
        self.buf.drain(..start);
        Ok(())
    }
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

fn crc(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

/// A cursor over the headers section.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], FrameError> {
        if self.0.len() < n {
            return Err(FrameError::Header);
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], FrameError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }
}

fn parse_headers(mut bytes: &[u8]) -> Result<Vec<(String, HeaderValue)>, FrameError> {
    let mut out = Vec::new();
    while !bytes.is_empty() {
        let mut c = Cursor(bytes);
        let name_len = usize::from(c.array::<1>()?[0]);
        let name = std::str::from_utf8(c.take(name_len)?).map_err(|_| FrameError::Header)?;
        let value = match c.array::<1>()?[0] {
            0 => HeaderValue::Bool(true),
            1 => HeaderValue::Bool(false),
            2 => HeaderValue::Byte(i8::from_be_bytes(c.array()?)),
            3 => HeaderValue::Short(i16::from_be_bytes(c.array()?)),
            4 => HeaderValue::Int(i32::from_be_bytes(c.array()?)),
            5 => HeaderValue::Long(i64::from_be_bytes(c.array()?)),
            6 => {
                let len = usize::from(u16::from_be_bytes(c.array()?));
                HeaderValue::Bytes(c.take(len)?.to_vec())
            }
            7 => {
                let len = usize::from(u16::from_be_bytes(c.array()?));
                let s = std::str::from_utf8(c.take(len)?).map_err(|_| FrameError::Header)?;
                HeaderValue::String(s.to_owned())
            }
            8 => HeaderValue::Timestamp(i64::from_be_bytes(c.array()?)),
            9 => HeaderValue::Uuid(c.array()?),
            _ => return Err(FrameError::Header),
        };
        out.push((name.to_owned(), value));
        bytes = c.0;
    }
    Ok(out)
}

/// One message as bytes (for tests and emulators; moat itself only decodes). Header names longer
/// than 255 bytes and string or byte values longer than 65535 are cut to fit.
pub fn encode(headers: &[(&str, HeaderValue)], payload: &[u8]) -> Vec<u8> {
    let mut h = Vec::new();
    for (name, value) in headers {
        let name = &name.as_bytes()[..name.len().min(255)];
        h.push(name.len() as u8);
        h.extend_from_slice(name);
        let short = |h: &mut Vec<u8>, ty: u8, b: &[u8]| {
            let b = &b[..b.len().min(usize::from(u16::MAX))];
            h.push(ty);
            h.extend_from_slice(&(b.len() as u16).to_be_bytes());
            h.extend_from_slice(b);
        };
        match value {
            HeaderValue::Bool(true) => h.push(0),
            HeaderValue::Bool(false) => h.push(1),
            HeaderValue::Byte(v) => {
                h.push(2);
                h.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Short(v) => {
                h.push(3);
                h.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Int(v) => {
                h.push(4);
                h.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Long(v) => {
                h.push(5);
                h.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Bytes(b) => short(&mut h, 6, b),
            HeaderValue::String(s) => short(&mut h, 7, s.as_bytes()),
            HeaderValue::Timestamp(v) => {
                h.push(8);
                h.extend_from_slice(&v.to_be_bytes());
            }
            HeaderValue::Uuid(u) => {
                h.push(9);
                h.extend_from_slice(u);
            }
        }
    }
    let total = PRELUDE + h.len() + payload.len() + 4;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(h.len() as u32).to_be_bytes());
    let prelude_crc = crc(&out);
    out.extend_from_slice(&prelude_crc.to_be_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    let message_crc = crc(&out);
    out.extend_from_slice(&message_crc.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Vec<u8> {
        let mut bytes = encode(
            &[
                (":message-type", HeaderValue::String("event".into())),
                (":event-type", HeaderValue::String("contentBlockDelta".into())),
                ("flag", HeaderValue::Bool(false)),
                ("b", HeaderValue::Byte(-3)),
                ("s", HeaderValue::Short(300)),
                ("i", HeaderValue::Int(-70000)),
                ("l", HeaderValue::Long(1 << 40)),
                ("raw", HeaderValue::Bytes(vec![0, 255])),
                ("t", HeaderValue::Timestamp(1_700_000_000_000)),
                ("u", HeaderValue::Uuid([7; 16])),
            ],
            br#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#,
        );
        bytes.extend(encode(&[], b""));
        bytes
    }

    fn decode_all(pieces: &[&[u8]]) -> Result<Vec<Message>, FrameError> {
        let mut d = Decoder::new();
        let mut out = Vec::new();
        for p in pieces {
            d.feed(p, &mut out)?;
        }
        Ok(out)
    }

    #[test]
    fn every_header_type_round_trips() {
        let msgs = decode_all(&[&sample()]).unwrap();
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].header_str(":event-type"), Some("contentBlockDelta"));
        assert_eq!(msgs[0].headers[6].1, HeaderValue::Long(1 << 40));
        assert_eq!(msgs[0].headers[9].1, HeaderValue::Uuid([7; 16]));
        assert!(msgs[0].payload.starts_with(b"{\"contentBlockIndex\""));
        assert_eq!(msgs[1], Message::default());
    }

    #[test]
    fn a_known_aws_test_vector_decodes() {
        // From the AWS event-stream specification's test suite: "int32_header".
        let bytes = [
            0, 0, 0, 45, 0, 0, 0, 16, 65, 196, 36, 184, 10, 101, 118, 101, 110, 116, 45, 116, 121, 112, 101,
            4, 0, 0, 160, 12, 123, 39, 102, 111, 111, 39, 58, 39, 98, 97, 114, 39, 125, 54, 244, 128, 160,
        ];
        let msgs = decode_all(&[&bytes]).unwrap();
        assert_eq!(
            msgs[0].headers,
            vec![("event-type".to_owned(), HeaderValue::Int(40972))]
        );
        assert_eq!(msgs[0].payload, b"{'foo':'bar'}");
        // ... and "empty_message", which our encoder must reproduce byte for byte.
        let empty = [0, 0, 0, 16, 0, 0, 0, 0, 5, 194, 72, 235, 125, 152, 200, 255];
        assert_eq!(decode_all(&[&empty]).unwrap(), vec![Message::default()]);
        assert_eq!(encode(&[], b""), empty);
    }

    #[test]
    fn corruption_is_detected_and_the_decoder_stays_broken() {
        let good = sample();
        let mut bad = good.clone();
        bad[9] ^= 1;
        assert_eq!(decode_all(&[&bad]), Err(FrameError::PreludeCrc));
        let mut bad = good.clone();
        bad[20] ^= 1;
        assert_eq!(decode_all(&[&bad]), Err(FrameError::MessageCrc));
        let mut d = Decoder::new();
        let mut out = Vec::new();
        assert!(d.feed(&bad, &mut out).is_err());
        assert_eq!(d.feed(&good, &mut out), Err(FrameError::Broken));
        // A length beyond the maximum is refused from the prelude alone, before any buffering.
        let mut huge = Vec::new();
        huge.extend_from_slice(&(u32::MAX).to_be_bytes());
        huge.extend_from_slice(&0u32.to_be_bytes());
        let c = crc32fast::hash(&huge);
        huge.extend_from_slice(&c.to_be_bytes());
        assert_eq!(decode_all(&[&huge]), Err(FrameError::Length(u32::MAX as usize)));
    }

    proptest! {
        #[test]
        fn split_points_do_not_matter(cuts in proptest::collection::vec(0usize..400, 0..12)) {
            let bytes = sample();
            let whole = decode_all(&[&bytes]).unwrap();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            cuts.sort_unstable();
            let mut pieces = Vec::new();
            let mut start = 0;
            for c in cuts {
                pieces.push(&bytes[start..c]);
                start = c;
            }
            pieces.push(&bytes[start..]);
            prop_assert_eq!(decode_all(&pieces).unwrap(), whole);
        }

        #[test]
        fn any_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let _ = decode_all(&[&bytes]);
        }

        #[test]
        fn encode_decode_round_trips(name in "[a-z:-]{1,20}", value in ".{0,50}", payload in proptest::collection::vec(any::<u8>(), 0..200)) {
            let bytes = encode(&[(&name, HeaderValue::String(value.clone()))], &payload);
            let msgs = decode_all(&[&bytes]).unwrap();
            prop_assert_eq!(msgs[0].header_str(&name), Some(value.as_str()));
            prop_assert_eq!(&msgs[0].payload, &payload);
        }
    }
}
