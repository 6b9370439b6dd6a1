//! Splitting a byte stream into lines (for NDJSON), whatever the chunk boundaries, with a bound on
//! line length so a provider that never sends a newline cannot make moat buffer without limit.

/// Longest line kept (a whole Ollama answer fits easily; a runaway stream does not).
pub const DEFAULT_MAX_LINE: usize = 8 * 1024 * 1024;

/// An incremental line splitter. `\n` ends a line; a `\r` before it is dropped; empty lines are
/// skipped, because NDJSON gives them no meaning.
#[derive(Debug, Clone)]
pub struct LineSplitter {
    buf: Vec<u8>,
    max_line: usize,
    /// Set once a line grew past the bound; the rest of that line is skipped.
    overflowed: bool,
}

impl Default for LineSplitter {
    fn default() -> Self {
        Self::new()
    }
}

impl LineSplitter {
    pub fn new() -> Self {
        Self::with_max_line(DEFAULT_MAX_LINE)
    }

    pub fn with_max_line(max_line: usize) -> Self {
        LineSplitter {
            buf: Vec::new(),
            max_line: max_line.max(1),
            overflowed: false,
        }
    }

    /// Appends the complete lines `chunk` finishes to `out`. Returns false if a line was too long
    /// (that line is dropped; the following lines are still split).
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<Vec<u8>>) -> bool {
        let mut ok = true;
        let mut rest = chunk;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            let (line, after) = rest.split_at(pos);
            if self.overflowed || self.buf.len() + line.len() > self.max_line {
                ok = false;
            } else {
                self.buf.extend_from_slice(line);
                self.emit(out);
            }
            self.buf.clear();
            self.overflowed = false;
            rest = &after[1..];
        }
        if !self.overflowed {
            if self.buf.len() + rest.len() > self.max_line {
                self.overflowed = true;
                self.buf.clear();
                ok = false;
            } else {
                self.buf.extend_from_slice(rest);
            }
        }
        ok
    }

    /// The last line, if the stream ended without a newline after it.
    pub fn finish(&mut self, out: &mut Vec<Vec<u8>>) {
        if !self.overflowed {
            self.emit(out);
        }
        self.buf.clear();
        self.overflowed = false;
    }

    fn emit(&mut self, out: &mut Vec<Vec<u8>>) {
        let mut line = std::mem::take(&mut self.buf);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        if !line.iter().all(u8::is_ascii_whitespace) {
            out.push(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn split_all(chunks: &[&[u8]]) -> Vec<Vec<u8>> {
        let mut s = LineSplitter::new();
        let mut out = Vec::new();
        for c in chunks {
            s.feed(c, &mut out);
        }
        s.finish(&mut out);
        out
    }

    #[test]
    fn lines_across_chunks_crlf_and_blank_lines() {
        let out = split_all(&[b"{\"a\"", b":1}\r\n\n{\"b\":2}\n", b"{\"c\":3}"]);
        assert_eq!(
            out,
            vec![
                b"{\"a\":1}".to_vec(),
                b"{\"b\":2}".to_vec(),
                b"{\"c\":3}".to_vec()
            ]
        );
    }

    #[test]
    fn an_overlong_line_is_dropped_and_the_next_kept() {
        let mut s = LineSplitter::with_max_line(4);
        let mut out = Vec::new();
        assert!(!s.feed(b"abc", &mut out) || !s.feed(b"defgh\nok\n", &mut out));
        s.finish(&mut out);
        assert_eq!(out, vec![b"ok".to_vec()]);
    }

    proptest! {
        #[test]
        fn split_points_do_not_matter(text in "[a-z{}\":,\r\n ]{0,200}", cuts in proptest::collection::vec(0usize..200, 0..8)) {
            let bytes = text.as_bytes();
            let whole = split_all(&[bytes]);
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(bytes.len())).collect();
            cuts.sort_unstable();
            let mut pieces = Vec::new();
            let mut start = 0;
            for c in cuts {
                pieces.push(&bytes[start..c]);
                start = c;
            }
            pieces.push(&bytes[start..]);
            prop_assert_eq!(split_all(&pieces), whole);
        }
    }
}
