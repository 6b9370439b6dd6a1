//! `POST /embeddings`: small deterministic vectors derived from each input's text, in float or base64
//! encoding as OpenAI returns them.

use serde_json::{json, Value};

use crate::completion::estimate_tokens;

/// Vector length when the request does not ask for `dimensions`.
const DEFAULT_DIMENSIONS: usize = 8;
/// Refuse absurd sizes: the emulator is for tests.
const MAX_DIMENSIONS: usize = 4096;

/// The whole embeddings response, or a 400 message and the parameter at fault.
pub(crate) fn respond(body: &Value) -> Result<Value, (String, &'static str)> {
    let model = body
        .get("model")
        .and_then(Value::as_str)
        .ok_or_else(|| ("you must provide a model parameter".to_owned(), "model"))?;
    let inputs = inputs(body.get("input")).ok_or_else(|| {
        (
            "'input' must be a string, an array of strings, or token arrays".to_owned(),
            "input",
        )
    })?;
    let dimensions = match body.get("dimensions") {
        None | Some(Value::Null) => DEFAULT_DIMENSIONS,
        Some(v) => v
            .as_u64()
            .and_then(|d| usize::try_from(d).ok())
            .filter(|d| (1..=MAX_DIMENSIONS).contains(d))
            .ok_or_else(|| {
                (
                    format!("'dimensions' must be between 1 and {MAX_DIMENSIONS}"),
                    "dimensions",
                )
            })?,
    };
    let base64 = match body.get("encoding_format").and_then(Value::as_str) {
        None | Some("float") => false,
        Some("base64") => true,
        Some(_) => {
            return Err((
                "'encoding_format' must be 'float' or 'base64'".to_owned(),
                "encoding_format",
            ))
        }
    };
    let mut tokens = 0;
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, text)| {
            tokens += estimate_tokens(text.chars().count());
            let vector = vector(text, dimensions);
            let embedding = if base64 {
                Value::String(encode_base64(&vector))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    Ok(json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens}
    }))
}

/// The inputs as texts; token arrays are read as their numbers joined by spaces.
fn inputs(input: Option<&Value>) -> Option<Vec<String>> {
    let tokens = |items: &[Value]| -> Option<String> {
        let numbers: Option<Vec<String>> = items.iter().map(|t| t.as_u64().map(|n| n.to_string())).collect();
        numbers.map(|n| n.join(" "))
    };
    let out = match input? {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) if items.is_empty() => return None,
        Value::Array(items) if items.iter().all(Value::is_number) => vec![tokens(items)?],
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Some(s.clone()),
                Value::Array(inner) => tokens(inner),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()?,
        _ => return None,
    };
    Some(out)
}

/// A unit vector seeded by FNV-1a of the text and stretched with xorshift: same text, same vector.
fn vector(text: &str, dimensions: usize) -> Vec<f32> {
    let mut state = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let mut raw: Vec<f64> = (0..dimensions)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            // Top 53 bits as a fraction in [0, 1), moved to [-1, 1).
            (state >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
        })
        .collect();
    let norm = raw.iter().map(|x| x * x).sum::<f64>().sqrt();
    if norm > 0.0 {
        raw.iter_mut().for_each(|x| *x /= norm);
    }
    raw.into_iter().map(|x| x as f32).collect()
}

/// OpenAI's base64 embedding: little-endian f32s, standard alphabet with padding.
fn encode_base64(vector: &[f32]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = vector.iter().flat_map(|f| f.to_le_bytes()).collect();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for group in bytes.chunks(3) {
        let b = [
            group[0],
            group.get(1).copied().unwrap_or(0),
            group.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= group.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_unit_vectors() {
        let a = vector("hello", 8);
        assert_eq!(a, vector("hello", 8));
        assert_ne!(a, vector("hellp", 8));
        let norm: f32 = a.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-4);
    }

    #[test]
    fn response_shape() {
        let r = respond(&json!({"model": "emu-embed", "input": ["ab", "cdefg"]})).unwrap();
        assert_eq!(r["data"][1]["index"], 1);
        assert_eq!(r["data"][0]["embedding"].as_array().unwrap().len(), 8);
        assert_eq!(r["usage"]["prompt_tokens"], 3);
        let one = respond(&json!({"model": "m", "input": [1, 2, 3], "dimensions": 3})).unwrap();
        assert_eq!(one["data"].as_array().unwrap().len(), 1);
        assert_eq!(one["data"][0]["embedding"].as_array().unwrap().len(), 3);
        assert!(respond(&json!({"model": "m", "input": []})).is_err());
        assert!(respond(&json!({"input": "x"})).is_err());
    }

    #[test]
    fn base64_matches_known_encoding() {
        assert_eq!(encode_base64(&[1.0]), "AACAPw==");
        assert_eq!(encode_base64(&[]), "");
        let r = respond(&json!({"model": "m", "input": "x", "encoding_format": "base64"})).unwrap();
        assert_eq!(r["data"][0]["embedding"].as_str().unwrap().len(), 44);
    }
}
