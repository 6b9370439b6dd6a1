//! Proptest generators shared by the crate's tests: arbitrary JSON, typed JSON objects with random
//! unknown members, and the round-trip check.

use proptest::collection::{btree_map, vec};
use proptest::prelude::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

/// Floats whose decimal form parses back exactly even without serde_json's `float_roundtrip`
/// feature: few significant digits, binary fractions.
pub fn nice_f64() -> impl Strategy<Value = f64> {
    (any::<i16>(), 0u32..=10).prop_map(|(m, e)| f64::from(m) / f64::from(1u32 << e))
}

pub fn j_f64() -> BoxedStrategy<Value> {
    nice_f64().prop_map(Value::from).boxed()
}

pub fn j_u64() -> BoxedStrategy<Value> {
    any::<u64>().prop_map(Value::from).boxed()
}

pub fn j_u32() -> BoxedStrategy<Value> {
    any::<u32>().prop_map(Value::from).boxed()
}

pub fn j_i64() -> BoxedStrategy<Value> {
    any::<i64>().prop_map(Value::from).boxed()
}

pub fn j_bool() -> BoxedStrategy<Value> {
    any::<bool>().prop_map(Value::from).boxed()
}

pub fn j_string() -> BoxedStrategy<Value> {
    "(?s).{0,12}".prop_map(Value::from).boxed()
}

pub fn j_strings() -> BoxedStrategy<Value> {
    vec(j_string(), 0..4).prop_map(Value::Array).boxed()
}

pub fn j_array(item: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    vec(item, 0..3).prop_map(Value::Array).boxed()
}

/// Any JSON value at all, nested a few levels.
pub fn any_json() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![Just(Value::Null), j_bool(), j_i64(), j_u64(), j_f64(), j_string(),];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            vec(inner.clone(), 0..4).prop_map(Value::Array),
            btree_map("(?s).{0,6}", inner, 0..4).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
    .boxed()
}

/// Builds a strategy for a JSON object with known members of given types plus random unknown ones.
pub struct Obj {
    names: Vec<&'static str>,
    fields: Vec<BoxedStrategy<Option<Value>>>,
}

impl Obj {
    pub fn new() -> Self {
        Self {
            names: Vec::new(),
            fields: Vec::new(),
        }
    }

    /// A member that is always present.
    pub fn req(mut self, name: &'static str, value: BoxedStrategy<Value>) -> Self {
        self.names.push(name);
        self.fields.push(value.prop_map(Some).boxed());
        self
    }

    /// A member that is present or absent, never `null`.
    pub fn opt(mut self, name: &'static str, value: BoxedStrategy<Value>) -> Self {
        self.names.push(name);
        self.fields.push(proptest::option::of(value).boxed());
        self
    }

    /// The object, with up to three unknown members whose names differ from every known one.
    pub fn build(self) -> BoxedStrategy<Value> {
        let names = self.names;
        let unknown = vec(("[a-z_]{1,10}", any_json()), 0..4);
        (self.fields, unknown)
            .prop_map(move |(values, unknown)| {
                let mut map = Map::new();
                for (name, value) in unknown {
                    if !names.contains(&name.as_str()) {
                        map.insert(name, value);
                    }
                }
                for (name, value) in names.iter().zip(values) {
                    if let Some(value) = value {
                        map.insert((*name).to_owned(), value);
                    }
                }
                Value::Object(map)
            })
            .boxed()
    }
}

/// `json` → `T` → JSON must give `json` back, both through `Value` and through text.
pub fn assert_round_trip<T: DeserializeOwned + Serialize>(json: &Value) -> Result<(), TestCaseError> {
    let typed: T = serde_json::from_value(json.clone()).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(
        &serde_json::to_value(&typed).map_err(|e| TestCaseError::fail(e.to_string()))?,
        json
    );

    let text = serde_json::to_string(json).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let typed: T = serde_json::from_str(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let again = serde_json::to_string(&typed).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let again: Value = serde_json::from_str(&again).map_err(|e| TestCaseError::fail(e.to_string()))?;
    prop_assert_eq!(&again, json);
    Ok(())
}
