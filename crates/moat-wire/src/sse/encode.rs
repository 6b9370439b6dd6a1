//! Encoding events and comments onto the wire in the form every SSE client accepts.

use super::SseEvent;

/// The terminator of OpenAI-style streams.
pub const DONE: &str = "data: [DONE]\n\n";

/// One unnamed event. Line breaks in `data` (`\n`, `\r\n` or `\r`) become separate `data:` lines,
/// which a client joins back with `\n`: a bare line break would otherwise end the field early.
pub fn encode_data(data: &str) -> String {
    let mut out = String::with_capacity(data.len() + 8);
    push_lines(&mut out, "data: ", data);
    out.push('\n');
    out
}

/// A comment, e.g. a keep-alive; one `:` line per line of `text`. No blank line follows, so a
/// comment may be written anywhere in a stream without dispatching anything.
pub fn encode_comment(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 4);
    push_lines(&mut out, ": ", text);
    out
}

/// A complete event with all its fields, as Anthropic-style streams need (`event: message_start`).
/// Line breaks cannot be represented inside `event` and `id`, so they are replaced by spaces there.
pub fn encode_event(event: &SseEvent) -> String {
    let mut out = String::with_capacity(event.data.len() + 32);
    if let Some(name) = &event.event {
        push_single_line(&mut out, "event: ", name);
    }
    if let Some(id) = &event.id {
        push_single_line(&mut out, "id: ", id);
    }
    if let Some(retry) = event.retry {
        out.push_str("retry: ");
        out.push_str(&retry.to_string());
        out.push('\n');
    }
    push_lines(&mut out, "data: ", &event.data);
    out.push('\n');
    out
}

fn push_single_line(out: &mut String, prefix: &str, value: &str) {
    out.push_str(prefix);
    out.extend(
        value
            .chars()
            .map(|c| if c == '\n' || c == '\r' { ' ' } else { c }),
    );
    out.push('\n');
}

/// Writes `prefix` + line + `\n` for every line of `text`; an empty text is one empty line.
fn push_lines(out: &mut String, prefix: &str, text: &str) {
    let mut rest = text;
    loop {
        let Some(end) = memchr::memchr2(b'\n', b'\r', rest.as_bytes()) else {
            out.push_str(prefix);
            out.push_str(rest);
            out.push('\n');
            return;
        };
        out.push_str(prefix);
        out.push_str(&rest[..end]);
        out.push('\n');
        let crlf = rest.as_bytes()[end] == b'\r' && rest.as_bytes().get(end + 1) == Some(&b'\n');
        rest = &rest[end + if crlf { 2 } else { 1 }..];
    }
}
