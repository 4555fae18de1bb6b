//! OCSF records held to the official schema files of the version they declare, copied
//! unchanged under `tests/data/ocsf-schema-<version>/` (see its PROVENANCE.md).
//!
//! [`problems`] resolves a record's class from `class_uid` the way the schema defines it:
//! `extends` chains, `$include` of profile and include files (a profile's attributes carry
//! that profile; the including file's own definitions win), the dictionary under every
//! attribute, `*_dt` siblings of timestamps for the `datetime` profile, and the
//! observable type ids gathered from types and objects. It then reports missing required
//! attributes, attributes that neither the class or object nor a profile declared in
//! `metadata.profiles` defines, enum values, their captions in the sibling attribute,
//! value types (arrays, objects, integer, long, float, boolean, string, ranges and
//! lengths), `at_least_one` / `just_one` constraints, `type_uid`, and `observables[].name`
//! paths, recursively through objects. Regex patterns of string subtypes are not
//! checked: the OCSF server's validator only warns on them.
//!
//! The tests below hold the validator itself to records that must fail, then every
//! finding the real binary writes.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Map, Value, json};

use crate::util::{command, data, generate_scenario, records, setup};

/// Everything wrong with `record` under the OCSF schema of its `metadata.version`, one
/// line per problem, each starting with the attribute's path; empty when it validates.
///
/// Works for any class whose file is in the copied schema: the Findings category at
/// 1.1.0 (2001 to 2005), e.g. `problems(&incident)` for a 2005 Incident Finding.
pub fn problems(record: &Value) -> Vec<String> {
    let Some(fields) = record.as_object() else {
        return vec!["the record is not a JSON object".into()];
    };
    let Some(version) = record.pointer("/metadata/version").and_then(Value::as_str) else {
        return vec!["metadata.version: missing; it names the schema to check against".into()];
    };
    match schema(version) {
        Ok(schema) => {
            let mut out = Vec::new();
            schema.check(fields, &mut out);
            out
        }
        Err(e) => vec![e],
    }
}

/// Panics with the problems of every record that does not validate (the first ten,
/// with the record), saying which `what` they came from.
pub fn assert_valid(what: &str, records: &[Value]) {
    let bad: Vec<String> = records
        .iter()
        .filter_map(|r| {
            let p = problems(r);
            (!p.is_empty()).then(|| format!("{}\n  in {r}", p.join("\n")))
        })
        .collect();
    assert!(
        bad.is_empty(),
        "{} of {} OCSF records from {what} do not validate:\n{}",
        bad.len(),
        records.len(),
        bad.iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n\n")
    );
}

/// A schema as read, or why it could not be.
type Loaded = Result<Arc<Schema>, String>;

/// The schema of `version`, read once per test run.
fn schema(version: &str) -> Loaded {
    static CACHE: OnceLock<Mutex<HashMap<String, Loaded>>> = OnceLock::new();
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    cache
        .entry(version.to_string())
        .or_insert_with(|| {
            let dir = data(&format!("ocsf-schema-{version}"));
            if !dir.is_dir() {
                return Err(format!(
                    "metadata.version: no schema files for OCSF {version} in {}",
                    dir.display()
                ));
            }
            Schema::load(&dir).map(Arc::new)
        })
        .clone()
}

/// A class or an object with everything it inherits and includes resolved.
struct Item {
    /// `class detection_finding` or `object endpoint`, for messages.
    what: String,
    /// Attribute definitions merged over the dictionary's; empty means any attribute.
    attributes: Map<String, Value>,
    constraints: Map<String, Value>,
    /// The `profiles` the item lists (with its parents').
    profiles: BTreeSet<String>,
}

struct Schema {
    classes: HashMap<i64, Item>,
    objects: HashMap<String, Item>,
    types: Map<String, Value>,
    /// Every profile the schema defines.
    known_profiles: BTreeSet<String>,
    /// Per class uid: the profiles the class, its attributes and the objects it reaches use.
    applicable: HashMap<i64, BTreeSet<String>>,
}

fn read(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// `right` over `left` as the OCSF server merges definitions: maps merge key by key
/// (an empty map gives way to the other side), anything else is replaced, null included.
fn merged(left: &Value, right: &Value) -> Value {
    match (left, right) {
        (Value::Object(l), Value::Object(r)) if !l.is_empty() && !r.is_empty() => {
            let mut out = l.clone();
            for (k, v) in r {
                let v = match l.get(k) {
                    Some(old) => merged(old, v),
                    None => v.clone(),
                };
                out.insert(k.clone(), v);
            }
            Value::Object(out)
        }
        (Value::Object(l), Value::Object(r)) if r.is_empty() => Value::Object(l.clone()),
        _ => right.clone(),
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect(),
        _ => Vec::new(),
    }
}

/// A definition's own attributes after its `$include`s: an included profile marks its
/// attributes with `profile`, an include's `annotations` are defaults, and what the
/// including file (or an earlier include) says wins. An attribute's own `$include`
/// (an enum file) is merged under it.
fn own_attributes(root: &Path, def: &Value) -> Result<Map<String, Value>, String> {
    let mut attributes = def["attributes"].as_object().cloned().unwrap_or_default();
    let includes = strings(attributes.remove("$include").as_ref());
    let mut result = Value::Object(attributes);
    for file in includes {
        let included = read(&root.join(&file))?;
        let profile = (included["meta"] == "profile")
            .then(|| included["name"].as_str())
            .flatten();
        let mut marked = Map::new();
        for (name, attribute) in included["attributes"].as_object().into_iter().flatten() {
            let mut attribute = attribute.clone();
            if let (Some(p), Some(a)) = (profile, attribute.as_object_mut()) {
                a.insert("profile".into(), p.into());
            }
            if let Some(annotations) = included.get("annotations") {
                attribute = merged(annotations, &attribute);
            }
            marked.insert(name.clone(), attribute);
        }
        result = merged(&Value::Object(marked), &result);
    }
    let Value::Object(mut attributes) = result else {
        unreachable!()
    };
    for attribute in attributes.values_mut() {
        if let Some(file) = attribute.get("$include").and_then(Value::as_str) {
            let included = read(&root.join(file))?;
            let mut own = attribute.clone();
            own.as_object_mut().unwrap().remove("$include");
            *attribute = merged(&included, &own);
        }
    }
    Ok(attributes)
}

/// A definition with its `extends` chain folded in: attributes merge (a null one is
/// removed), `profiles` accumulate, anything else the child sets replaces the parent's.
fn resolve(
    root: &Path,
    raw: &HashMap<String, Value>,
    name: &str,
    memo: &mut HashMap<String, Value>,
) -> Result<Value, String> {
    if let Some(done) = memo.get(name) {
        return Ok(done.clone());
    }
    let def = raw
        .get(name)
        .ok_or_else(|| format!("schema: nothing is named {name}"))?;
    let mut item = def.clone();
    item["attributes"] = Value::Object(own_attributes(root, def)?);
    if let Some(parent) = def["extends"].as_str() {
        let base = resolve(root, raw, parent, memo)?;
        let mut attributes = merged(&base["attributes"], &item["attributes"]);
        attributes
            .as_object_mut()
            .unwrap()
            .retain(|_, a| !a.is_null());
        let mut out = base.clone();
        for (k, v) in item.as_object().unwrap() {
            if k == "profiles" {
                let mut all = strings(base.get("profiles"));
                for p in strings(Some(v)) {
                    if !all.contains(&p) {
                        all.push(p);
                    }
                }
                out["profiles"] = json!(all);
            } else if !v.is_null() {
                out[k] = v.clone();
            }
        }
        out["attributes"] = attributes;
        item = out;
    }
    memo.insert(name.to_string(), item.clone());
    Ok(item)
}

/// Every `.json` file under `dir`, keyed by its `name`.
fn by_name(dir: &Path) -> Result<HashMap<String, Value>, String> {
    let mut out = HashMap::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.map_err(|e| e.to_string())?;
        if entry.path().extension().is_some_and(|e| e == "json") {
            let def = read(entry.path())?;
            let name = def["name"]
                .as_str()
                .ok_or_else(|| format!("{}: no name", entry.path().display()))?;
            out.insert(name.to_string(), def);
        }
    }
    Ok(out)
}

impl Schema {
    fn load(root: &Path) -> Result<Schema, String> {
        let dictionary = read(&root.join("dictionary.json"))?;
        let dictionary_attributes = dictionary["attributes"].as_object().unwrap();
        let types = dictionary["types"]["attributes"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        let categories = read(&root.join("categories.json"))?;
        let known_profiles: BTreeSet<String> =
            by_name(&root.join("profiles"))?.into_keys().collect();

        let finish = |what: String, def: &Value| -> Result<Item, String> {
            let mut attributes = Map::new();
            for (name, attribute) in def["attributes"].as_object().unwrap() {
                let base = dictionary_attributes
                    .get(name)
                    .ok_or_else(|| format!("schema: {what} uses {name}, not in the dictionary"))?;
                let mut attribute = merged(base, attribute);
                let ty = attribute["type"].as_str().unwrap_or("object").to_string();
                if !types.contains_key(&ty) {
                    attribute["type"] = "object_t".into();
                    attribute["object_type"] = ty.clone().into();
                }
                if ty == "timestamp_t" {
                    let mut dt = attribute.clone();
                    dt["type"] = "datetime_t".into();
                    dt["profile"] = "datetime".into();
                    dt["requirement"] = "optional".into();
                    attributes.insert(format!("{name}_dt"), dt);
                }
                attributes.insert(name.clone(), attribute);
            }
            Ok(Item {
                what,
                attributes,
                constraints: def["constraints"].as_object().cloned().unwrap_or_default(),
                profiles: strings(def.get("profiles")).into_iter().collect(),
            })
        };

        let raw_objects = by_name(&root.join("objects"))?;
        let mut memo = HashMap::new();
        let mut objects = HashMap::new();
        for name in raw_objects.keys() {
            let def = resolve(root, &raw_objects, name, &mut memo)?;
            objects.insert(name.clone(), finish(format!("object {name}"), &def)?);
        }

        // Observable type ids: the ones observable.json lists, plus every type, dictionary
        // attribute and object that declares an `observable` number.
        let mut observable_types = Map::new();
        let captioned = |def: &Value| json!({ "caption": def["caption"] });
        for def in types.values().chain(dictionary_attributes.values()) {
            if let Some(id) = def.get("observable") {
                observable_types.insert(id.to_string(), captioned(def));
            }
        }
        for def in raw_objects.values() {
            if let Some(id) = def.get("observable") {
                observable_types.insert(id.to_string(), captioned(def));
            }
        }
        if let Some(enum_) = objects
            .get_mut("observable")
            .and_then(|o| o.attributes.get_mut("type_id"))
            .and_then(|t| t.get_mut("enum"))
            .and_then(Value::as_object_mut)
        {
            enum_.extend(observable_types);
        }

        let raw_events = by_name(&root.join("events"))?;
        let mut memo = HashMap::new();
        let mut classes = HashMap::new();
        for (name, raw) in &raw_events {
            // Concrete classes have a uid of their own; base_event is class 0.
            let Some(uid) = raw["uid"]
                .as_i64()
                .or_else(|| (name == "base_event").then_some(0))
            else {
                continue;
            };
            let def = resolve(root, &raw_events, name, &mut memo)?;
            let category = &categories["attributes"][def["category"].as_str().unwrap_or("")];
            let category_uid = category["uid"].as_i64().unwrap_or(0);
            let class_uid = category_uid * 1000 + uid;
            let mut class = finish(format!("class {name} ({class_uid})"), &def)?;
            let caption = def["caption"].as_str().unwrap_or(name).to_string();
            let activities = class.attributes["activity_id"]["enum"]
                .as_object()
                .cloned()
                .unwrap_or_default();
            let type_uids: Map<String, Value> = activities
                .iter()
                .filter_map(|(id, activity)| {
                    let id: i64 = id.parse().ok()?;
                    let label = format!("{caption}: {}", activity["caption"].as_str()?);
                    Some((
                        (class_uid * 100 + id).to_string(),
                        json!({ "caption": label }),
                    ))
                })
                .collect();
            let a = &mut class.attributes;
            a["class_uid"]["enum"] = json!({ class_uid.to_string(): { "caption": caption } });
            a["category_uid"]["enum"] =
                json!({ category_uid.to_string(): { "caption": category["caption"] } });
            a["type_uid"]["enum"] = Value::Object(type_uids);
            classes.insert(class_uid, class);
        }

        let mut schema = Schema {
            classes,
            objects,
            types,
            known_profiles,
            applicable: HashMap::new(),
        };
        schema.applicable = schema
            .classes
            .iter()
            .map(|(uid, class)| (*uid, schema.reachable_profiles(class)))
            .collect();
        Ok(schema)
    }

    /// The profiles an item lists, its attributes carry, and the objects it reaches use.
    fn reachable_profiles(&self, start: &Item) -> BTreeSet<String> {
        let mut found = BTreeSet::new();
        let mut seen = BTreeSet::new();
        let mut todo = vec![start];
        while let Some(item) = todo.pop() {
            found.extend(item.profiles.iter().cloned());
            for attribute in item.attributes.values() {
                if let Some(p) = attribute["profile"].as_str() {
                    found.insert(p.to_string());
                }
                if let Some(object) = attribute["object_type"].as_str()
                    && seen.insert(object.to_string())
                    && let Some(next) = self.objects.get(object)
                {
                    todo.push(next);
                }
            }
        }
        found
    }

    fn check(&self, record: &Map<String, Value>, out: &mut Vec<String>) {
        let Some(class_uid) = record.get("class_uid").and_then(Value::as_i64) else {
            out.push("class_uid: missing or not an integer".into());
            return;
        };
        let Some(class) = self.classes.get(&class_uid) else {
            out.push(format!(
                "class_uid: {class_uid} is not a class of this schema (or its file was not copied)"
            ));
            return;
        };
        let mut declared = BTreeSet::new();
        if let Some(profiles) = record.get("metadata").and_then(|m| m.get("profiles")) {
            for (i, p) in profiles.as_array().into_iter().flatten().enumerate() {
                let Some(p) = p.as_str() else { continue };
                if !self.known_profiles.contains(p) {
                    out.push(format!("metadata.profiles[{i}]: no profile is named {p}"));
                } else if !self.applicable[&class_uid].contains(p) {
                    out.push(format!(
                        "metadata.profiles[{i}]: profile {p} does not apply to {}",
                        class.what
                    ));
                }
                declared.insert(p.to_string());
            }
        }
        self.check_item(class, record, "", &declared, out);
        if let (Some(activity), Some(type_uid)) = (
            record.get("activity_id").and_then(Value::as_i64),
            record.get("type_uid").and_then(Value::as_i64),
        ) && type_uid != class_uid * 100 + activity
        {
            out.push(format!(
                "type_uid: {type_uid}, but class_uid {class_uid} and activity_id {activity} \
                 make {}",
                class_uid * 100 + activity
            ));
        }
        let observables = record.get("observables").and_then(Value::as_array);
        for (i, observable) in observables.into_iter().flatten().enumerate() {
            if let Some(name) = observable.get("name").and_then(Value::as_str)
                && !self.names_attribute(class, name, &declared)
            {
                out.push(format!(
                    "observables[{i}].name: {name} is not the path of an attribute of {}",
                    class.what
                ));
            }
        }
    }

    fn check_item(
        &self,
        item: &Item,
        value: &Map<String, Value>,
        path: &str,
        declared: &BTreeSet<String>,
        out: &mut Vec<String>,
    ) {
        if item.attributes.is_empty() {
            return; // `object`: open-ended, as `unmapped` is
        }
        let at = |name: &str| {
            if path.is_empty() {
                name.to_string()
            } else {
                format!("{path}.{name}")
            }
        };
        let profile_of = |a: &Value| a["profile"].as_str().map(str::to_string);
        let allowed = |a: &Value| profile_of(a).is_none_or(|p| declared.contains(&p));
        for key in value.keys() {
            match item.attributes.get(key) {
                None => out.push(format!("{}: not an attribute of {}", at(key), item.what)),
                Some(a) if !allowed(a) => out.push(format!(
                    "{}: an attribute of profile {} in {}, which metadata.profiles does not declare",
                    at(key),
                    profile_of(a).unwrap(),
                    item.what
                )),
                Some(_) => {}
            }
        }
        for (name, attribute) in item.attributes.iter().filter(|(_, a)| allowed(a)) {
            match value.get(name) {
                None | Some(Value::Null) => {
                    if attribute["requirement"] == "required" {
                        out.push(format!("{}: required by {}, missing", at(name), item.what));
                    }
                }
                Some(v) => self.check_attribute(attribute, v, value, &at(name), declared, out),
            }
        }
        for (kind, names) in &item.constraints {
            let names = strings(Some(names));
            let present = names.iter().filter(|n| value.contains_key(*n)).count();
            let ok = match kind.as_str() {
                "at_least_one" => present >= 1,
                "just_one" => present == 1,
                _ => true,
            };
            if !ok {
                let place = if path.is_empty() { "the record" } else { path };
                out.push(format!(
                    "{place}: {} wants {kind} of {}, it has {present}",
                    item.what,
                    names.join(", ")
                ));
            }
        }
    }

    /// One present attribute: its shape, its values, its enum and the enum's sibling.
    fn check_attribute(
        &self,
        attribute: &Value,
        value: &Value,
        parent: &Map<String, Value>,
        path: &str,
        declared: &BTreeSet<String>,
        out: &mut Vec<String>,
    ) {
        let sibling = attribute["sibling"]
            .as_str()
            .and_then(|s| parent.get(s).map(|v| (s, v)));
        if attribute["is_array"] == true {
            let Some(values) = value.as_array() else {
                out.push(format!(
                    "{path}: an array of {} expected, got {value}",
                    type_label(attribute)
                ));
                return;
            };
            for (i, v) in values.iter().enumerate() {
                let at = format!("{path}[{i}]");
                if self.check_value(attribute, v, &at, declared, out) {
                    let sibling = sibling.map(|(s, all)| (s, all.get(i).unwrap_or(&Value::Null)));
                    check_enum(attribute, v, sibling, &at, out);
                }
            }
        } else {
            if self.check_value(attribute, value, path, declared, out) {
                check_enum(attribute, value, sibling, path, out);
            }
        }
    }

    /// Checks one value (an array's element) against the attribute's type; false when it
    /// has the wrong type, so that its enum is not checked too.
    fn check_value(
        &self,
        attribute: &Value,
        value: &Value,
        path: &str,
        declared: &BTreeSet<String>,
        out: &mut Vec<String>,
    ) -> bool {
        let ty = attribute["type"].as_str().unwrap_or_default();
        if ty == "object_t" {
            let name = attribute["object_type"].as_str().unwrap_or_default();
            let Some(object) = self.objects.get(name) else {
                out.push(format!("{path}: schema has no object {name}"));
                return false;
            };
            let Some(fields) = value.as_object() else {
                out.push(format!("{path}: object {name} expected, got {value}"));
                return false;
            };
            self.check_item(object, fields, path, declared, out);
            return true;
        }
        let Some(def) = self.types.get(ty) else {
            out.push(format!("{path}: schema has no type {ty}"));
            return false;
        };
        let base_name = def["type"].as_str().unwrap_or(ty);
        let base = self.types.get(base_name).unwrap_or(def);
        let ok = match base_name {
            "boolean_t" => value.is_boolean(),
            "integer_t" => value.is_i64(),
            "long_t" => value.is_i64() || value.is_u64(),
            "float_t" => value.is_f64(),
            "string_t" => value.is_string(),
            "json_t" => true,
            other => {
                out.push(format!("{path}: schema type {ty} rests on unknown {other}"));
                return false;
            }
        };
        if !ok {
            out.push(format!(
                "{path}: {} expected, got {value}",
                type_label(attribute)
            ));
            return false;
        }
        // A subtype's own constraint first, else its base type's.
        let constraint = |key: &str| def.get(key).or_else(|| base.get(key));
        if let (Some(range), Some(n)) = (constraint("range"), value.as_f64()) {
            let (lo, hi) = (range[0].as_f64().unwrap(), range[1].as_f64().unwrap());
            if n < lo || n > hi {
                out.push(format!(
                    "{path}: {value} is outside {ty}'s range {lo} to {hi}"
                ));
            }
        }
        if let (Some(max), Some(s)) = (
            constraint("max_len").and_then(Value::as_u64),
            value.as_str(),
        ) && s.chars().count() as u64 > max
        {
            out.push(format!("{path}: longer than {ty}'s {max} characters"));
        }
        if let Some(values) = constraint("values").and_then(Value::as_array)
            && !values.contains(value)
        {
            out.push(format!("{path}: {value} is not one of {ty}'s values"));
        }
        true
    }

    /// Whether `name` (dotted, `x[]` or `x[0]` on arrays) is the path of an attribute the
    /// class allows with the declared profiles.
    fn names_attribute(&self, class: &Item, name: &str, declared: &BTreeSet<String>) -> bool {
        let mut item = class;
        let mut parts = name.split('.').peekable();
        while let Some(part) = parts.next() {
            let (key, indexed) = match part.split_once('[') {
                Some((key, rest)) if rest.ends_with(']') => (key, true),
                _ => (part, false),
            };
            let Some(attribute) = item.attributes.get(key) else {
                return false;
            };
            if attribute["profile"]
                .as_str()
                .is_some_and(|p| !declared.contains(p))
                || (indexed && attribute["is_array"] != true)
            {
                return false;
            }
            if parts.peek().is_none() {
                return true;
            }
            match attribute["object_type"]
                .as_str()
                .and_then(|o| self.objects.get(o))
            {
                Some(next) => item = next,
                None => return false,
            }
        }
        false
    }
}

fn type_label(attribute: &Value) -> String {
    match attribute["object_type"].as_str() {
        Some(object) => format!("object {object}"),
        None => attribute["type"].as_str().unwrap_or("?").to_string(),
    }
}

/// An enum attribute's value must be one of its keys; its sibling, when present, the
/// caption of that key (anything for 99, Other).
fn check_enum(
    attribute: &Value,
    value: &Value,
    sibling: Option<(&str, &Value)>,
    path: &str,
    out: &mut Vec<String>,
) {
    let Some(enum_) = attribute["enum"].as_object() else {
        return;
    };
    let key = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let Some(entry) = enum_.get(&key) else {
        let mut keys: Vec<&String> = enum_.keys().collect();
        keys.sort_by_key(|k| (k.len(), *k));
        let keys: Vec<&str> = keys.into_iter().map(String::as_str).collect();
        out.push(format!("{path}: {value} is not one of {}", keys.join(", ")));
        return;
    };
    if let Some((name, sibling)) = sibling
        && key != "99"
        && *sibling != entry["caption"]
    {
        out.push(format!(
            "{name} beside {path}: {sibling}, but the caption of {key} is {}",
            entry["caption"]
        ));
    }
}

mod validator {
    use super::*;

    /// A Detection Finding with the cloud profile, built by hand from the 1.1.0 files.
    fn detection() -> Value {
        json!({
            "class_uid": 2004, "class_name": "Detection Finding",
            "category_uid": 2, "category_name": "Findings",
            "activity_id": 1, "activity_name": "Create",
            "type_uid": 200401, "type_name": "Detection Finding: Create",
            "severity_id": 3, "severity": "Medium",
            "status_id": 1, "status": "New",
            "time": 1769657472000_i64,
            "metadata": {
                "version": "1.1.0",
                "profiles": ["cloud"],
                "product": { "name": "test", "vendor_name": "test" }
            },
            "finding_info": { "uid": "f-1", "title": "A test finding", "types": ["test"] },
            "cloud": { "provider": "AWS", "region": "eu-west-1" },
            "evidences": [{
                "api": { "operation": "RunInstances" },
                "src_endpoint": { "ip": "198.51.100.7" }
            }],
            "observables": [
                { "name": "evidences.src_endpoint.ip", "type_id": 2, "type": "IP Address",
                  "value": "198.51.100.7" }
            ],
            "unmapped": { "anything": [1, { "at": "all" }] }
        })
    }

    /// `detection()` changed by `edit`, and its problems.
    fn edited(edit: impl FnOnce(&mut Value)) -> Vec<String> {
        let mut record = detection();
        edit(&mut record);
        problems(&record)
    }

    /// Asserts that exactly one problem is reported and that it contains `needle`.
    fn fails_with(edit: impl FnOnce(&mut Value), needle: &str) {
        let found = edited(edit);
        assert!(
            found.len() == 1 && found[0].contains(needle),
            "expected one problem containing {needle:?}, got {found:#?}"
        );
    }

    fn remove(record: &mut Value, pointer: &str) {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        record
            .pointer_mut(parent)
            .unwrap()
            .as_object_mut()
            .unwrap()
            .remove(key)
            .unwrap();
    }

    #[test]
    fn a_hand_built_detection_finding_validates() {
        assert_eq!(problems(&detection()), Vec::<String>::new());
    }

    #[test]
    fn a_missing_required_attribute_fails() {
        fails_with(|r| remove(r, "/severity_id"), "severity_id: required");
        fails_with(|r| remove(r, "/finding_info"), "finding_info: required");
        fails_with(
            |r| remove(r, "/finding_info/title"),
            "finding_info.title: required",
        );
        fails_with(
            |r| remove(r, "/metadata/product/vendor_name"),
            "vendor_name: required",
        );
        // cloud is required by the cloud profile that the record declares
        fails_with(|r| remove(r, "/cloud"), "cloud: required");
    }

    #[test]
    fn an_attribute_the_class_or_object_does_not_define_fails() {
        fails_with(
            |r| r["src_endpoint"] = json!({ "ip": "198.51.100.7" }),
            "src_endpoint: not an attribute of class detection_finding",
        );
        fails_with(
            |r| r["evidences"][0]["src_endpoint"]["user_agent"] = json!("curl"),
            "evidences[0].src_endpoint.user_agent: not an attribute of object network_endpoint",
        );
    }

    #[test]
    fn enum_values_and_their_captions_are_checked() {
        fails_with(
            |r| r["severity_id"] = json!(42),
            "severity_id: 42 is not one of",
        );
        // 1.1.0's finding.json adds status 3 (Suppressed) to the dictionary's; 5 is the
        // Incident Finding's, not the Detection Finding's.
        assert!(
            edited(|r| {
                r["status_id"] = json!(3);
                r["status"] = json!("Suppressed");
            })
            .is_empty()
        );
        fails_with(
            |r| {
                r["status_id"] = json!(5);
                r.as_object_mut().unwrap().remove("status");
            },
            "status_id: 5 is not one of",
        );
        fails_with(
            |r| r["severity"] = json!("High"),
            "caption of 3 is \"Medium\"",
        );
        fails_with(
            |r| r["observables"][0]["type"] = json!("Other"),
            "caption of 2 is \"IP Address\"",
        );
        fails_with(
            |r| r["class_name"] = json!("Finding"),
            "class_name beside class_uid",
        );
        fails_with(
            |r| r["category_uid"] = json!(1),
            "category_uid: 1 is not one of 2",
        );
    }

    #[test]
    fn type_uid_follows_class_and_activity() {
        let found = edited(|r| r["type_uid"] = json!(200402));
        assert!(
            found
                .iter()
                .any(|p| p.contains("activity_id 1 make 200401")),
            "{found:#?}"
        );
    }

    #[test]
    fn an_attribute_of_an_undeclared_profile_fails() {
        // In 1.1.0 actor reaches a finding only through the host profile.
        let actor = json!({ "user": { "uid": "AIDAEXAMPLE" } });
        fails_with(
            |r| r["actor"] = actor.clone(),
            "actor: an attribute of profile host",
        );
        assert!(
            edited(|r| {
                r["actor"] = actor.clone();
                r["metadata"]["profiles"] = json!(["cloud", "host"]);
            })
            .is_empty()
        );
        // Without the cloud profile, cloud is not allowed at all.
        fails_with(
            |r| r["metadata"]["profiles"] = json!([]),
            "cloud: an attribute of profile cloud",
        );
        // A profile marked on one attribute of an object (resource_details.region).
        let resource = json!([{ "uid": "i-1", "region": "eu-west-1" }]);
        assert!(edited(|r| r["resources"] = resource.clone()).is_empty());
        let found = edited(|r| {
            r["resources"] = resource.clone();
            r["metadata"]["profiles"] = json!([]);
            remove(r, "/cloud");
        });
        assert!(
            found.len() == 1
                && found[0].starts_with("resources[0].region: an attribute of profile cloud"),
            "{found:#?}"
        );
        // time_dt exists only with the datetime profile.
        fails_with(
            |r| r["time_dt"] = json!("2026-01-29T03:31:12Z"),
            "time_dt: an attribute of profile datetime",
        );
        assert!(
            edited(|r| {
                r["time_dt"] = json!("2026-01-29T03:31:12Z");
                r["metadata"]["profiles"] = json!(["cloud", "datetime"]);
            })
            .is_empty()
        );
    }

    #[test]
    fn profiles_must_exist_and_apply_to_the_class() {
        fails_with(
            |r| r["metadata"]["profiles"] = json!(["cloud", "clouds"]),
            "no profile is named clouds",
        );
        fails_with(
            |r| r["metadata"]["profiles"] = json!(["cloud", "load_balancer"]),
            "profile load_balancer does not apply",
        );
        // container comes with objects a finding reaches (evidences.process, endpoints)
        assert!(edited(|r| r["metadata"]["profiles"] = json!(["cloud", "container"])).is_empty());
    }

    #[test]
    fn types_arrays_and_objects_are_checked() {
        fails_with(
            |r| r["time"] = json!("2026-01-29"),
            "time: timestamp_t expected",
        );
        fails_with(
            |r| r["severity_id"] = json!(3.0),
            "severity_id: integer_t expected",
        );
        fails_with(
            |r| r["finding_info"]["types"] = json!("test"),
            "finding_info.types: an array of string_t expected",
        );
        fails_with(
            |r| r["cloud"] = json!("AWS"),
            "cloud: object cloud expected",
        );
        fails_with(
            |r| r["evidences"] = json!({ "api": { "operation": "x" } }),
            "evidences: an array of object evidences expected",
        );
        fails_with(
            |r| r["evidences"][0]["src_endpoint"]["port"] = json!(70000),
            "port: 70000 is outside port_t's range",
        );
    }

    #[test]
    fn constraints_are_checked() {
        fails_with(
            |r| r["evidences"] = json!([{}]),
            "wants at_least_one of actor, api",
        );
        fails_with(
            |r| r["evidences"][0]["src_endpoint"] = json!({ "port": 443 }),
            "evidences[0].src_endpoint: object network_endpoint wants at_least_one",
        );
    }

    #[test]
    fn observable_names_must_point_at_attributes() {
        fails_with(
            |r| r["observables"][0]["name"] = json!("src_endpoint.ip"),
            "observables[0].name: src_endpoint.ip is not the path",
        );
        assert!(
            edited(|r| r["observables"][0]["name"] = json!("evidences[0].src_endpoint.ip"))
                .is_empty()
        );
        fails_with(
            |r| r["observables"][0]["name"] = json!("cloud[0].region"),
            "cloud[0].region is not the path",
        );
    }

    #[test]
    fn unknown_classes_and_versions_are_reported() {
        assert_eq!(edited(|r| r["class_uid"] = json!(3002)).len(), 1);
        assert!(
            edited(|r| r["metadata"]["version"] = json!("0.9.9"))[0]
                .contains("no schema files for OCSF 0.9.9")
        );
        assert!(!problems(&json!([1])).is_empty());
    }

    /// Class 2005 at 1.1.0 extends base_event directly: no finding_info, no host profile;
    /// finding_info_list and status_id are required and one of assignee or
    /// assignee_group must be there.
    fn incident() -> Value {
        json!({
            "class_uid": 2005, "class_name": "Incident Finding",
            "category_uid": 2, "category_name": "Findings",
            "activity_id": 1, "activity_name": "Create",
            "type_uid": 200501, "type_name": "Incident Finding: Create",
            "severity_id": 4, "severity": "High",
            "status_id": 1, "status": "New",
            "time": 1769657472000_i64,
            "metadata": {
                "version": "1.1.0",
                "product": { "name": "test", "vendor_name": "test" }
            },
            "finding_info_list": [
                { "uid": "f-1", "title": "First finding" },
                { "uid": "f-2", "title": "Second finding" }
            ],
            "assignee_group": { "name": "cloud-security" },
            "desc": "Two findings about one principal."
        })
    }

    #[test]
    fn a_hand_built_incident_finding_validates_and_its_mistakes_do_not() {
        assert_eq!(problems(&incident()), Vec::<String>::new());

        let mut closed = incident();
        closed["status_id"] = json!(5);
        closed["status"] = json!("Closed");
        assert_eq!(problems(&closed), Vec::<String>::new());

        let mut no_list = incident();
        no_list.as_object_mut().unwrap().remove("finding_info_list");
        assert!(problems(&no_list)[0].starts_with("finding_info_list: required"));

        let mut no_one = incident();
        no_one.as_object_mut().unwrap().remove("assignee_group");
        assert!(problems(&no_one)[0].contains("at_least_one of assignee, assignee_group"));

        let mut with_info = incident();
        with_info["finding_info"] = json!({ "uid": "f-1", "title": "x" });
        assert!(problems(&with_info)[0].contains("not an attribute of class incident_finding"));

        let mut host = incident();
        host["metadata"]["profiles"] = json!(["host"]);
        assert!(problems(&host)[0].contains("profile host does not apply"));
    }
}

/// The findings `run --format ocsf` writes for `input`.
fn findings(dir: &crate::util::Dir, input: &Path) -> Vec<Value> {
    let out = command(dir)
        .args(["run", "--memory", "--format", "ocsf", "--input"])
        .args([input])
        .ok(dir);
    records(&out.stdout)
}

#[test]
fn the_generated_scenario_gives_findings_that_validate() {
    let (dir, _) = setup();
    generate_scenario(&dir, 11, "scenario.ndjson");
    let found = findings(&dir, &dir.join("scenario.ndjson"));
    assert!(
        found.len() >= 8,
        "the scenario injects incidents: {found:#?}"
    );
    assert!(
        found.iter().any(|r| r["class_uid"] == 2005),
        "the stolen key's Incident Finding is among them"
    );
    assert_valid("the generated scenario", &found);
}

#[test]
fn the_bundled_real_data_gives_findings_that_validate() {
    let (dir, _) = setup();
    let found = findings(&dir, &data("cloudtrail"));
    assert!(!found.is_empty());
    assert_valid("tests/data/cloudtrail", &found);
}
