//! A request body edited in place: the client's JSON object with the few top-level members the
//! gateway sets written fresh, and every other member copied byte for byte, so a request that needs
//! no translation is not serialized again whole.
//!
//! The output holds exactly the members of the typed request (no more, no fewer), each once, with
//! the values the typed request has. Members are copied only from bytes [`parse`] read with no object
//! repeating a key ([`Unique`]): serde_json keeps the last copy of a duplicate key, so a first copy
//! would reach the provider without the gateway having seen it. Anything unusual gives `None`, and the
//! caller encodes the request instead.
//!
//! ```
//! use moat_wire::edit::{edit, parse};
//! use moat_wire::openai::ChatCompletionRequest;
//!
//! let body = br#"{"model": "fast", "messages": [{"role": "user", "content": "hi"}], "seed": 7}"#;
//! let (value, sent) = parse(&body[..]).unwrap();
//! let mut request: ChatCompletionRequest = serde_json::from_value(value).unwrap();
//! request.model = Some("llama3.2".into());
//! let out = edit(&sent.unwrap(), &request, &["model"]).unwrap();
//! assert_eq!(
//!     String::from_utf8(out).unwrap(),
//!     r#"{"model":"llama3.2","messages":[{"role": "user", "content": "hi"}],"seed":7}"#
//! );
//! ```

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::ops::Range;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::ser::{self, Impossible, Serialize, SerializeMap, SerializeStruct, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// More top-level members than this and the body is encoded instead (members are matched by a
/// linear search, which stays cheap only for the few members a request has).
const MAX_MEMBERS: usize = 64;

/// Bytes in which no JSON object repeats a key, as [`parse`] found them: the only bytes [`edit`]
/// copies from.
#[derive(Debug, Clone, Copy)]
pub struct Unique<B>(B);

impl<B: AsRef<[u8]>> Unique<B> {
    pub fn bytes(&self) -> &[u8] {
        self.0.as_ref()
    }

    /// The same bytes, borrowed.
    pub fn borrowed(&self) -> Unique<&[u8]> {
        Unique(self.0.as_ref())
    }
}

/// Parses `body` into a `Value` as `serde_json::from_slice` does (the last copy of a duplicate key
/// wins), and gives the bytes back as [`Unique`] when no object in them repeats a key.
pub fn parse<B: AsRef<[u8]>>(body: B) -> Result<(Value, Option<Unique<B>>), serde_json::Error> {
    let repeated = Cell::new(false);
    let mut de = serde_json::Deserializer::from_slice(body.as_ref());
    let value = ValueSeed(&repeated).deserialize(&mut de)?;
    de.end()?;
    let unique = (!repeated.get()).then_some(Unique(body));
    Ok((value, unique))
}

/// `original` (a JSON object) rewritten as `request` serializes: the members named in `fresh` are
/// written from `request`, the others copied from `original` as they are. Members `request` does not
/// serialize are left out. `None` when that cannot be done: `original` is not one JSON object or has
/// more than 64 members; `request` does not serialize as an object, or has a member that is neither
/// in `original` nor in `fresh`.
pub fn edit<B: AsRef<[u8]>, T: Serialize + ?Sized>(
    original: &Unique<B>,
    request: &T,
    fresh: &[&str],
) -> Option<Vec<u8>> {
    let original = original.bytes();
    let mut typed = Members {
        fresh,
        json: Vec::with_capacity(256),
        members: Vec::with_capacity(16),
        pending: None,
    };
    request.serialize(&mut typed).ok()?;
    let sent = serde_json::from_slice::<Top<'_>>(original).ok()?.0;

    let mut out = Vec::with_capacity(original.len() + typed.json.len() + 2);
    out.push(b'{');
    for (name, raw) in &sent {
        let Some(member) = typed.members.iter().find(|m| typed.name(m) == name.as_bytes()) else {
            continue; // the typed request has no such member (taken out, or null on a typed field)
        };
        let value = match &member.fresh {
            Some(json) => &typed.json[json.clone()],
            None => raw.get().as_bytes(),
        };
        write_member(&mut out, &typed.json[member.key.clone()], value);
    }
    for member in &typed.members {
        if sent.iter().any(|(name, _)| typed.name(member) == name.as_bytes()) {
            continue;
        }
        // A member the client did not send: only the gateway's own may appear.
        let value = &typed.json[member.fresh.clone()?];
        write_member(&mut out, &typed.json[member.key.clone()], value);
    }
    out.push(b'}');
    Some(out)
}

/// `json` (one JSON object) without its top-level member `name` when that member is `null`, every
/// other member copied as it is (keys re-encoded, values byte for byte). `None` when `json` is not one
/// object (of at most 64 members), or `name` is absent or not `null`: the caller then does it the long
/// way. Made for the `"usage": null` OpenAI puts in every streamed chunk once usage is asked for,
/// which a client that did not ask must not see: removing it costs one scan and one copy, not a parse
/// into a `Value` and an encode.
///
/// ```
/// use moat_wire::edit::without_null_member;
/// let chunk = r#"{"id":"c1","choices":[{"delta":{"content":"hi"}}],"usage":null}"#;
/// assert_eq!(
///     without_null_member(chunk, "usage").as_deref(),
///     Some(r#"{"id":"c1","choices":[{"delta":{"content":"hi"}}]}"#)
/// );
/// assert_eq!(without_null_member(r#"{"usage":{"total_tokens":3}}"#, "usage"), None);
/// ```
pub fn without_null_member(json: &str, name: &str) -> Option<String> {
    let Top(members) = serde_json::from_str::<Top<'_>>(json).ok()?;
    let (_, value) = members.iter().find(|(key, _)| key == name)?;
    if value.get() != "null" {
        return None;
    }
    let mut out = Vec::with_capacity(json.len());
    out.push(b'{');
    for (key, raw) in members.iter().filter(|(key, _)| key != name) {
        let key = serde_json::to_vec(key.as_ref()).ok()?;
        write_member(&mut out, &key, raw.get().as_bytes());
    }
    out.push(b'}');
    // Keys were encoded by serde_json and values copied whole from valid JSON text.
    String::from_utf8(out).ok()
}

/// Appends `"key":value` (both already JSON) to an object being written.
fn write_member(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    if out.len() > 1 {
        out.push(b',');
    }
    out.extend_from_slice(key);
    out.push(b':');
    out.extend_from_slice(value);
}

/// The top-level members of a JSON object in order, a duplicate key's last value in its first one's
/// place (serde_json's `Value` keeps the last too).
struct Top<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> de::Deserialize<'de> for Top<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(TopVisitor)
    }
}

struct TopVisitor;

impl<'de> Visitor<'de> for TopVisitor {
    type Value = Top<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top<'de>, A::Error> {
        let mut members: Vec<(Cow<'de, str>, &'de RawValue)> = Vec::new();
        while let Some(Key(name)) = map.next_key()? {
            let raw: &'de RawValue = map.next_value()?;
            if let Some(slot) = members.iter_mut().find(|(n, _)| *n == name) {
                slot.1 = raw;
            } else if members.len() < MAX_MEMBERS {
                members.push((name, raw));
            } else {
                return Err(de::Error::custom("too many members"));
            }
        }
        Ok(Top(members))
    }
}

/// An object key, borrowed from the input unless it had escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> de::Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Owned(v.to_owned())))
    }
}

/// Deserializes a `Value` as serde_json's own `Value` does, noting in its flag when an object repeats
/// a key (the last copy is kept, as serde_json keeps it).
#[derive(Clone, Copy)]
struct ValueSeed<'r>(&'r Cell<bool>);

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ValueSeed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        self.deserialize(deserializer)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(self)?;
            if members.insert(key, value).is_some() {
                self.0.set(true);
            }
        }
        Ok(Value::Object(members))
    }
}

/// The top-level members a typed request serializes, in its order; the ones named in `fresh` with
/// their JSON. Values of the others are never serialized. Keys and values are written one after
/// another into one buffer, so reading a request's members allocates nothing per member.
struct Members<'f> {
    fresh: &'f [&'f str],
    /// Each member's key as a JSON string (quotes included), and the values written fresh.
    json: Vec<u8>,
    members: Vec<Member>,
    /// A map's key, until its value comes.
    pending: Option<Range<usize>>,
}

/// One member, as spans of [`Members::json`].
struct Member {
    key: Range<usize>,
    fresh: Option<Range<usize>>,
}

impl Members<'_> {
    /// A member's name: its key without the quotes, which is the name itself since keys that needed
    /// escaping are refused.
    fn name(&self, member: &Member) -> &[u8] {
        &self.json[member.key.start + 1..member.key.end - 1]
    }

    /// Writes `key` into the buffer; only a string without escapes is taken.
    fn key<K: Serialize + ?Sized>(&mut self, key: &K) -> Result<Range<usize>, serde_json::Error> {
        let start = self.json.len();
        key.serialize(&mut serde_json::Serializer::new(&mut self.json))?;
        let written = &self.json[start..];
        if written.len() < 2 || written[0] != b'"' || written.contains(&b'\\') {
            return Err(not_an_object());
        }
        Ok(start..self.json.len())
    }

    fn member<V: Serialize + ?Sized>(
        &mut self,
        key: Range<usize>,
        value: &V,
    ) -> Result<(), serde_json::Error> {
        let name = &self.json[key.start + 1..key.end - 1];
        let fresh = if self.fresh.iter().any(|f| f.as_bytes() == name) {
            let start = self.json.len();
            value.serialize(&mut serde_json::Serializer::new(&mut self.json))?;
            Some(start..self.json.len())
        } else {
            None
        };
        self.members.push(Member { key, fresh });
        Ok(())
    }
}

fn not_an_object() -> serde_json::Error {
    ser::Error::custom("the request does not serialize as a JSON object")
}

impl SerializeMap for &mut Members<'_> {
    type Ok = ();
    type Error = serde_json::Error;

    fn serialize_key<K: Serialize + ?Sized>(&mut self, key: &K) -> Result<(), serde_json::Error> {
        self.pending = Some(self.key(key)?);
        Ok(())
    }

    fn serialize_value<V: Serialize + ?Sized>(&mut self, value: &V) -> Result<(), serde_json::Error> {
        let key = self.pending.take().ok_or_else(not_an_object)?;
        self.member(key, value)
    }

    fn end(self) -> Result<(), serde_json::Error> {
        Ok(())
    }
}

impl SerializeStruct for &mut Members<'_> {
    type Ok = ();
    type Error = serde_json::Error;

    fn serialize_field<V: Serialize + ?Sized>(
        &mut self,
        name: &'static str,
        value: &V,
    ) -> Result<(), serde_json::Error> {
        let key = self.key(name)?;
        self.member(key, value)
    }

    fn end(self) -> Result<(), serde_json::Error> {
        Ok(())
    }
}

/// Only a map or a struct (a JSON object) is accepted at the top; everything else is an error.
impl<'a, 'f> Serializer for &'a mut Members<'f> {
    type Ok = ();
    type Error = serde_json::Error;
    type SerializeSeq = Impossible<(), serde_json::Error>;
    type SerializeTuple = Impossible<(), serde_json::Error>;
    type SerializeTupleStruct = Impossible<(), serde_json::Error>;
    type SerializeTupleVariant = Impossible<(), serde_json::Error>;
    type SerializeMap = &'a mut Members<'f>;
    type SerializeStruct = &'a mut Members<'f>;
    type SerializeStructVariant = Impossible<(), serde_json::Error>;

    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, serde_json::Error> {
        Ok(self)
    }
    fn serialize_struct(self, _: &'static str, _: usize) -> Result<Self::SerializeStruct, serde_json::Error> {
        Ok(self)
    }
    fn serialize_newtype_struct<V: Serialize + ?Sized>(
        self,
        _: &'static str,
        value: &V,
    ) -> Result<(), serde_json::Error> {
        value.serialize(self)
    }

    fn serialize_bool(self, _: bool) -> Result<(), serde_json::Error> {
        Err(not_an_object())
    }
    fn serialize_i8(self, _: i8) -> Result<(), serde_json::Error> {
        Err(not_an_object())
    }
    fn serialize_i16(self, _: i16) -> Result<(), serde_json::Error> {
        Err(not_an_object())
    }
    fn serialize_i32(self, _: i32) -> Result<(), serde_json::Error> {
        Err(not_an_object())
    }
    fn serialize_i64(self, _: i64) -> Result<(), serde_json::Error> {
        Err(not_an_object())
    }
    fn serialize_u8(self, _: u8) -> Result<(), serde_json::Error> {
        Err(not_an_object())
    }
    fn serialize_u16(self, _: u16) -> Result<(), serde_json::Error> {
        Err(not_an_object())
    }
    fn serialize_u32(self, _: u32) -> Result<(), serde_json::Error> {
        Err(not_an_object())
    }
    fn serialize_u64(self, _: u64) -> Result<(), serde_json::Error> {
        Err(not_an_object())
    }
    fn serialize_f32(self, _: f32) -> Result<(), serde_json::Error> {
        Err(not_an_object())
    }
    fn serialize_f64(self, _: f64) -> Result<(), serde_json::Error> {
        Err(not_an_object())
    }
    fn serialize_char(self, _: char) -> Result<(), serde_json::Error> {
        Err(not_an_object())
    }
    fn serialize_str(self, _: &str) -> Result<(), serde_json::Error> {
        Err(not_an_object())
    }
    fn serialize_bytes(self, _: &[u8]) -> Result<(), serde_json::Error> {
        Err(not_an_object())
    }
    fn serialize_none(self) -> Result<(), serde_json::Error> {
        Err(not_an_object())
    }
    fn serialize_some<V: Serialize + ?Sized>(self, _: &V) -> Result<(), serde_json::Error> {
        Err(not_an_object())
    }
    fn serialize_unit(self) -> Result<(), serde_json::Error> {
        Err(not_an_object())
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), serde_json::Error> {
        Err(not_an_object())
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
    ) -> Result<(), serde_json::Error> {
        Err(not_an_object())
    }
    fn serialize_newtype_variant<V: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &V,
    ) -> Result<(), serde_json::Error> {
        Err(not_an_object())
    }
    fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, serde_json::Error> {
        Err(not_an_object())
    }
    fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, serde_json::Error> {
        Err(not_an_object())
    }
    fn serialize_tuple_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleStruct, serde_json::Error> {
        Err(not_an_object())
    }
    fn serialize_tuple_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeTupleVariant, serde_json::Error> {
        Err(not_an_object())
    }
    fn serialize_struct_variant(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: usize,
    ) -> Result<Self::SerializeStructVariant, serde_json::Error> {
        Err(not_an_object())
    }
}

#[cfg(test)]
mod tests;
