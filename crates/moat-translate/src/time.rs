//! RFC 3339 times as Ollama and Anthropic write them, to and from Unix seconds (the `time` crate
//! does the calendar).

use ::time::format_description::well_known::Rfc3339;
use ::time::OffsetDateTime;

/// Seconds since the Unix epoch for an RFC 3339 time (`2024-05-01T12:00:00.123-07:00`, `…Z`), the
/// form Ollama and Anthropic use. A time without an offset is read as UTC, and a space or a lower-case
/// `t` may separate date and time (both seen in Ollama's output). `None` if it is not one.
pub fn unix_seconds(text: &str) -> Option<u64> {
    let mut normal = match text.as_bytes().get(10) {
        Some(b' ' | b't') => format!("{}T{}", text.get(..10)?, text.get(11..)?),
        _ => text.to_owned(),
    };
    let rest = normal.get(19..)?;
    let rest = rest
        .strip_prefix('.')
        .map_or(rest, |f| f.trim_start_matches(|c: char| c.is_ascii_digit()));
    if rest.is_empty() {
        normal.push('Z');
    }
    let t = OffsetDateTime::parse(&normal, &Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp()).ok()
}

/// RFC 3339 (UTC, seconds) for a Unix time, as Anthropic's model list writes `created_at`.
pub fn rfc3339(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}
