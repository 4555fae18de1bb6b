//! Azure Activity Log of one subscription, as Event Hubs delivers it (each record in a
//! `{"records": [...]}` document, operation names in upper case).
//!
//! Normal: two administrators and a Terraform service principal create VMs in known
//! locations, sizes and images (every one used on day 0); each creation logs Start,
//! Accept (`Created`, the VM model with `provisioningState: Creating`) and Success under
//! one correlation id; tag updates, scale-set writes with known settings, deallocations
//! and storage changes go beside them.
//!
//! Incidents (after day 20): the service principal's secret creates 25 GPU VMs in a new
//! region from a new image within seven minutes (region, VM size, image, both rate
//! rules); a new administrator creates one ordinary VM (new user). Benign neighbours
//! that must give nothing: a new caller's tag update, a creation in a new region that
//! fails after its Start.

use rand::RngExt;
use rand::seq::IndexedRandom;
use serde_json::{Value, json};

use super::{Activity, fmt_fraction, office_time};
use crate::ExpectedAlert;
use crate::records::{DAY, Rng, hex, uuid};

const SUBSCRIPTION: &str = "6f2c5d11-8b1e-4c2a-9d0f-3a4b5c6d7e8f";
const GROUPS: [&str; 2] = ["rg-web", "rg-batch"];
const LOCATIONS: [&str; 2] = ["eastus", "westeurope"];
const SIZES: [&str; 3] = ["Standard_D2s_v3", "Standard_B2ms", "Standard_D4s_v5"];
const IMAGES: [(&str, &str, &str); 2] = [
    (
        "Canonical",
        "0001-com-ubuntu-server-jammy",
        "22_04-lts-gen2",
    ),
    (
        "MicrosoftWindowsServer",
        "WindowsServer",
        "2022-datacenter-azure-edition",
    ),
];
const ADMINS: [&str; 2] = ["amara@contoso.example", "ben@contoso.example"];
/// The Terraform service principal: object id (what `caller` holds) and app id.
const TERRAFORM: (&str, &str) = (
    "2b7e1f40-5c8d-4e3a-9f61-0d4c2b8a7e15",
    "9c1d2e3f-4a5b-4c6d-8e7f-0a1b2c3d4e5f",
);
const AZURE_CLI: &str = "04b07795-8ddb-461a-bbee-02f9e1bf7b46";
const OFFICE_IP: &str = "198.51.100.41";
const ATTACKER_IP: &str = "203.0.113.99";

/// One VM write.
struct Write<'a> {
    t_ms: i64,
    caller: &'a str,
    ip: &'a str,
    location: &'a str,
    size: &'a str,
    image: (&'a str, &'a str, &'a str),
}

struct Azure<'a> {
    rng: Rng,
    activity: &'a mut Activity,
}

pub(super) fn generate(start: i64, days: u32, incidents: bool, rng: Rng, activity: &mut Activity) {
    let mut azure = Azure { rng, activity };
    azure.normal(start, days);
    if incidents {
        azure.incidents(start);
    }
}

impl Azure<'_> {
    fn normal(&mut self, start: i64, days: u32) {
        let callers = [ADMINS[0], ADMINS[1], TERRAFORM.0];
        for (i, location) in LOCATIONS.iter().enumerate() {
            for (j, size) in SIZES.iter().enumerate() {
                let t = start + 3600 * (9 + i as i64) + 900 * j as i64;
                let write = Write {
                    t_ms: t * 1000,
                    caller: callers[(i + j) % callers.len()],
                    ip: OFFICE_IP,
                    location,
                    size,
                    image: IMAGES[(i + j) % IMAGES.len()],
                };
                self.create(&write, Ending::Succeeds);
            }
        }
        for day in 1..days {
            for admin in ADMINS {
                for _ in 0..self.rng.random_range(0..=2) {
                    let t = office_time(&mut self.rng, start, day);
                    self.random_create(t, admin);
                }
            }
            for _ in 0..self.rng.random_range(2..=5) {
                let t = start + i64::from(day) * DAY + self.rng.random_range(0..DAY);
                self.random_create(t, TERRAFORM.0);
            }
            for _ in 0..self.rng.random_range(1..=4) {
                let t = office_time(&mut self.rng, start, day);
                let admin = *ADMINS.choose(&mut self.rng).expect("admins");
                self.tag(t, admin);
            }
            if self.rng.random_bool(0.3) {
                let t = start + i64::from(day) * DAY + self.rng.random_range(0..DAY);
                self.scale_set(t);
            }
            for _ in 0..self.rng.random_range(3..=8) {
                let t = office_time(&mut self.rng, start, day);
                self.other_call(t);
            }
        }
    }

    fn incidents(&mut self, start: i64) {
        let t0 = start + 31 * DAY + 3 * 3600 + 60;
        for i in 0..25 {
            let write = Write {
                t_ms: (t0 + i * 16) * 1000,
                caller: TERRAFORM.0,
                ip: ATTACKER_IP,
                location: "southeastasia",
                size: "Standard_NC24ads_A100_v4",
                image: ("microsoft-dsvm", "ubuntu-hpc", "2204"),
            };
            self.create(&write, Ending::Succeeds);
        }
        for (detection, key) in [
            ("azure-unseen-region", "southeastasia"),
            ("azure-unseen-vm-size", "standard_nc24ads_a100_v4"),
            ("azure-unseen-image", "microsoft-dsvm:ubuntu-hpc:2204"),
            ("azure-launch-spike", TERRAFORM.0),
            ("azure-launch-spike-density", TERRAFORM.0),
        ] {
            self.activity
                .expected
                .push(ExpectedAlert::new(detection, key));
        }
        let newcomer = Write {
            t_ms: (start + 34 * DAY + 14 * 3600) * 1000,
            caller: "chen@contoso.example",
            ip: OFFICE_IP,
            location: LOCATIONS[0],
            size: SIZES[0],
            image: IMAGES[0],
        };
        self.create(&newcomer, Ending::Succeeds);
        self.activity.expected.push(ExpectedAlert::new(
            "azure-unseen-user",
            "chen@contoso.example",
        ));
        // Benign: a new caller only tags a VM.
        self.tag(
            start + 28 * DAY + 10 * 3600,
            "guest-auditor@contoso.example",
        );
        // Benign: a creation in a new region that fails after its Start.
        let refused = Write {
            t_ms: (start + 29 * DAY + 15 * 3600) * 1000,
            caller: ADMINS[0],
            ip: OFFICE_IP,
            location: "brazilsouth",
            size: "Standard_NC6s_v3",
            image: IMAGES[0],
        };
        self.create(&refused, Ending::Fails);
    }

    fn random_create(&mut self, t: i64, caller: &str) {
        let write = Write {
            t_ms: t * 1000 + self.rng.random_range(0..1000),
            caller,
            ip: if caller == TERRAFORM.0 {
                "20.42.0.9"
            } else {
                OFFICE_IP
            },
            location: LOCATIONS.choose(&mut self.rng).expect("locations"),
            size: SIZES.choose(&mut self.rng).expect("sizes"),
            image: *IMAGES.choose(&mut self.rng).expect("images"),
        };
        self.create(&write, Ending::Succeeds);
    }

    /// Start, then Accept and Success (or Failure) of one VM creation.
    fn create(&mut self, write: &Write<'_>, ending: Ending) {
        let name = format!("vm-{}", hex(&mut self.rng, 6));
        let group = *GROUPS.choose(&mut self.rng).expect("groups");
        let correlation = uuid(&mut self.rng);
        let (publisher, offer, sku) = write.image;
        let model = |state: &str| {
            json!({
                "name": name, "location": write.location, "type": "Microsoft.Compute/virtualMachines",
                "properties": {
                    "hardwareProfile": {"vmSize": write.size},
                    "storageProfile": {"imageReference": {"publisher": publisher, "offer": offer, "sku": sku, "version": "latest"},
                        "osDisk": {"createOption": "FromImage"}},
                    "provisioningState": state,
                },
            })
            .to_string()
        };
        let request = json!({
            "location": write.location,
            "properties": {"hardwareProfile": {"vmSize": write.size},
                "storageProfile": {"imageReference": {"publisher": publisher, "offer": offer, "sku": sku, "version": "latest"}}},
        })
        .to_string();
        let vm = Vm {
            name: &name,
            group,
            correlation: &correlation,
            caller: write.caller,
            ip: write.ip,
            kind: "VIRTUALMACHINES",
        };
        let t = write.t_ms;
        self.record(&vm, t, "Start", "Started.", json!({"requestbody": request}));
        match ending {
            Ending::Succeeds => {
                let accept = json!({"statusCode": "Created", "responseBody": model("Creating")});
                self.record(&vm, t + 1200, "Accept", "Accepted.Created", accept);
                let done = json!({"statusCode": "OK", "responseBody": model("Succeeded")});
                self.record(&vm, t + 45_000, "Success", "Succeeded.", done);
            }
            Ending::Fails => {
                let failure = json!({"statusCode": "Conflict", "statusMessage": "{\"error\":{\"code\":\"SkuNotAvailable\"}}"});
                self.record(&vm, t + 2000, "Failure", "Failed.Conflict", failure);
            }
        }
    }

    /// A tag change of an existing VM: a write that updates.
    fn tag(&mut self, t: i64, caller: &str) {
        let name = format!("vm-{}", hex(&mut self.rng, 6));
        let correlation = uuid(&mut self.rng);
        let vm = Vm {
            name: &name,
            group: GROUPS[0],
            correlation: &correlation,
            caller,
            ip: OFFICE_IP,
            kind: "VIRTUALMACHINES",
        };
        let body = json!({"tags": {"owner": "web", "cost-center": "4711"}}).to_string();
        self.record(
            &vm,
            t * 1000,
            "Start",
            "Started.",
            json!({"requestbody": body}),
        );
        let done = json!({"statusCode": "OK", "responseBody": json!({"name": name, "tags": {"owner": "web"}, "properties": {"provisioningState": "Succeeded"}}).to_string()});
        self.record(&vm, t * 1000 + 3000, "Success", "Succeeded.", done);
    }

    /// A scale-set write by the service principal with known settings.
    fn scale_set(&mut self, t: i64) {
        let correlation = uuid(&mut self.rng);
        let vm = Vm {
            name: "vmss-batch",
            group: GROUPS[1],
            correlation: &correlation,
            caller: TERRAFORM.0,
            ip: "20.42.0.9",
            kind: "VIRTUALMACHINESCALESETS",
        };
        let (publisher, offer, sku) = IMAGES[0];
        let body = json!({
            "location": LOCATIONS[1],
            "sku": {"name": SIZES[2], "tier": "Standard", "capacity": self.rng.random_range(2..=6)},
            "properties": {"virtualMachineProfile": {"storageProfile": {"imageReference": {"publisher": publisher, "offer": offer, "sku": sku}}},
                "provisioningState": "Updating"},
        })
        .to_string();
        self.record(
            &vm,
            t * 1000,
            "Accept",
            "Accepted.OK",
            json!({"statusCode": "OK", "responseBody": body}),
        );
    }

    /// An operation no detection subscribes to.
    fn other_call(&mut self, t: i64) {
        let operation = *[
            "MICROSOFT.COMPUTE/VIRTUALMACHINES/DEALLOCATE/ACTION",
            "MICROSOFT.COMPUTE/VIRTUALMACHINES/DELETE",
            "MICROSOFT.STORAGE/STORAGEACCOUNTS/WRITE",
            "MICROSOFT.NETWORK/NETWORKSECURITYGROUPS/WRITE",
        ]
        .choose(&mut self.rng)
        .expect("operations");
        let caller = *ADMINS.choose(&mut self.rng).expect("admins");
        let correlation = uuid(&mut self.rng);
        let resource = format!(
            "/SUBSCRIPTIONS/{}/RESOURCEGROUPS/{}/PROVIDERS/{}/R-{}",
            SUBSCRIPTION.to_uppercase(),
            GROUPS[0].to_uppercase(),
            operation.rsplit_once('/').map_or(operation, |(p, _)| p),
            hex(&mut self.rng, 6).to_uppercase()
        );
        let record = json!({
            "time": fmt_fraction(t * 1000, 7),
            "resourceId": resource,
            "operationName": operation,
            "category": "Administrative",
            "resultType": "Success",
            "resultSignature": "Succeeded.",
            "callerIpAddress": OFFICE_IP,
            "correlationId": correlation,
            "identity": {"claims": user_claims(caller)},
            "level": "Information",
            "location": "global",
            "properties": {"statusCode": "OK", "eventCategory": "Administrative"},
        });
        self.activity
            .records
            .push((t, json!({"records": [record]})));
    }

    fn record(&mut self, vm: &Vm<'_>, t_ms: i64, result: &str, signature: &str, properties: Value) {
        let resource = format!(
            "/SUBSCRIPTIONS/{}/RESOURCEGROUPS/{}/PROVIDERS/MICROSOFT.COMPUTE/{}/{}",
            SUBSCRIPTION.to_uppercase(),
            vm.group.to_uppercase(),
            vm.kind,
            vm.name.to_uppercase()
        );
        let claims = if vm.caller == TERRAFORM.0 {
            json!({
                "aud": "https://management.core.windows.net/",
                "appid": TERRAFORM.1,
                "idtyp": "app",
                "http://schemas.microsoft.com/identity/claims/objectidentifier": TERRAFORM.0,
            })
        } else {
            user_claims(vm.caller)
        };
        let mut properties = properties;
        properties["eventCategory"] = "Administrative".into();
        properties["entity"] = resource.clone().into();
        properties["message"] =
            format!("Microsoft.Compute/{}/write", vm.kind.to_lowercase()).into();
        properties["serviceRequestId"] = uuid(&mut self.rng).into();
        let record = json!({
            "time": fmt_fraction(t_ms, 7),
            "resourceId": resource,
            "operationName": format!("MICROSOFT.COMPUTE/{}/WRITE", vm.kind),
            "category": "Administrative",
            "resultType": result,
            "resultSignature": signature,
            "durationMs": if result == "Start" { "0" } else { "1200" },
            "callerIpAddress": vm.ip,
            "correlationId": vm.correlation,
            "identity": {"authorization": {"scope": resource.to_lowercase(), "action": format!("Microsoft.Compute/{}/write", vm.kind.to_lowercase())}, "claims": claims},
            "level": if result == "Failure" { "Error" } else { "Information" },
            "location": "global",
            "properties": properties,
        });
        self.activity
            .records
            .push((t_ms / 1000, json!({"records": [record]})));
    }
}

/// The resource a write is about, and who writes it.
struct Vm<'a> {
    name: &'a str,
    group: &'a str,
    correlation: &'a str,
    caller: &'a str,
    ip: &'a str,
    kind: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Succeeds,
    Fails,
}

/// A user's token claims: UPN, display name, the Azure CLI as client.
fn user_claims(upn: &str) -> Value {
    json!({
        "aud": "https://management.core.windows.net/",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn": upn,
        "name": upn.split('@').next().unwrap_or(upn),
        "appid": AZURE_CLI,
        "idtyp": "user",
    })
}
