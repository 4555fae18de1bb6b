//! Google Cloud Audit Logs: `compute.instances.insert` and `compute.instances.bulkInsert`
//! in Admin Activity `LogEntry` records (`protoPayload` an `AuditLog`).
//!
//! - The method may be `v1.`, `beta.` or `alpha.` prefixed; the suffix decides.
//! - A long-running call logs a `first` entry (the whole request) and a `last` one (the
//!   outcome, the request reduced to its type): the `first` is the launch, a `last` only
//!   counts as a failed call when its status says so. Entries without `operation`
//!   (synchronous failures) are read as they are.
//! - A bulkInsert feeds the unseen rules but not the rate rules: its instances log their
//!   own inserts, which are counted.
//! - Failure: a non-zero `status.code`, or severity `ERROR`.
//! - Region: the zone (`resource.labels.zone`, else the zone in `resourceName`, else
//!   `resourceLocation.currentLocations`) without its letter.
//! - Machine type and image: the last segment of `machineType`; the boot disk's
//!   `initializeParams.sourceImage` as `<project>/<name>` or `<project>/family/<family>`,
//!   a machine image as `machine-image:<project>/<name>`; none for an existing boot disk.
//! - Project: `resource.labels.project_id`, else the project in `resourceName` unless it
//!   is a project number.

use std::borrow::Cow;

use serde_json::Value;

use super::{Call, EventView, Fields, Malformed, Read, Summary};
use crate::catalog::Cloud;
use crate::settings::Settings;

/// The Google Cloud paths: the second block of [`super::fields`].
pub const FIELDS: [&str; 20] = [
    "insertId",
    "timestamp",
    "protoPayload.serviceName",
    "protoPayload.methodName",
    "resource.labels.zone",
    "protoPayload.resourceName",
    "protoPayload.resourceLocation.currentLocations[]",
    "protoPayload.status.code",
    "severity",
    "protoPayload.authenticationInfo.principalEmail",
    "resource.labels.project_id",
    "protoPayload.requestMetadata.callerIp",
    "protoPayload.requestMetadata.callerSuppliedUserAgent",
    "protoPayload.request.machineType",
    "protoPayload.request.disks",
    "protoPayload.request.sourceMachineImage",
    "protoPayload.request.instanceProperties",
    "protoPayload.request.name",
    "operation.first",
    "operation.last",
];

mod idx {
    pub const INSERT_ID: usize = 0;
    pub const TIMESTAMP: usize = 1;
    pub const SERVICE: usize = 2;
    pub const METHOD: usize = 3;
    pub const ZONE: usize = 4;
    pub const RESOURCE_NAME: usize = 5;
    pub const LOCATIONS: usize = 6;
    pub const STATUS_CODE: usize = 7;
    pub const SEVERITY: usize = 8;
    pub const PRINCIPAL: usize = 9;
    pub const PROJECT: usize = 10;
    pub const CALLER_IP: usize = 11;
    pub const USER_AGENT: usize = 12;
    pub const MACHINE_TYPE: usize = 13;
    pub const DISKS: usize = 14;
    pub const MACHINE_IMAGE: usize = 15;
    pub const INSTANCE_PROPERTIES: usize = 16;
    pub const NAME: usize = 17;
    pub const FIRST: usize = 18;
    pub const LAST: usize = 19;
}

/// Reads a Google Cloud block; `Ok(None)` unless it holds an instance insert.
pub(super) fn read<'a>(
    f: &Fields<'a>,
    settings: &Settings,
) -> Result<Option<EventView<'a>>, Malformed> {
    let Some(method) = f.present(idx::METHOD)? else {
        return Ok(None);
    };
    let bulk = method.ends_with("compute.instances.bulkInsert");
    if !(bulk || method.ends_with("compute.instances.insert"))
        || f.text(idx::SERVICE)?
            .is_some_and(|s| s != "compute.googleapis.com")
    {
        return Ok(None);
    }
    let time = f.time(idx::TIMESTAMP)?;
    let code = f.scalar(idx::STATUS_CODE);
    let failed = code.is_some_and(|c| c != "0") || f.text(idx::SEVERITY)? == Some("ERROR");
    let flag = |i| f.scalar(i).is_some_and(|b| b == "true");
    let continuation = flag(idx::LAST) && !flag(idx::FIRST);
    let resource_name = f.text(idx::RESOURCE_NAME)?.unwrap_or_default();
    let zone = match f.present(idx::ZONE)? {
        Some(zone) => zone,
        None => segment_after(resource_name, "zones")
            .or_else(|| segment_after(resource_name, "regions"))
            .or_else(|| {
                f.texts(idx::LOCATIONS)
                    .ok()
                    .and_then(|l| l.first().copied())
            })
            .unwrap_or_default(),
    };
    let properties = f.json(idx::INSTANCE_PROPERTIES);
    let from_properties = |key: &str| properties.as_ref().and_then(|p| p.get(key)).cloned();
    let machine_type = match f.present(idx::MACHINE_TYPE)? {
        Some(t) => Some(Cow::Borrowed(last_segment(t))),
        None => from_properties("machineType")
            .and_then(|v| v.as_str().map(|t| Cow::Owned(last_segment(t).to_string()))),
    }
    .filter(|t| !t.is_empty());
    let disks = f.json(idx::DISKS).or_else(|| from_properties("disks"));
    let machine_image = f
        .present(idx::MACHINE_IMAGE)?
        .map(str::to_string)
        .or_else(|| {
            from_properties("sourceMachineImage").and_then(|v| v.as_str().map(str::to_string))
        });
    let image = boot_image(disks.as_ref())
        .or_else(|| machine_image.map(|m| format!("machine-image:{}", image_key(&m))));
    let account = match f.present(idx::PROJECT)? {
        Some(project) => project,
        None => segment_after(resource_name, "projects")
            .filter(|p| !p.bytes().all(|b| b.is_ascii_digit()))
            .unwrap_or_default(),
    };
    let principal = f.present(idx::PRINCIPAL)?;
    let instance = f
        .present(idx::NAME)?
        .or_else(|| segment_after(resource_name, "instances"));
    let summary = Summary {
        event_id: Cow::Borrowed(f.text(idx::INSERT_ID)?.unwrap_or_default()),
        event_name: method,
        arn: Cow::Borrowed(principal.unwrap_or_default()),
        account: Cow::Borrowed(account),
        region: Cow::Borrowed(region_of(zone)),
        source_ip: f.text(idx::CALLER_IP)?.unwrap_or_default(),
        user_agent: f.text(idx::USER_AGENT)?.unwrap_or_default(),
        instance_ids: instance.into_iter().filter(|_| !bulk).collect(),
    };
    if continuation && !failed {
        // The outcome of a launch read at its first entry.
        return Ok(None);
    }
    Ok(Some(
        Read {
            cloud: Cloud::Gcp,
            call: Call::Launch,
            counted: !bulk,
            time,
            failed,
            principal: principal.map(Cow::Borrowed),
            instance_type: machine_type,
            image_ids: image.into_iter().map(Cow::Owned).collect(),
            summary,
        }
        .view(settings),
    ))
}

/// The image of the boot disk (`boot: true`, else the only disk) as an image key.
fn boot_image(disks: Option<&Value>) -> Option<String> {
    let disks = disks?.as_array()?;
    let boot = disks
        .iter()
        .find(|d| d.get("boot").and_then(Value::as_bool) == Some(true))
        .or_else(|| (disks.len() == 1).then(|| &disks[0]))?;
    let image = boot.get("initializeParams")?.get("sourceImage")?.as_str()?;
    Some(image_key(image)).filter(|k| !k.is_empty())
}

/// `https://…/projects/debian-cloud/global/images/debian-12-bookworm-v20240110` →
/// `debian-cloud/debian-12-bookworm-v20240110`; families → `<project>/family/<family>`;
/// a bare name stays as it is.
pub fn image_key(source: &str) -> String {
    let project = segment_after(source, "projects");
    let family =
        segment_after(source, "family").or_else(|| segment_after(source, "imageFamilyViews"));
    let name = family.or_else(|| {
        segment_after(source, "images").or_else(|| segment_after(source, "machineImages"))
    });
    match (project, family, name) {
        (Some(p), Some(f), _) => format!("{p}/family/{f}"),
        (Some(p), None, Some(n)) => format!("{p}/{n}"),
        _ => last_segment(source).to_string(),
    }
}

/// `us-central1-a` → `us-central1`; a region stays as it is.
pub fn region_of(zone: &str) -> &str {
    match zone.rsplit_once('-') {
        Some((region, letter))
            if letter.len() == 1
                && letter.bytes().all(|b| b.is_ascii_lowercase())
                && region.bytes().any(|b| b.is_ascii_digit()) =>
        {
            region
        }
        _ => zone,
    }
}

/// The path segment after `name` (`zones` in `projects/p/zones/us-east1-b/instances/vm`).
fn segment_after<'a>(path: &'a str, name: &str) -> Option<&'a str> {
    let mut parts = path.split('/');
    parts.by_ref().find(|p| *p == name)?;
    parts.next().filter(|s| !s.is_empty())
}

fn last_segment(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Field;

    fn block(values: &[(usize, Field)]) -> Vec<Field> {
        let mut fields = vec![Field::Absent; FIELDS.len()];
        for (i, v) in values {
            fields[*i] = v.clone();
        }
        fields
    }

    fn text(s: &str) -> Field {
        Field::Text(s.into())
    }

    fn read_block(fields: &[Field]) -> Result<Option<EventView<'static>>, Malformed> {
        super::super::read_block(fields, &FIELDS, read)
    }

    fn insert() -> Vec<Field> {
        block(&[
            (idx::INSERT_ID, text("-abc123")),
            (idx::TIMESTAMP, text("2024-03-05T10:00:00.123456789Z")),
            (idx::SERVICE, text("compute.googleapis.com")),
            (idx::METHOD, text("beta.compute.instances.insert")),
            (idx::RESOURCE_NAME, text("projects/1234567890/zones/asia-southeast1-b/instances/miner-1")),
            (idx::PRINCIPAL, text("mallory@example.com")),
            (idx::PROJECT, text("acme-prod")),
            (
                idx::MACHINE_TYPE,
                text("https://www.googleapis.com/compute/beta/projects/acme-prod/zones/asia-southeast1-b/machineTypes/n1-highmem-16"),
            ),
            (
                idx::DISKS,
                Field::Other(r#"[{"boot":false,"initializeParams":{"sourceImage":"x"}},{"boot":true,"initializeParams":{"sourceImage":"projects/ubuntu-os-cloud/global/images/family/ubuntu-2204-lts"}}]"#.into()),
            ),
            (idx::FIRST, Field::Other("true".into())),
        ])
    }

    #[test]
    fn an_insert_gives_region_type_image_and_principal() {
        let view = read_block(&insert()).unwrap().unwrap();
        assert_eq!(view.cloud, Cloud::Gcp);
        assert!(!view.failed && view.counted);
        assert_eq!(view.summary.region, "asia-southeast1");
        assert_eq!(view.instance_type.as_deref(), Some("n1-highmem-16"));
        assert_eq!(view.image_ids, ["ubuntu-os-cloud/family/ubuntu-2204-lts"]);
        assert_eq!(view.principal.as_deref(), Some("mallory@example.com"));
        assert_eq!(view.summary.account, "acme-prod");
        assert_eq!(view.summary.instance_ids, ["miner-1"]);
        assert_eq!(view.scope, "gcp/");
    }

    #[test]
    fn a_last_entry_is_not_a_second_launch_unless_it_failed() {
        let mut last = insert();
        last[idx::FIRST] = Field::Absent;
        last[idx::LAST] = Field::Other("true".into());
        assert!(read_block(&last).unwrap().is_none());
        last[idx::STATUS_CODE] = Field::Other("8".into());
        last[idx::SEVERITY] = text("ERROR");
        assert!(read_block(&last).unwrap().unwrap().failed);
    }

    #[test]
    fn other_methods_and_services_are_not_launches() {
        let mut other = insert();
        other[idx::METHOD] = text("v1.compute.instances.delete");
        assert!(read_block(&other).unwrap().is_none());
        other[idx::METHOD] = text("v1.compute.instances.insert");
        other[idx::SERVICE] = text("container.googleapis.com");
        assert!(read_block(&other).unwrap().is_none());
    }

    #[test]
    fn keys_are_normalised() {
        assert_eq!(region_of("us-central1-a"), "us-central1");
        assert_eq!(region_of("us-central1"), "us-central1");
        assert_eq!(
            image_key(
                "https://www.googleapis.com/compute/v1/projects/debian-cloud/global/images/debian-12-bookworm-v20240110"
            ),
            "debian-cloud/debian-12-bookworm-v20240110"
        );
        assert_eq!(
            image_key("projects/debian-cloud/zones/-/imageFamilyViews/debian-11"),
            "debian-cloud/family/debian-11"
        );
        assert_eq!(image_key("my-image"), "my-image");
    }

    #[test]
    fn a_bulk_insert_is_judged_but_not_counted() {
        let mut bulk = insert();
        bulk[idx::METHOD] = text("compute.instances.bulkInsert");
        bulk[idx::MACHINE_TYPE] = Field::Absent;
        bulk[idx::DISKS] = Field::Absent;
        bulk[idx::INSTANCE_PROPERTIES] = Field::Other(
            r#"{"machineType":"e2-standard-2","disks":[{"boot":true,"initializeParams":{"sourceImage":"projects/debian-cloud/global/images/family/debian-12"}}]}"#.into(),
        );
        let view = read_block(&bulk).unwrap().unwrap();
        assert!(!view.counted);
        assert_eq!(view.instance_type.as_deref(), Some("e2-standard-2"));
        assert_eq!(view.image_ids, ["debian-cloud/family/debian-12"]);
    }

    #[test]
    fn a_missing_time_is_malformed() {
        let mut entry = insert();
        entry[idx::TIMESTAMP] = Field::Absent;
        assert_eq!(read_block(&entry).unwrap_err().reason, "bad-time");
    }
}
