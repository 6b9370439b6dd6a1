//! The incremental SSE parser: bytes in, frames out, whatever the chunk boundaries.

use memchr::memchr2;

use super::{SseEvent, SseFrame};

/// Default bound on one line and on one event's data: far above any real chunk, far below harm.
pub const DEFAULT_MAX_LINE: usize = 16 * 1024 * 1024;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Why a stream could not be parsed. Only size limits fail; malformed text never does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SseError {
    #[error("SSE line longer than {limit} bytes")]
    LineTooLong { limit: usize },
    #[error("SSE event data longer than {limit} bytes")]
    EventTooLarge { limit: usize },
}

/// Parses an SSE byte stream fed in arbitrary pieces.
///
/// Bytes are buffered only while a line is incomplete and decoded once the line is whole, so a
/// UTF-8 character or a `\r\n` split between two chunks comes out the same as if it had not been.
/// Invalid UTF-8 is replaced with U+FFFD rather than failing: one bad byte from an upstream should
/// not cost the client the rest of the answer.
///
/// After an error the stream position is lost, so every later call returns the same error.
#[derive(Debug, Clone)]
pub struct SseParser {
    /// The start of a line whose end has not arrived yet.
    partial: Vec<u8>,
    max_line: usize,
    /// The last chunk ended with `\r`: a `\n` starting the next chunk completes that line end
    /// instead of ending an empty line (which would dispatch an event).
    after_cr: bool,
    /// No line has been completed: the next one may start with a byte-order mark to skip.
    at_start: bool,
    failed: Option<SseError>,
    // The event being assembled.
    event: Option<String>,
    data: String,
    /// Distinguishes one empty `data:` line (dispatched, data "") from no data line (not dispatched).
    has_data: bool,
    id: Option<String>,
    retry: Option<u64>,
    /// The spec's last-event-ID buffer, which outlives events; what a reconnect would send.
    last_event_id: Option<String>,
}

impl Default for SseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl SseParser {
    /// A parser with the default limit of [`DEFAULT_MAX_LINE`] bytes.
    pub fn new() -> Self {
        Self::with_max_line(DEFAULT_MAX_LINE)
    }

    /// A parser whose lines, and whose events' joined data, may be at most `max_line` bytes.
    pub fn with_max_line(max_line: usize) -> Self {
        Self {
            partial: Vec::new(),
            max_line,
            after_cr: false,
            at_start: true,
            failed: None,
            event: None,
            data: String::new(),
            has_data: false,
            id: None,
            retry: None,
            last_event_id: None,
        }
    }

    /// The most recent `id:` seen, kept across events as the spec's "last event ID".
    pub fn last_event_id(&self) -> Option<&str> {
        self.last_event_id.as_deref()
    }

    /// Parses the next piece of the stream, appending every frame it completes to `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<SseFrame>) -> Result<(), SseError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        let mut rest = chunk;
        if self.after_cr && !rest.is_empty() {
            self.after_cr = false;
            if rest[0] == b'\n' {
                rest = &rest[1..];
            }
        }
        while let Some(end) = memchr2(b'\n', b'\r', rest) {
            let mut next = end + 1;
            if rest[end] == b'\r' {
                match rest.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            let line = &rest[..end];
            if self.partial.is_empty() {
                self.check_line(line.len())?;
                self.line(line, out)?;
            } else {
                self.check_line(self.partial.len() + line.len())?;
                let mut whole = std::mem::take(&mut self.partial);
                whole.extend_from_slice(line);
                let result = self.line(&whole, out);
                whole.clear();
                self.partial = whole; // keep the allocation for the next split line
                result?;
            }
            rest = &rest[next..];
        }
        if !rest.is_empty() {
            self.check_line(self.partial.len() + rest.len())?;
            self.partial.extend_from_slice(rest);
        }
        Ok(())
    }

    /// Ends the stream: a last line without a line end is processed, and an event without its
    /// closing blank line is dispatched if it has data (lenient; see the module docs). The parser is
    /// then ready for a new stream, keeping only [`SseParser::last_event_id`].
    pub fn finish(&mut self, out: &mut Vec<SseFrame>) -> Result<(), SseError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            self.line(&line, out)?;
        }
        self.dispatch(out);
        self.after_cr = false;
        self.at_start = true;
        Ok(())
    }

    fn check_line(&mut self, len: usize) -> Result<(), SseError> {
        if len > self.max_line {
            return Err(self.fail(SseError::LineTooLong { limit: self.max_line }));
        }
        Ok(())
    }

    fn fail(&mut self, err: SseError) -> SseError {
        self.partial = Vec::new();
        self.data = String::new();
        self.failed = Some(err.clone());
        err
    }

    /// Interprets one complete line (without its line end).
    fn line(&mut self, mut line: &[u8], out: &mut Vec<SseFrame>) -> Result<(), SseError> {
        if self.at_start {
            self.at_start = false;
            line = line.strip_prefix(BOM).unwrap_or(line);
        }
        if line.is_empty() {
            self.dispatch(out);
            return Ok(());
        }
        let text = String::from_utf8_lossy(line);
        if let Some(comment) = text.strip_prefix(':') {
            out.push(SseFrame::Comment(strip_one_space(comment).to_owned()));
            return Ok(());
        }
        let (field, value) = match text.split_once(':') {
            Some((field, value)) => (field, strip_one_space(value)),
            None => (&*text, ""),
        };
        match field {
            "data" => {
                let len = self.data.len() + usize::from(self.has_data) + value.len();
                if len > self.max_line {
                    return Err(self.fail(SseError::EventTooLarge { limit: self.max_line }));
                }
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            "event" => self.event = (!value.is_empty()).then(|| value.to_owned()),
            // The spec ignores ids containing NUL: they could not be sent back in a header.
            "id" if !value.contains('\0') => {
                self.id = Some(value.to_owned());
                self.last_event_id = Some(value.to_owned());
            }
            "retry" if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) => {
                // Too many digits for u64 is as unusable as no digits: ignore it.
                if let Ok(ms) = value.parse() {
                    self.retry = Some(ms);
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Ends the current event at a blank line (or EOF); without data lines there is nothing to send.
    fn dispatch(&mut self, out: &mut Vec<SseFrame>) {
        let event = self.event.take();
        let id = self.id.take();
        let retry = self.retry.take();
        if !self.has_data {
            return;
        }
        self.has_data = false;
        let data = std::mem::take(&mut self.data);
        out.push(SseFrame::Event(SseEvent {
            event,
            data,
            id,
            retry,
        }));
    }
}

fn strip_one_space(value: &str) -> &str {
    value.strip_prefix(' ').unwrap_or(value)
}
