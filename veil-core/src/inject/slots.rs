//! Where in a request a secret may be injected: its slots.
//!
//! As the API writes them: a list of `"headers"`, `"query"`, `"path"`, `"form"`, `"json"`,
//! or, to restrict one, `{"headers": [names]}`, `{"form": [field names]}`,
//! `{"json": [JSON pointers]}`. Without a list a secret has `["headers"]`.

use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::body::{Pointer, PointerError};

/// Most names or pointers one slot may list.
pub const MAX_SLOT_NAMES: usize = 64;

/// Longest header or form field name a slot may list.
const MAX_NAME: usize = 256;

/// The slots of one secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slots {
    /// Request header values (Basic credentials decoded); names lower case.
    pub headers: Option<Names>,
    /// The query string of the request target, percent-encoded.
    pub query: bool,
    /// The path of the request target, percent-encoded for a segment.
    pub path: bool,
    /// `application/x-www-form-urlencoded` body field values, percent-encoded.
    pub form: Option<Names>,
    /// JSON body string values, JSON-escaped.
    pub json: Option<Pointers>,
}

/// Which names a slot covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Names {
    /// Every one.
    Any,
    /// Only these (at least one).
    Only(Vec<String>),
}

/// Which JSON string values a slot covers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pointers {
    /// Every string value.
    Any,
    /// Only the values at these pointers (at least one).
    Only(Vec<Pointer>),
}

/// Why a list of slots was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SlotError {
    /// Not a list, or an empty one.
    #[error("must be a non-empty array of slots (\"headers\", \"query\", \"path\", \"form\", \"json\", or {{\"form\": [names]}} and the like)")]
    NotAList,
    /// An item that is not one of the slots.
    #[error("item {0} is not a slot: use \"headers\", \"query\", \"path\", \"form\", \"json\", or an object with one of headers, form, json")]
    Unknown(usize),
    /// The same slot twice.
    #[error("slot {0:?} is given twice")]
    Duplicate(&'static str),
    /// A restricted slot's list is not a non-empty list of strings, or is too long.
    #[error("slot {0:?} must list 1 to 64 strings")]
    BadList(&'static str),
    /// A header or field name that is empty, too long or holds control bytes.
    #[error("slot {slot:?}: {name:?} is not a valid name")]
    BadName {
        /// The slot.
        slot: &'static str,
        /// The name, shortened.
        name: String,
    },
    /// A JSON pointer that does not parse.
    #[error("slot \"json\": {0}")]
    Pointer(#[from] PointerError),
}

impl Default for Slots {
    fn default() -> Self {
        Self {
            headers: Some(Names::Any),
            query: false,
            path: false,
            form: None,
            json: None,
        }
    }
}

impl Slots {
    /// Parses the API's list of slots.
    pub fn from_json(value: &Value) -> Result<Self, SlotError> {
        let Value::Array(items) = value else {
            return Err(SlotError::NotAList);
        };
        if items.is_empty() {
            return Err(SlotError::NotAList);
        }
        let mut slots = Self {
            headers: None,
            query: false,
            path: false,
            form: None,
            json: None,
        };
        let mut seen: Vec<&'static str> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let (kind, list) = match item {
                Value::String(s) => (kind(s).ok_or(SlotError::Unknown(i))?, None),
                Value::Object(map) if map.len() == 1 => {
                    let (k, v) = map.iter().next().ok_or(SlotError::Unknown(i))?;
                    let kind = kind(k)
                        .filter(|k| matches!(*k, "headers" | "form" | "json"))
                        .ok_or(SlotError::Unknown(i))?;
                    (kind, Some(strings(v, kind)?))
                }
                _ => return Err(SlotError::Unknown(i)),
            };
            if seen.contains(&kind) {
                return Err(SlotError::Duplicate(kind));
            }
            seen.push(kind);
            match kind {
                "headers" => slots.headers = Some(names(list, kind, true)?),
                "query" => slots.query = true,
                "path" => slots.path = true,
                "form" => slots.form = Some(names(list, kind, false)?),
                _ => {
                    slots.json = Some(match list {
                        None => Pointers::Any,
                        Some(list) => Pointers::Only(
                            list.iter()
                                .map(|p| Pointer::parse(p))
                                .collect::<Result<_, _>>()?,
                        ),
                    })
                }
            }
        }
        Ok(slots)
    }

    /// The API's list for these slots.
    pub fn to_json(&self) -> Value {
        let mut out = Vec::new();
        let restricted = |kind: &str, list: Vec<Value>| {
            let mut map = Map::new();
            map.insert(kind.to_owned(), Value::Array(list));
            Value::Object(map)
        };
        let names = |kind: &str, names: &Names| match names {
            Names::Any => Value::String(kind.to_owned()),
            Names::Only(list) => restricted(
                kind,
                list.iter().map(|n| Value::String(n.clone())).collect(),
            ),
        };
        if let Some(headers) = &self.headers {
            out.push(names("headers", headers));
        }
        if self.query {
            out.push(Value::String("query".to_owned()));
        }
        if self.path {
            out.push(Value::String("path".to_owned()));
        }
        if let Some(form) = &self.form {
            out.push(names("form", form));
        }
        match &self.json {
            Some(Pointers::Any) => out.push(Value::String("json".to_owned())),
            Some(Pointers::Only(list)) => out.push(restricted(
                "json",
                list.iter()
                    .map(|p| Value::String(p.as_str().to_owned()))
                    .collect(),
            )),
            None => {}
        }
        Value::Array(out)
    }

    /// Whether a placeholder in header `name` may be swapped.
    pub fn allows_header(&self, name: &str) -> bool {
        match &self.headers {
            None => false,
            Some(Names::Any) => true,
            Some(Names::Only(names)) => names.iter().any(|n| n.eq_ignore_ascii_case(name)),
        }
    }
}

impl Names {
    /// Whether `name` is covered.
    pub fn allows(&self, name: &[u8]) -> bool {
        match self {
            Self::Any => true,
            Self::Only(names) => names.iter().any(|n| n.as_bytes() == name),
        }
    }

    /// Whether only some names are covered.
    pub fn is_only(&self) -> bool {
        matches!(self, Self::Only(_))
    }
}

impl Serialize for Slots {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Slots {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        Self::from_json(&value).map_err(de::Error::custom)
    }
}

/// The slot kind `s` names.
fn kind(s: &str) -> Option<&'static str> {
    ["headers", "query", "path", "form", "json"]
        .into_iter()
        .find(|k| *k == s)
}

/// A restricted slot's list.
fn strings(value: &Value, kind: &'static str) -> Result<Vec<String>, SlotError> {
    let Value::Array(items) = value else {
        return Err(SlotError::BadList(kind));
    };
    if items.is_empty() || items.len() > MAX_SLOT_NAMES {
        return Err(SlotError::BadList(kind));
    }
    items
        .iter()
        .map(|item| match item {
            Value::String(s) => Ok(s.clone()),
            _ => Err(SlotError::BadList(kind)),
        })
        .collect()
}

/// Names from a restricted slot's list (lower-cased for headers), or `Any`.
fn names(list: Option<Vec<String>>, slot: &'static str, header: bool) -> Result<Names, SlotError> {
    let Some(list) = list else {
        return Ok(Names::Any);
    };
    let mut out: Vec<String> = Vec::with_capacity(list.len());
    for name in list {
        let ok = !name.is_empty()
            && name.len() <= MAX_NAME
            && !name.bytes().any(|b| b.is_ascii_control())
            && (!header
                || name
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b)));
        if !ok {
            return Err(SlotError::BadName {
                slot,
                name: name.chars().take(64).collect(),
            });
        }
        let name = if header {
            name.to_ascii_lowercase()
        } else {
            name
        };
        if !out.contains(&name) {
            out.push(name);
        }
    }
    Ok(Names::Only(out))
}
