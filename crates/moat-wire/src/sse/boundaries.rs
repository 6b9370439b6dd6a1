//! Where complete events end in an SSE byte stream, for a relay that passes bytes through untouched
//! but must hold back an unfinished event (and bound how much of one it holds).
//!
//! Each byte is looked at once, whatever the chunking: the state between chunks is three flags and a
//! count, never a rescan of what came before. Line ends are the parser's (`\n`, `\r\n`, `\r`, mixed
//! freely), so the relay and [`super::SseParser`] agree on where events end.

use memchr::memchr2;

/// Default bound on one event (all its lines and line ends): far above any real chunk of an LLM
/// answer, far below harm.
pub const DEFAULT_MAX_EVENT: usize = 1024 * 1024;

/// An event grew past the bound before its blank line arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("SSE event longer than {limit} bytes")]
pub struct EventTooLarge {
    pub limit: usize,
}

/// Where the event holding byte `at` of `events` (whole events, as a relay hands them over) starts:
/// just past the last event end before it, or 0. Lets a rewrite of one event leave the events before
/// it as they are, unparsed.
///
/// ```
/// use moat_wire::sse::event_start;
/// let events = b"data: a\n\ndata: b\r\n\r\ndata: c\n\n";
/// assert_eq!(event_start(events, 3), 0);
/// assert_eq!(event_start(events, 12), 9);
/// assert_eq!(event_start(events, 23), 20);
/// ```
pub fn event_start(events: &[u8], at: usize) -> usize {
    let mut boundaries = EventBoundaries::new(usize::MAX);
    let before = events.get(..at).unwrap_or(events);
    boundaries.scan(before).ok().flatten().unwrap_or(0)
}

/// Finds event ends (blank lines) incrementally.
///
/// ```
/// use moat_wire::sse::EventBoundaries;
/// let mut b = EventBoundaries::new(1024);
/// assert_eq!(b.scan(b"data: a\n\ndata: b").unwrap(), Some(9));
/// assert_eq!(b.pending(), 7);
/// assert_eq!(b.scan(b"\r\n\r\n").unwrap(), Some(4));
/// assert_eq!(b.pending(), 0);
/// ```
#[derive(Debug, Clone)]
pub struct EventBoundaries {
    max_event: usize,
    /// The current line has no bytes yet (at the start, or right after a line end).
    line_empty: bool,
    /// The previous chunk ended with a `\r` line end: a `\n` first in the next belongs to it.
    after_cr: bool,
    /// ...and that `\r` ended a blank line, so the `\n` is the end of an event too.
    boundary_cr: bool,
    /// Bytes of the event not finished yet.
    pending: usize,
}

impl EventBoundaries {
    /// Events (their lines and line ends together) may be at most `max_event` bytes.
    pub fn new(max_event: usize) -> EventBoundaries {
        EventBoundaries {
            max_event,
            line_empty: true,
            after_cr: false,
            boundary_cr: false,
            pending: 0,
        }
    }

    /// Bytes seen since the last event end.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Takes the next piece of the stream; returns the offset in `chunk` just past the last event end
    /// it holds, if any. Fails once an event (finished in this chunk or not) is longer than the bound;
    /// the stream position is then lost, and the caller should end the stream.
    pub fn scan(&mut self, chunk: &[u8]) -> Result<Option<usize>, EventTooLarge> {
        let mut last = None;
        let mut i = 0;
        // Bytes of the current event in `chunk` start here.
        let mut start = 0;
        if self.after_cr && !chunk.is_empty() {
            self.after_cr = false;
            if chunk[0] == b'\n' {
                i = 1;
                if self.boundary_cr {
                    last = Some(1);
                    start = 1;
                }
            }
            self.boundary_cr = false;
        }
        while let Some(offset) = memchr2(b'\n', b'\r', &chunk[i..]) {
            let at = i + offset;
            if offset > 0 {
                self.line_empty = false;
            }
            let mut end = at + 1;
            let blank = self.line_empty;
            if chunk[at] == b'\r' {
                match chunk.get(end) {
                    Some(b'\n') => end += 1,
                    Some(_) => {}
                    None => {
                        self.after_cr = true;
                        self.boundary_cr = blank;
                    }
                }
            }
            if blank {
                self.check(end - start)?;
                self.pending = 0;
                start = end;
                last = Some(end);
            }
            self.line_empty = true;
            i = end;
        }
        if i < chunk.len() {
            self.line_empty = false;
        }
        self.check(chunk.len() - start)?;
        self.pending += chunk.len() - start;
        Ok(last)
    }

    fn check(&self, more: usize) -> Result<(), EventTooLarge> {
        if self.pending.saturating_add(more) > self.max_event {
            return Err(EventTooLarge {
                limit: self.max_event,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Event ends in `bytes` scanned in one go, one line at a time, the slow and obvious way.
    fn reference(bytes: &[u8]) -> Vec<usize> {
        let mut ends = Vec::new();
        let (mut i, mut line_len) = (0, 0);
        while i < bytes.len() {
            let b = bytes[i];
            i += 1;
            if b == b'\r' && bytes.get(i) == Some(&b'\n') {
                i += 1;
            }
            if b == b'\r' || b == b'\n' {
                if line_len == 0 {
                    ends.push(i);
                }
                line_len = 0;
            } else {
                line_len += 1;
            }
        }
        ends
    }

    fn scan_in_pieces(
        bytes: &[u8],
        cuts: &[usize],
        max: usize,
    ) -> Result<(Vec<usize>, usize), EventTooLarge> {
        let mut b = EventBoundaries::new(max);
        let mut found = Vec::new();
        let mut start = 0;
        let mut cuts: Vec<usize> = cuts.iter().map(|&c| c.min(bytes.len())).collect();
        cuts.sort_unstable();
        cuts.push(bytes.len());
        for cut in cuts {
            if let Some(end) = b.scan(&bytes[start..cut])? {
                found.push(start + end);
            }
            start = cut;
        }
        Ok((found, b.pending()))
    }

    #[test]
    fn every_line_end_style_ends_an_event() {
        for (text, end) in [
            (&b"data: a\n\ndata: b"[..], 9),
            (b"data: a\r\n\r\ndata: b", 11),
            (b"data: a\r\rdata: b", 9),
            (b"data: a\n\r\ndata: b", 10),
            (b"data: a\r\n\ndata: b", 10),
        ] {
            assert_eq!(EventBoundaries::new(100).scan(text), Ok(Some(end)), "{text:?}");
        }
        let mut b = EventBoundaries::new(100);
        assert_eq!(b.scan(b"data: a\r\ndata: b\r"), Ok(None), "no blank line yet");
        assert_eq!(b.scan(b"\r"), Ok(Some(1)));
        assert_eq!(
            b.scan(b"\ndata: c"),
            Ok(Some(1)),
            "the \\n of a split \\r\\n blank line"
        );
        assert_eq!(b.pending(), 7);
    }

    #[test]
    fn an_event_past_the_bound_fails_however_it_arrives() {
        let event = |len: usize| {
            let mut e = b"data: ".to_vec();
            e.resize(len - 2, b'x');
            e.extend_from_slice(b"\n\n");
            e
        };
        assert_eq!(EventBoundaries::new(64).scan(&event(64)), Ok(Some(64)));
        assert_eq!(
            EventBoundaries::new(64).scan(&event(65)),
            Err(EventTooLarge { limit: 64 })
        );
        // Finished inside one chunk after a small event: still counted on its own.
        let mut two = event(10);
        two.extend(event(65));
        assert!(EventBoundaries::new(64).scan(&two).is_err());
        // Never finished: fails as soon as the held part passes the bound.
        let mut b = EventBoundaries::new(64);
        assert_eq!(b.scan(&[b'x'; 60]), Ok(None));
        assert!(b.scan(&[b'x'; 5]).is_err());
    }

    proptest! {
        #[test]
        fn splits_do_not_change_where_events_end(
            text in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'\r'), Just(b'a'), Just(b':')], 0..120),
            cuts in proptest::collection::vec(0usize..120, 0..10),
        ) {
            let truth = reference(&text);
            let (found, pending) = scan_in_pieces(&text, &cuts, usize::MAX).unwrap();
            for &end in &found {
                // A blank line ending in `\r\n` split between chunks is first reported after its `\r`.
                let split_crlf = text.get(end) == Some(&b'\n') && truth.contains(&(end + 1));
                prop_assert!(truth.contains(&end) || split_crlf, "{end} in {truth:?}");
            }
            let last = truth.last().copied().unwrap_or(0);
            prop_assert_eq!(found.last().copied().unwrap_or(0), last);
            prop_assert_eq!(pending, text.len() - last);
        }

        #[test]
        fn the_bound_does_not_depend_on_the_splits(
            text in proptest::collection::vec(prop_oneof![Just(b'\n'), Just(b'a'), Just(b'a'), Just(b'a')], 0..200),
            cuts in proptest::collection::vec(0usize..200, 0..10),
            max in 1usize..40,
        ) {
            let whole = scan_in_pieces(&text, &[], max).is_ok();
            prop_assert_eq!(scan_in_pieces(&text, &cuts, max).is_ok(), whole);
        }
    }
}
