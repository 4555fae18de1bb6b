//! Cutting a record down to the fields the detectors read, while it is parsed.
//!
//! Two roads lead here. A CloudTrail record over `max_record_bytes` is nearly always a
//! mass launch: a `RunInstances` whose response lists every instance at about 2.4 KB
//! each, so 500 instances make a 1.2 MB line; it is parsed straight from the input into
//! the declared field paths, and the size limit applies to what is kept. And when
//! nothing downstream needs whole records (no passthrough output, no dead-letter file:
//! [`super::Visitor::cut_fields`]), every record read whole is parsed the same way: a
//! 4.5 KB launch keeps a few hundred bytes, and building a `serde_json::Value` of the
//! rest was the largest cost of a launch (see BENCHMARKS.md).
//!
//! Everything else is skipped without being kept (keys are borrowed from the input,
//! skipped values never copied). `Records` lists and EventBridge `detail` objects hold
//! whole records and are cut the same way; the keys the envelopes are recognised by are
//! kept whole, so a cut envelope opens as the whole one did.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess};
use serde_json::{Map, Value};

use super::envelope::{SHAPE_KEYS, WRAPPER_FIELDS};

/// Fields kept beside the detectors' own: what tells each cloud's records apart and
/// names their call and time ([`super::audit`]; the subscription, the time the `serve`
/// scheduler orders by), and the fields that classify CloudTrail's neighbours.
const ALWAYS: [&str; 15] = [
    "eventSource",
    "eventName",
    "eventTime",
    "eventID",
    "eventType",
    "eventCategory",
    "protoPayload.serviceName",
    "protoPayload.methodName",
    "timestamp",
    "operationName",
    "resourceId",
    "correlationId",
    "time",
    "eventTimestamp",
    "caller",
];

/// Keys that hold whole records, cut with the same field set.
const RECORD_HOLDERS: [&str; 4] = ["Records", "records", "entries", "detail"];

/// The field paths to keep of an oversized record: dot-separated keys, `[]` stepping
/// into every array element (the WIT projection's syntax); arrays on the way are
/// stepped into whatever the path says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldSet {
    root: Arc<Node>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Node {
    keys: BTreeMap<String, Keep>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Keep {
    /// The whole value.
    Whole,
    /// Only the listed keys below.
    Part(Node),
    /// A record (or a list of records): cut from the root again.
    Record,
}

impl FieldSet {
    /// The set of `paths` plus the fields every record keeps and the envelopes' keys.
    pub fn new<'a>(paths: impl IntoIterator<Item = &'a str>) -> FieldSet {
        let mut root = Node::default();
        for holder in RECORD_HOLDERS {
            root.keys.insert(holder.to_string(), Keep::Record);
        }
        // The keys the envelopes are told apart and opened by, whole: a cut envelope
        // reads as the whole one did (a wrapper that holds records is cut as one).
        let envelopes = SHAPE_KEYS
            .into_iter()
            .chain(WRAPPER_FIELDS)
            .filter(|key| !RECORD_HOLDERS.contains(key));
        for path in ALWAYS.into_iter().chain(envelopes).chain(paths) {
            root.insert(path);
        }
        FieldSet {
            root: Arc::new(root),
        }
    }

    /// The paths of both sets.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut root = (*self.root).clone();
        root.merge(&other.root);
        FieldSet {
            root: Arc::new(root),
        }
    }

    /// This set with one more path (a routing field, say).
    pub fn with(&self, path: &str) -> FieldSet {
        let mut root = (*self.root).clone();
        root.insert(path);
        FieldSet {
            root: Arc::new(root),
        }
    }

    /// Parses JSON text (one value, whitespace around it) keeping only this set's
    /// fields, with no limit on their size; the strings of skipped keys and values are
    /// never copied.
    ///
    /// # Errors
    /// The text is not one JSON value.
    pub fn parse(&self, text: &[u8]) -> serde_json::Result<Value> {
        let mut reader = serde_json::Deserializer::from_slice(text);
        let value = self.cutter(usize::MAX).seed().deserialize(&mut reader)?;
        reader.end()?;
        Ok(value)
    }

    /// A seed that cuts the value it reads down to this set, failing with
    /// [`OVER_BUDGET`] once the kept strings and keys pass `budget` bytes.
    pub(super) fn cutter(&self, budget: usize) -> Cutter<'_> {
        Cutter {
            root: &self.root,
            left: Cell::new(budget),
        }
    }
}

impl Node {
    fn insert(&mut self, path: &str) {
        let mut node = self;
        let mut steps = path.split('.').peekable();
        while let Some(step) = steps.next() {
            let key = step.strip_suffix("[]").unwrap_or(step);
            if key.is_empty() {
                return;
            }
            if steps.peek().is_none() {
                node.keys.insert(key.to_string(), Keep::Whole);
                return;
            }
            let entry = node
                .keys
                .entry(key.to_string())
                .or_insert_with(|| Keep::Part(Node::default()));
            match entry {
                Keep::Part(next) => node = next,
                // Already kept whole, or a record cut from the root: nothing to add.
                Keep::Whole | Keep::Record => return,
            }
        }
    }

    fn merge(&mut self, other: &Node) {
        for (key, keep) in &other.keys {
            match (self.keys.get_mut(key), keep) {
                (None, _) => {
                    self.keys.insert(key.clone(), keep.clone());
                }
                (Some(Keep::Part(mine)), Keep::Part(theirs)) => mine.merge(theirs),
                (Some(mine @ Keep::Part(_)), Keep::Whole) => *mine = Keep::Whole,
                (Some(_), _) => {}
            }
        }
    }
}

/// The error text a cut reports when the kept part alone is over the budget.
pub(super) const OVER_BUDGET: &str = "the fields the detectors read are over max_record_bytes";

/// Reads one JSON value keeping only a [`FieldSet`]'s paths (see [`FieldSet::cutter`]).
pub(super) struct Cutter<'a> {
    root: &'a Node,
    /// Bytes of strings and keys that may still be kept.
    left: Cell<usize>,
}

impl Cutter<'_> {
    fn charge<E: de::Error>(&self, bytes: usize) -> Result<(), E> {
        match self.left.get().checked_sub(bytes) {
            Some(left) => {
                self.left.set(left);
                Ok(())
            }
            None => Err(E::custom(OVER_BUDGET)),
        }
    }

    /// The seed that reads a whole record.
    pub(super) fn seed(&self) -> Seed<'_> {
        self.at(Some(self.root))
    }

    fn at<'b>(&'b self, node: Option<&'b Node>) -> Seed<'b> {
        Seed { cutter: self, node }
    }
}

/// One position inside the value being cut: what to keep of it (`None`: all of it).
#[derive(Clone, Copy)]
pub(super) struct Seed<'b> {
    cutter: &'b Cutter<'b>,
    node: Option<&'b Node>,
}

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> de::Visitor<'de> for Seed<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(v.into())
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Value, E> {
        self.cutter.charge(v.len())?;
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Value, E> {
        self.cutter.charge(v.len())?;
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: de::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut kept = Map::new();
        while let Some(key) = map.next_key_seed(Key)? {
            let next = match self.node {
                None => Some(None),
                Some(node) => match node.keys.get(key.as_ref()) {
                    None => None,
                    Some(Keep::Whole) => Some(None),
                    Some(Keep::Part(below)) => Some(Some(below)),
                    Some(Keep::Record) => Some(Some(self.cutter.root)),
                },
            };
            match next {
                Some(node) => {
                    self.cutter.charge(key.len())?;
                    let value = map.next_value_seed(self.cutter.at(node))?;
                    kept.insert(key.into_owned(), value);
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Value::Object(kept))
    }
}

/// A map key, borrowed from the input when it holds no escapes: most keys of a record
/// are skipped, and an owned copy of each would cost more than skipping its value.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = Cow<'de, str>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> de::Visitor<'de> for Key {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(v))
    }
}
