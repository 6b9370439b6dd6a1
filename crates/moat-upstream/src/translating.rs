//! The one loop that feeds a byte stream through a [`StreamTranslator`]: every translated stream
//! (a provider's wire into OpenAI's in the relay, OpenAI's into Anthropic's or the Responses events in
//! the gateway) is this loop with its own translator, so how it ends is decided in one place.
//!
//! Each chunk goes through `feed`, the end of the input through `finish`; after each, the caller's
//! `observe` sees the translator (to keep a finished turn, say). A translator that stops with an error
//! event of its own ends the stream with [`Interrupted::Stopped`] after that event, and the source is
//! dropped without being read further.

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use moat_translate::StreamTranslator;

/// What happens once the translator has written its final event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterEnd {
    /// Stop reading: the source is a provider's answer, and dropping it cancels the provider's work.
    Stop,
    /// Read the source to its end: it is moatd's own relay, which settles only when it has ended.
    Drain,
}

/// Why a translated stream ended before its source did.
#[derive(Debug)]
pub enum Interrupted<E> {
    /// The source failed.
    Source(E),
    /// The translator ended its output with an error event of its own; the reason, for the outcome.
    Stopped(String),
}

/// Where the loop is: feeding the translator, or owing the reason it stopped early.
enum State<S, T: ?Sized> {
    Feeding(S, Box<T>),
    Stopped(String),
}

/// `body` through `translator`, ending with what the translator still owes (see the module notes).
pub fn translate<S, E, T, O>(
    body: S,
    translator: Box<T>,
    after_end: AfterEnd,
    observe: O,
) -> impl Stream<Item = Result<Bytes, Interrupted<E>>> + Send + 'static
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
    E: Send + 'static,
    T: StreamTranslator + ?Sized + 'static,
    O: FnMut(&T) + Send + 'static,
{
    let state = Some((State::Feeding(body, translator), observe));
    futures_util::stream::unfold(state, move |state| async move {
        let (state, mut observe) = state?;
        let (mut body, mut t) = match state {
            State::Feeding(body, t) => (body, t),
            State::Stopped(reason) => return Some((Err(Interrupted::Stopped(reason)), None)),
        };
        match body.next().await {
            Some(Ok(chunk)) => {
                let out = Ok(Bytes::from(t.feed(&chunk)));
                observe(&*t);
                let next = match t.stopped() {
                    None => State::Feeding(body, t),
                    Some(Ok(())) if after_end == AfterEnd::Drain => State::Feeding(body, t),
                    Some(Ok(())) => return Some((out, None)),
                    Some(Err(reason)) => State::Stopped(reason),
                };
                Some((out, Some((next, observe))))
            }
            Some(Err(e)) => Some((Err(Interrupted::Source(e)), None)),
            None => {
                let out = Bytes::from(t.finish());
                observe(&*t);
                Some((Ok(out), None))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Upper-cases its input; stops cleanly at `.`, with an error at `!`.
    struct Shout {
        ended: Option<Result<(), String>>,
    }

    impl StreamTranslator for Shout {
        fn feed(&mut self, chunk: &[u8]) -> Vec<u8> {
            if chunk.contains(&b'!') {
                self.ended = Some(Err("shouted".into()));
            } else if chunk.contains(&b'.') {
                self.ended = Some(Ok(()));
            }
            chunk.to_ascii_uppercase()
        }
        fn finish(&mut self) -> Vec<u8> {
            b"<end>".to_vec()
        }
        fn stopped(&self) -> Option<Result<(), String>> {
            self.ended.clone()
        }
    }

    async fn run(chunks: &[&str], after_end: AfterEnd) -> (Vec<String>, usize) {
        let source = futures_util::stream::iter(
            chunks
                .iter()
                .map(|c| Ok::<_, ()>(Bytes::from(c.to_string())))
                .collect::<Vec<_>>(),
        );
        let seen_ref = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = seen_ref.clone();
        let out: Vec<String> = translate(
            source,
            Box::new(Shout { ended: None }),
            after_end,
            move |_: &Shout| {
                counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            },
        )
        .map(|item| match item {
            Ok(b) => String::from_utf8_lossy(&b).into_owned(),
            Err(Interrupted::Stopped(r)) => format!("stopped:{r}"),
            Err(Interrupted::Source(())) => "source".into(),
        })
        .collect()
        .await;
        (out, seen_ref.load(std::sync::atomic::Ordering::Relaxed))
    }

    #[tokio::test]
    async fn the_end_of_the_input_is_finished_and_observed() {
        let (out, seen) = run(&["ab", "c"], AfterEnd::Stop).await;
        assert_eq!(out, ["AB", "C", "<end>"]);
        assert_eq!(seen, 3);
    }

    #[tokio::test]
    async fn a_clean_stop_ends_or_drains_as_asked() {
        assert_eq!(run(&["a.", "b"], AfterEnd::Stop).await.0, ["A."]);
        assert_eq!(run(&["a.", "b"], AfterEnd::Drain).await.0, ["A.", "B", "<end>"]);
    }

    #[tokio::test]
    async fn an_error_stop_ends_after_its_event_whatever_the_mode() {
        for mode in [AfterEnd::Stop, AfterEnd::Drain] {
            assert_eq!(run(&["a!", "b"], mode).await.0, ["A!", "stopped:shouted"]);
        }
    }
}
