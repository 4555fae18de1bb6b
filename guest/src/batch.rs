//! A batch of projected events as the rules read it: owned [`Event`]s (the Fluent Bit
//! plugin) or the packed form the `minewatch:detector@0.2.0` contract carries into the
//! component, where every string of a batch is one text and every field three numbers,
//! so lowering a batch costs two allocations instead of one per string. The host
//! projects records straight into the packed form ([`PackedBatch`]) for either engine.
//!
//! The packed form, for a detector declaring `W` field paths and a batch of `N` events:
//! - `text`: every string of the batch, one after another;
//! - `fields`: `N * W * 3` words, event `i`'s field `j` at `(i * W + j) * 3`:
//!   `[tag, a, b]`, tag [`ABSENT`] (`a` = `b` = 0), [`TEXT`] or [`OTHER`] (bytes `a..b` of
//!   `text`), [`TEXTS`] (strings `a..b` of `items`);
//! - `items`: two words per string of a `texts` field, its bytes `start..end` of `text`.
//!
//! [`PackedBatch::push_record`] writes it, [`Packed::new`] checks it before anything reads
//! it.

use std::fmt::Write as _;

use serde_json::Value;

use crate::model::{Event, Field};
use crate::projection::{FieldPath, Found};

/// Tag of an absent (missing or null) field.
pub const ABSENT: u32 = 0;
/// Tag of a string field.
pub const TEXT: u32 = 1;
/// Tag of the strings a path through arrays reached.
pub const TEXTS: u32 = 2;
/// Tag of any other JSON value, as its compact JSON text.
pub const OTHER: u32 = 3;

/// The value at one field path, borrowed from the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldRef<'a> {
    /// Missing or null.
    Absent,
    /// A string.
    Text(&'a str),
    /// Every string reached through an array step, in order.
    Texts(Vec<&'a str>),
    /// Any other JSON value, as compact JSON text.
    Other(&'a str),
}

/// A batch of events, in order, whatever form it came in.
#[derive(Debug, Clone, Copy)]
pub enum Batch<'a> {
    /// Events as the host projected them.
    Events(&'a [Event]),
    /// The packed form, checked.
    Packed(Packed<'a>),
}

impl<'a> From<&'a [Event]> for Batch<'a> {
    fn from(events: &'a [Event]) -> Self {
        Batch::Events(events)
    }
}

impl<'a> From<&'a Vec<Event>> for Batch<'a> {
    fn from(events: &'a Vec<Event>) -> Self {
        Batch::Events(events)
    }
}

impl<'a> Batch<'a> {
    /// Events in the batch.
    pub fn len(&self) -> usize {
        match self {
            Batch::Events(events) => events.len(),
            Batch::Packed(packed) => packed.len,
        }
    }

    /// Whether the batch holds no event.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Field `index` of event `event`; absent past the end of either.
    pub fn field(&self, event: usize, index: usize) -> FieldRef<'a> {
        match self {
            Batch::Events(events) => match events.get(event).and_then(|e| e.fields.get(index)) {
                None | Some(Field::Absent) => FieldRef::Absent,
                Some(Field::Text(s)) => FieldRef::Text(s),
                Some(Field::Texts(list)) => {
                    FieldRef::Texts(list.iter().map(String::as_str).collect())
                }
                Some(Field::Other(json)) => FieldRef::Other(json),
            },
            Batch::Packed(packed) => packed.field(event, index),
        }
    }
}

/// A packed batch whose words were checked against its text: every span lies inside it
/// on character boundaries, so reading a field cannot fail.
#[derive(Debug, Clone, Copy)]
pub struct Packed<'a> {
    text: &'a str,
    fields: &'a [u32],
    items: &'a [u32],
    width: usize,
    len: usize,
}

impl<'a> Packed<'a> {
    /// Checks a packed batch for a detector of `width` field paths.
    ///
    /// # Errors
    /// What is wrong with it, for the log: a length that is not a whole number of
    /// events, an unknown tag, a span outside the text or the items, or one that cuts a
    /// character.
    pub fn new(
        text: &'a str,
        fields: &'a [u32],
        items: &'a [u32],
        width: usize,
    ) -> Result<Packed<'a>, String> {
        if width == 0 {
            return Err(
                "a detector that declares no field paths cannot read a packed batch".into(),
            );
        }
        let event_words = width * 3;
        if !fields.len().is_multiple_of(event_words) {
            return Err(format!(
                "{} field words are not whole events of {width} fields",
                fields.len()
            ));
        }
        if !items.len().is_multiple_of(2) {
            return Err(format!("{} item words are not pairs", items.len()));
        }
        let span = |a: u32, b: u32| {
            let (a, b) = (a as usize, b as usize);
            a <= b && b <= text.len() && text.is_char_boundary(a) && text.is_char_boundary(b)
        };
        for (at, pair) in items.chunks_exact(2).enumerate() {
            if !span(pair[0], pair[1]) {
                return Err(format!(
                    "item {at} spans {}..{} of {} bytes",
                    pair[0],
                    pair[1],
                    text.len()
                ));
            }
        }
        for (at, word) in fields.chunks_exact(3).enumerate() {
            let (tag, a, b) = (word[0], word[1], word[2]);
            let fits = match tag {
                ABSENT => true,
                TEXT | OTHER => span(a, b),
                TEXTS => a <= b && b as usize <= items.len() / 2,
                _ => return Err(format!("field {at} has tag {tag}")),
            };
            if !fits {
                return Err(format!(
                    "field {at} (tag {tag}) spans {a}..{b} outside the batch"
                ));
            }
        }
        Ok(Packed {
            text,
            fields,
            items,
            width,
            len: fields.len() / event_words,
        })
    }

    /// Events in the batch (its length is checked to be a whole number of them).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the batch holds no event.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn field(&self, event: usize, index: usize) -> FieldRef<'a> {
        if index >= self.width {
            return FieldRef::Absent;
        }
        let at = (event * self.width + index) * 3;
        let Some(&[tag, a, b]) = self.fields.get(at..at + 3) else {
            return FieldRef::Absent;
        };
        let text = |a: u32, b: u32| &self.text[a as usize..b as usize];
        match tag {
            TEXT => FieldRef::Text(text(a, b)),
            OTHER => FieldRef::Other(text(a, b)),
            TEXTS => FieldRef::Texts(
                self.items[a as usize * 2..b as usize * 2]
                    .chunks_exact(2)
                    .map(|pair| text(pair[0], pair[1]))
                    .collect(),
            ),
            _ => FieldRef::Absent,
        }
    }
}

/// An owned packed batch, as a host builds and sends it: records are projected straight
/// into it, one event at a time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackedBatch {
    text: String,
    fields: Vec<u32>,
    items: Vec<u32>,
    width: usize,
    len: usize,
}

impl PackedBatch {
    /// An empty batch for a detector declaring `width` field paths.
    pub fn new(width: usize) -> PackedBatch {
        PackedBatch {
            width,
            ..PackedBatch::default()
        }
    }

    /// Appends `record` projected to `paths` (the detector's declared paths, as many as
    /// the width), its strings copied once, into the batch's text.
    ///
    /// # Errors
    /// The batch's strings or lists would pass 4 GiB; the batch is left as it was.
    pub fn push_record(&mut self, record: &Value, paths: &[FieldPath]) -> Result<(), String> {
        self.push_with(
            |batch, index| match paths.get(index).map(|p| p.find(record)) {
                None | Some(Found::Absent) => Ok([ABSENT, 0, 0]),
                Some(Found::Text(s)) => batch.push_text(TEXT, s),
                Some(Found::Texts(list)) => batch.push_texts(list.into_iter()),
                Some(Found::Other(value)) => {
                    let start = offset(batch.text.len())?;
                    write!(batch.text, "{value}").expect("writing to a String cannot fail");
                    Ok([OTHER, start, offset(batch.text.len())?])
                }
            },
        )
    }

    /// Appends one event whose field `index` is written by `field`; on an error the
    /// batch is cut back to what it held.
    fn push_with(
        &mut self,
        mut field: impl FnMut(&mut PackedBatch, usize) -> Result<[u32; 3], String>,
    ) -> Result<(), String> {
        let before = (self.text.len(), self.fields.len(), self.items.len());
        for index in 0..self.width {
            match field(self, index) {
                Ok(word) => self.fields.extend(word),
                Err(error) => {
                    self.text.truncate(before.0);
                    self.fields.truncate(before.1);
                    self.items.truncate(before.2);
                    return Err(error);
                }
            }
        }
        self.len += 1;
        Ok(())
    }

    /// Appends `s` to the text; the field word that spans it.
    fn push_text(&mut self, tag: u32, s: &str) -> Result<[u32; 3], String> {
        let start = offset(self.text.len())?;
        self.text.push_str(s);
        Ok([tag, start, offset(self.text.len())?])
    }

    /// Appends the strings of a `texts` field; the field word that spans its items.
    fn push_texts<'s>(&mut self, list: impl Iterator<Item = &'s str>) -> Result<[u32; 3], String> {
        let start = offset(self.items.len() / 2)?;
        for s in list {
            let [_, a, b] = self.push_text(TEXTS, s)?;
            self.items.extend([a, b]);
        }
        Ok([TEXTS, start, offset(self.items.len() / 2)?])
    }

    /// Events in the batch.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the batch holds no event.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Field paths per event.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Every string of the batch.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Three words per field of each event.
    pub fn fields(&self) -> &[u32] {
        &self.fields
    }

    /// Two words per string of a `texts` field.
    pub fn items(&self) -> &[u32] {
        &self.items
    }

    /// Empties the batch, keeping its buffers and width.
    pub fn clear(&mut self) {
        self.text.clear();
        self.fields.clear();
        self.items.clear();
        self.len = 0;
    }

    /// The batch as the rules read it. Its spans need no check: each was written here
    /// around a whole string of the text.
    pub fn batch(&self) -> Batch<'_> {
        Batch::Packed(Packed {
            text: &self.text,
            fields: &self.fields,
            items: &self.items,
            width: self.width,
            len: self.len,
        })
    }
}

fn offset(n: usize) -> Result<u32, String> {
    u32::try_from(n).map_err(|_| format!("a packed batch of {n} bytes or strings passes 4 GiB"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::projection::project;

    /// Packs `events`, each to `width` fields (missing ones absent, extra ones left out).
    fn pack(events: &[Event], width: usize) -> Result<PackedBatch, String> {
        let mut batch = PackedBatch::new(width);
        for event in events {
            batch.push_with(|batch, index| match event.fields.get(index) {
                None | Some(Field::Absent) => Ok([ABSENT, 0, 0]),
                Some(Field::Text(s)) => batch.push_text(TEXT, s),
                Some(Field::Other(json)) => batch.push_text(OTHER, json),
                Some(Field::Texts(list)) => batch.push_texts(list.iter().map(String::as_str)),
            })?;
        }
        Ok(batch)
    }

    /// The checked view of a packed batch.
    fn checked(packed: &PackedBatch, width: usize) -> Packed<'_> {
        Packed::new(&packed.text, &packed.fields, &packed.items, width).unwrap()
    }

    fn events() -> Vec<Event> {
        vec![
            Event {
                fields: vec![
                    Field::Text("RunInstances".into()),
                    Field::Absent,
                    Field::Texts(vec!["ami-1".into(), "".into(), "ami-é2".into()]),
                ],
            },
            Event {
                fields: vec![Field::Other(r#"{"value":"p2.xlarge"}"#.into())],
            },
        ]
    }

    #[test]
    fn packed_reads_what_was_packed() {
        let events = events();
        let packed = pack(&events, 3).unwrap();
        let view = Batch::Packed(checked(&packed, 3));
        let owned = Batch::from(&events);
        assert_eq!(view.len(), 2);
        for event in 0..2 {
            for index in 0..4 {
                assert_eq!(
                    view.field(event, index),
                    owned.field(event, index),
                    "{event}.{index}"
                );
            }
        }
        assert_eq!(
            view.field(0, 2),
            FieldRef::Texts(vec!["ami-1", "", "ami-é2"])
        );
        assert_eq!(view.field(1, 2), FieldRef::Absent, "padded to the width");
        let narrow = pack(&events, 1).unwrap();
        assert_eq!(checked(&narrow, 1).len(), 2, "extra fields left out");
    }

    #[test]
    fn records_projected_into_the_batch_read_as_their_owned_projection() {
        let paths: Vec<FieldPath> = [
            "eventName",
            "requestParameters.instancesSet.items[].imageId",
            "requestParameters.instanceType",
            "errorCode",
            "userIdentity.arn",
        ]
        .iter()
        .map(|p| FieldPath::parse(p).unwrap())
        .collect();
        let records = [
            json!({"eventName": "RunInstances", "errorCode": null,
                "requestParameters": {"instanceType": "p3.16xlarge", "instancesSet":
                    {"items": [{"imageId": "ami-1"}, {"x": 1}, {"imageId": "ami-é2"}]}}}),
            json!({"eventName": "RunInstances", "userIdentity": {"arn": 7},
                "requestParameters": {"instanceType": {"value": "g4dn.xlarge"},
                    "instancesSet": {"items": [{"imageId": ["ami-3"]}]}}}),
            json!({}),
        ];
        let mut batch = PackedBatch::new(paths.len());
        for record in &records {
            batch.push_record(record, &paths).unwrap();
        }
        let events: Vec<Event> = records.iter().map(|r| project(r, &paths)).collect();
        assert_eq!(batch, pack(&events, paths.len()).unwrap());
        let (view, owned) = (batch.batch(), Batch::from(&events));
        assert_eq!(view.len(), 3);
        for event in 0..3 {
            for index in 0..paths.len() {
                assert_eq!(view.field(event, index), owned.field(event, index));
            }
        }
        assert_eq!(view.field(1, 1), FieldRef::Other(r#"["ami-3"]"#));
        assert_eq!(view.field(1, 4), FieldRef::Other("7"));
        assert!(
            Packed::new(batch.text(), batch.fields(), batch.items(), batch.width()).is_ok(),
            "what the host writes passes the guest's check"
        );
        batch.clear();
        assert!(batch.is_empty() && batch.text().is_empty());
        // A detector that declares no paths still counts its events.
        let mut bare = PackedBatch::new(0);
        bare.push_record(&records[0], &[]).unwrap();
        assert_eq!(bare.batch().len(), 1);
    }

    #[test]
    fn broken_batches_are_refused_with_the_reason() {
        let packed = pack(&events(), 3).unwrap();
        let refused = |text: &str, fields: &[u32], items: &[u32]| {
            Packed::new(text, fields, items, 3).unwrap_err()
        };
        assert!(
            refused(&packed.text, &packed.fields[..17], &packed.items).contains("whole events")
        );
        assert!(refused(&packed.text, &packed.fields, &packed.items[..5]).contains("pairs"));
        let mut fields = packed.fields.clone();
        fields[3] = 9;
        assert!(refused(&packed.text, &fields, &packed.items).contains("tag 9"));
        let mut fields = packed.fields.clone();
        fields[2] = packed.text.len() as u32 + 1;
        assert!(refused(&packed.text, &fields, &packed.items).contains("outside"));
        let mut fields = packed.fields.clone();
        fields[8] = 4;
        assert!(refused(&packed.text, &fields, &packed.items).contains("outside"));
        // A span that cuts `é` in half.
        let cut = packed.text.find('é').unwrap() as u32 + 1;
        let mut items = packed.items.clone();
        items[5] = cut;
        assert!(refused(&packed.text, &packed.fields, &items).contains("item 2"));
        assert!(
            Packed::new("", &[], &[], 0)
                .unwrap_err()
                .contains("no field paths")
        );
        assert_eq!(Packed::new("", &[], &[], 3).unwrap().len(), 0);
    }
}
