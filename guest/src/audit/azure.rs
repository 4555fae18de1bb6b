//! Azure Activity Log: `Microsoft.Compute/virtualMachines/write` and
//! `…/virtualMachineScaleSets/write`, in the Event Hubs / storage export form (`operationName`
//! a string, `time`, `resultType`, `identity.claims`) and the REST / portal form
//! (`operationName.value`, `eventTimestamp`, `status.value`, `caller`).
//!
//! - One creation logs several records (Start, Accept, Success) under one
//!   `correlationId`; their event id is `correlationId|resourceId` (lower case), so the
//!   rate rules count the launch once and the unseen rules learn its keys once. The
//!   Start record only announces the call (what it asks for may still fail) and is
//!   passed over; a Failure is a failed call.
//! - A write creates or updates. A record known to create (status code `Created`, or a
//!   body whose `provisioningState` is `Creating`) is a launch: every detection. Any
//!   other write that did not fail is judged by the region, image and size rules only
//!   (a resize to a GPU size matters; a tag change by a new admin is not a first launch).
//! - Region, size and image come from the request or response body (JSON held in a
//!   string): `location` (`East US` → `eastus`), `hardwareProfile.vmSize` or a scale
//!   set's `sku.name`, `storageProfile.imageReference` as `publisher:offer:sku` or the
//!   image id; all lower case, as Azure compares them. Records without a body have none.
//! - Principal: `caller`, else the token's UPN, object id or app id.

use std::borrow::Cow;

use serde_json::Value;

use super::{Call, EventView, Fields, Malformed, Read, Summary};
use crate::catalog::Cloud;
use crate::settings::Settings;

/// The Azure paths: the third block of [`super::fields`].
pub const FIELDS: [&str; 18] = [
    "operationName",
    "operationName.value",
    "time",
    "eventTimestamp",
    "resultType",
    "status.value",
    "caller",
    "identity.claims",
    "callerIpAddress",
    "httpRequest.clientIpAddress",
    "resourceId",
    "correlationId",
    "eventDataId",
    "properties.requestbody",
    "properties.responseBody",
    "properties.statusCode",
    "subStatus.value",
    "location",
];

mod idx {
    pub const OPERATION: usize = 0;
    pub const OPERATION_VALUE: usize = 1;
    pub const TIME: usize = 2;
    pub const EVENT_TIMESTAMP: usize = 3;
    pub const RESULT_TYPE: usize = 4;
    pub const STATUS: usize = 5;
    pub const CALLER: usize = 6;
    pub const CLAIMS: usize = 7;
    pub const CALLER_IP: usize = 8;
    pub const CLIENT_IP: usize = 9;
    pub const RESOURCE_ID: usize = 10;
    pub const CORRELATION_ID: usize = 11;
    pub const EVENT_DATA_ID: usize = 12;
    pub const REQUEST_BODY: usize = 13;
    pub const RESPONSE_BODY: usize = 14;
    pub const STATUS_CODE: usize = 15;
    pub const SUB_STATUS: usize = 16;
    pub const LOCATION: usize = 17;
}

const VM_WRITE: &str = "microsoft.compute/virtualmachines/write";
const SCALE_SET_WRITE: &str = "microsoft.compute/virtualmachinescalesets/write";

/// Token claims naming the caller, best first: UPN, object id, app id.
const CLAIMS: [&str; 3] = [
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn",
    "http://schemas.microsoft.com/identity/claims/objectidentifier",
    "appid",
];

/// Reads an Azure block; `Ok(None)` unless it holds a VM or scale-set write.
pub(super) fn read<'a>(
    f: &Fields<'a>,
    settings: &Settings,
) -> Result<Option<EventView<'a>>, Malformed> {
    let operation = match f.text(idx::OPERATION) {
        Ok(Some(op)) => op,
        // The REST form: `operationName` is {value, localizedValue}.
        Ok(None) | Err(_) => match f.present(idx::OPERATION_VALUE)? {
            Some(op) => op,
            None => return Ok(None),
        },
    };
    let lower = operation.to_ascii_lowercase();
    let scale_set = lower == SCALE_SET_WRITE;
    if !(scale_set || lower == VM_WRITE) {
        return Ok(None);
    }
    let time = match f.present(idx::TIME)? {
        Some(_) => f.time(idx::TIME)?,
        None => f.time(idx::EVENT_TIMESTAMP)?,
    };
    let outcome = f
        .present(idx::RESULT_TYPE)?
        .or(f.present(idx::STATUS)?)
        .unwrap_or_default();
    let failed = outcome.eq_ignore_ascii_case("Failure") || outcome.eq_ignore_ascii_case("Failed");
    if outcome.eq_ignore_ascii_case("Start") || outcome.eq_ignore_ascii_case("Started") {
        // Only announces the call: what it asks for may still fail.
        return Ok(None);
    }
    let bodies: Vec<Value> = [idx::REQUEST_BODY, idx::RESPONSE_BODY]
        .into_iter()
        .filter_map(|i| f.json(i))
        .filter(Value::is_object)
        .collect();
    let find = |pointers: &[&str]| -> Option<String> {
        bodies.iter().find_map(|body| {
            pointers
                .iter()
                .find_map(|p| body.pointer(p).and_then(Value::as_str))
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        })
    };
    let status_code = f.present(idx::STATUS_CODE)?.or(f.present(idx::SUB_STATUS)?);
    let creating = status_code.is_some_and(|c| c.eq_ignore_ascii_case("Created"))
        || find(&["/properties/provisioningState"]).is_some_and(|s| s == "Creating");
    let location = find(&["/location"])
        .or(f.present(idx::LOCATION)?.map(str::to_string))
        .map(|l| l.replace(' ', "").to_ascii_lowercase())
        .filter(|l| l != "global");
    let size =
        find(&["/properties/hardwareProfile/vmSize", "/sku/name"]).map(|s| s.to_ascii_lowercase());
    let image = bodies.iter().find_map(|body| {
        let reference = body
            .pointer("/properties/storageProfile/imageReference")
            .or_else(|| {
                body.pointer("/properties/virtualMachineProfile/storageProfile/imageReference")
            })?;
        image_key(reference)
    });
    let claims = f.json(idx::CLAIMS);
    let principal = f
        .present(idx::CALLER)?
        .map(Cow::Borrowed)
        .or_else(|| {
            let claims = claims.as_ref()?;
            CLAIMS
                .iter()
                .find_map(|c| claims.get(*c)?.as_str().map(|p| Cow::Owned(p.to_string())))
        })
        .filter(|p| !p.is_empty());
    let resource_id = f.text(idx::RESOURCE_ID)?.unwrap_or_default();
    let event_id = match (
        f.present(idx::EVENT_DATA_ID)?,
        f.present(idx::CORRELATION_ID)?,
    ) {
        (_, Some(correlation)) => {
            Cow::Owned(format!("{correlation}|{resource_id}").to_ascii_lowercase())
        }
        (Some(id), None) => Cow::Borrowed(id),
        (None, None) => Cow::Borrowed(""),
    };
    let account = segment_after(resource_id, "subscriptions")
        .unwrap_or_default()
        .to_ascii_lowercase();
    let summary = Summary {
        event_id,
        event_name: operation,
        arn: principal.clone().unwrap_or_default(),
        account: Cow::Owned(account),
        region: Cow::Owned(location.unwrap_or_default()),
        source_ip: f
            .present(idx::CALLER_IP)?
            .or(f.present(idx::CLIENT_IP)?)
            .unwrap_or_default(),
        instance_ids: segment_after(
            resource_id,
            if scale_set {
                "virtualMachineScaleSets"
            } else {
                "virtualMachines"
            },
        )
        .into_iter()
        .collect(),
        ..Summary::default()
    };
    Ok(Some(
        Read {
            cloud: Cloud::Azure,
            call: if creating { Call::Launch } else { Call::Write },
            counted: creating && !scale_set,
            time,
            failed,
            principal,
            instance_type: size.map(Cow::Owned),
            image_ids: image.into_iter().map(Cow::Owned).collect(),
            summary,
        }
        .view(settings),
    ))
}

/// `{"publisher":"Canonical","offer":"UbuntuServer","sku":"18.04-LTS"}` →
/// `canonical:ubuntuserver:18.04-lts`; a custom or gallery image by its id.
pub fn image_key(reference: &Value) -> Option<String> {
    let part = |k| {
        reference
            .get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let key = match (part("publisher"), part("offer"), part("sku")) {
        (Some(p), Some(o), Some(s)) => format!("{p}:{o}:{s}"),
        _ => part("id")
            .or(part("sharedGalleryImageId"))
            .or(part("communityGalleryImageId"))?
            .to_string(),
    };
    Some(key.to_ascii_lowercase())
}

/// The segment after `name` in a resource id, compared without case.
fn segment_after<'a>(path: &'a str, name: &str) -> Option<&'a str> {
    let mut parts = path.split('/');
    parts.by_ref().find(|p| p.eq_ignore_ascii_case(name))?;
    parts.next().filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Field;

    fn text(s: &str) -> Field {
        Field::Text(s.into())
    }

    fn read_block(fields: &[Field]) -> Result<Option<EventView<'static>>, Malformed> {
        super::super::read_block(fields, &FIELDS, read)
    }

    const BODY: &str = r#"{"location":"East US","properties":{"hardwareProfile":{"vmSize":"Standard_NC6s_v3"},"storageProfile":{"imageReference":{"publisher":"Canonical","offer":"UbuntuServer","sku":"18.04-LTS","version":"latest"}},"provisioningState":"Creating"}}"#;

    fn event_hubs_accept() -> Vec<Field> {
        let mut f = vec![Field::Absent; FIELDS.len()];
        f[idx::OPERATION] = text("MICROSOFT.COMPUTE/VIRTUALMACHINES/WRITE");
        f[idx::TIME] = text("2024-05-01T08:00:00.1234567Z");
        f[idx::RESULT_TYPE] = text("Accept");
        f[idx::CLAIMS] = Field::Other(
            r#"{"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn":"mallory@contoso.example","appid":"04b07795-8ddb-461a-bbee-02f9e1bf7b46"}"#.into(),
        );
        f[idx::RESOURCE_ID] = text(
            "/SUBSCRIPTIONS/0000AAAA-0000-0000-0000-000000000001/RESOURCEGROUPS/RG/PROVIDERS/MICROSOFT.COMPUTE/VIRTUALMACHINES/MINER-1",
        );
        f[idx::CORRELATION_ID] = text("6A1F0000-0000-0000-0000-00000000C0DE");
        f[idx::RESPONSE_BODY] = text(BODY);
        f[idx::STATUS_CODE] = text("Created");
        f
    }

    #[test]
    fn a_creation_gives_region_size_image_and_caller() {
        let view = read_block(&event_hubs_accept()).unwrap().unwrap();
        assert_eq!(view.cloud, Cloud::Azure);
        assert_eq!(view.call, Call::Launch);
        assert!(view.counted && !view.failed);
        assert_eq!(view.summary.region, "eastus");
        assert_eq!(view.instance_type.as_deref(), Some("standard_nc6s_v3"));
        assert_eq!(view.image_ids, ["canonical:ubuntuserver:18.04-lts"]);
        assert_eq!(view.principal.as_deref(), Some("mallory@contoso.example"));
        assert_eq!(view.summary.account, "0000aaaa-0000-0000-0000-000000000001");
        assert_eq!(view.summary.instance_ids, ["MINER-1"]);
        assert!(view.summary.event_id.starts_with("6a1f0000-"));
    }

    #[test]
    fn the_rest_form_and_an_update() {
        let mut f = vec![Field::Absent; FIELDS.len()];
        f[idx::OPERATION] =
            Field::Other(r#"{"value":"Microsoft.Compute/virtualMachines/write"}"#.into());
        f[idx::OPERATION_VALUE] = text("Microsoft.Compute/virtualMachines/write");
        f[idx::EVENT_TIMESTAMP] = text("2024-05-01T08:00:00Z");
        f[idx::STATUS] = text("Started");
        f[idx::CALLER] = text("3f2a0000-0000-0000-0000-000000000abc");
        assert!(read_block(&f).unwrap().is_none(), "a start is passed over");
        f[idx::STATUS] = text("Succeeded");
        let view = read_block(&f).unwrap().unwrap();
        assert_eq!(view.call, Call::Write);
        assert!(!view.counted);
        assert_eq!(
            view.principal.as_deref(),
            Some("3f2a0000-0000-0000-0000-000000000abc")
        );
        assert_eq!(view.summary.region, "");
        f[idx::STATUS] = text("Failed");
        assert!(read_block(&f).unwrap().unwrap().failed);
    }

    #[test]
    fn other_operations_are_not_launches() {
        let mut f = event_hubs_accept();
        f[idx::OPERATION] = text("MICROSOFT.COMPUTE/VIRTUALMACHINES/DELETE");
        assert!(read_block(&f).unwrap().is_none());
    }

    #[test]
    fn a_scale_set_is_judged_but_not_counted() {
        let mut f = event_hubs_accept();
        f[idx::OPERATION] = text("Microsoft.Compute/virtualMachineScaleSets/write");
        f[idx::RESPONSE_BODY] = text(
            r#"{"location":"westeurope","sku":{"name":"Standard_ND40rs_v2","capacity":40},"properties":{"virtualMachineProfile":{"storageProfile":{"imageReference":{"id":"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/xmr"}}}}}"#,
        );
        let view = read_block(&f).unwrap().unwrap();
        assert!(!view.counted);
        assert_eq!(view.instance_type.as_deref(), Some("standard_nd40rs_v2"));
        assert_eq!(view.summary.region, "westeurope");
        assert!(view.image_ids[0].ends_with("/images/xmr"));
    }
}
