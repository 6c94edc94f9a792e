//! `objectsync-ingest admin ...`: the admin operations from a shell, straight
//! against the database, so a newcomer gets a key and a type without
//! writing JSON by hand.

use std::path::PathBuf;

use clap::Subcommand;
use objectsync_infra::{Settings, db};
use objectsync_model::{
    AttributeDef, AttributeKey, AttributeType, CategoryOption, DefinitionInput, FieldError,
    ObjectTypeName, OrgId, ProcessId,
};
use objectsync_store::GenericClient;
use objectsync_store::liveness;
use objectsync_store::organizations::Limits;
use serde_json::{Value, json};

use super::service::{self, AdminError, Definition};
use super::{fail, keys};

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an organization and print its first API key.
    CreateOrg {
        #[arg(long)]
        name: String,
        /// Create it with custom objects turned off (its API calls get 403).
        #[arg(long)]
        disable_custom_objects: bool,
    },
    /// Add an API key to an organization and print it.
    CreateKey {
        #[arg(long)]
        org: i64,
    },
    /// Print an organization's API keys, newest first: each one's id, last
    /// four characters and dates (never the key).
    ListKeys {
        #[arg(long)]
        org: i64,
    },
    /// Revoke an API key: every request with it gets 401 from then on.
    RevokeKey {
        #[arg(long)]
        org: i64,
        /// The key's id as `list-keys` prints it: the hex of its SHA-256
        /// (`printf %s "$KEY" | sha256sum`).
        #[arg(long)]
        key_id: String,
    },
    /// Create or replace an object type.
    ///
    /// Attributes are KEY:TYPE or, for category types, KEY:TYPE:OPT1,OPT2
    /// (option keys double as labels). The first is the primary attribute
    /// and must be text. Example:
    /// --attr name:text --attr price:number --attr color:category:red,blue
    DefineType {
        #[arg(long)]
        org: i64,
        /// The object type name, e.g. vehicle.
        #[arg(long = "type")]
        name: String,
        /// Display label (defaults to the name).
        #[arg(long)]
        label: Option<String>,
        #[arg(long = "attr", value_name = "KEY:TYPE[:OPTIONS]")]
        attrs: Vec<String>,
        /// An associated object type; repeat for several. Without any,
        /// existing associations are kept.
        #[arg(long = "assoc", value_name = "OBJECT_TYPE")]
        assocs: Vec<String>,
        /// Read the definition from a JSON file instead (the admin API's body).
        #[arg(long, conflicts_with_all = ["attrs", "assocs", "label"])]
        file: Option<PathBuf>,
    },
    /// Print the object types of an organization.
    ListTypes {
        #[arg(long)]
        org: i64,
    },
    /// Set an organization's limits (flags not given keep their value) and
    /// print them. A rate of 0 is no limit; `--reset` first puts every
    /// limit back to the settings' default.
    SetLimits {
        #[arg(long)]
        org: i64,
        /// Start from the defaults rather than the organization's limits.
        #[arg(long)]
        reset: bool,
        /// Batch requests per second: 0 (no limit), or 0.001 to 1000000.
        #[arg(long, value_name = "N")]
        writes_per_second: Option<f64>,
        /// Batch requests at once after a quiet spell: 1 to 1000000.
        #[arg(long, value_name = "N")]
        writes_burst: Option<f64>,
        /// Read requests per second: 0 (no limit), or 0.001 to 1000000.
        #[arg(long, value_name = "N")]
        reads_per_second: Option<f64>,
        /// Read requests at once: 1 to 1000000.
        #[arg(long, value_name = "N")]
        reads_burst: Option<f64>,
        /// Open processes before new batches get 429 (0: no cap).
        #[arg(long, value_name = "N")]
        max_open_processes: Option<i32>,
    },
    /// Print an organization's limits: its own and those in effect.
    ShowLimits {
        #[arg(long)]
        org: i64,
    },
    /// Fail an open process: it ends `failed` with the reason (which its
    /// client reads in `info.error`), applies nothing, and is never applied
    /// even if its batch turns up later. Later batches of the organization
    /// that wait for it go on.
    FailProcess {
        #[arg(long)]
        org: i64,
        #[arg(long)]
        process: i64,
        /// Why, for the client and the record.
        #[arg(long)]
        reason: String,
        /// Who fails it (default: the USER environment variable).
        #[arg(long)]
        operator: Option<String>,
    },
    /// Print the processes still open with no delivery for a while
    /// (default: `worker.stale_after_secs`, 10 minutes), oldest first.
    StaleProcesses {
        /// Seconds without a delivery.
        #[arg(long, value_name = "SECS")]
        older_than: Option<u64>,
        /// Most processes printed.
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Db(#[from] db::DbError),
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error("{0}")]
    Usage(String),
}

/// Parses one `--attr` value.
fn parse_attr(spec: &str) -> Result<AttributeDef, FieldError> {
    let field = || format!("--attr {spec}");
    let mut parts = spec.splitn(3, ':');
    let key = parts.next().unwrap_or_default();
    let kind = parts
        .next()
        .ok_or_else(|| FieldError::new(field(), "expected KEY:TYPE, e.g. name:text"))?;
    let key = AttributeKey::parse(key).map_err(|e| FieldError::new(field(), e.to_string()))?;
    let kind = AttributeType::parse(kind)
        .ok_or_else(|| FieldError::new(field(), format!("'{kind}' is not an attribute type")))?;
    let options: Vec<CategoryOption> = parts
        .next()
        .map(|opts| {
            opts.split(',')
                .filter(|o| !o.is_empty())
                .map(|o| CategoryOption {
                    key: o.to_owned(),
                    label: o.to_owned(),
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(AttributeDef {
        label: key.as_str().to_owned(),
        key,
        kind,
        options,
    })
}

/// Builds the definition from flags, then runs it through the same checks
/// as the HTTP API.
fn definition_from_flags(
    name: &str,
    label: Option<String>,
    attrs: &[String],
    assocs: &[String],
) -> Result<DefinitionInput, FieldError> {
    let attributes = attrs
        .iter()
        .map(|a| parse_attr(a))
        .collect::<Result<Vec<_>, _>>()?;
    let associations = if assocs.is_empty() {
        None
    } else {
        Some(
            assocs
                .iter()
                .map(|a| ObjectTypeName::parse(a.as_str()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| FieldError::new("--assoc", e.to_string()))?,
        )
    };
    let json = json!({
        "label": label.unwrap_or_else(|| name.to_owned()),
        "attributes": attributes,
        "associations": associations,
    });
    DefinitionInput::from_json(&json)
}

/// Who runs the CLI, for what it records: `USER`, else "admin CLI".
fn default_operator() -> String {
    std::env::var("USER")
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| "admin CLI".to_owned())
}

/// An organization's object types, as the admin API lists them.
async fn list_types(client: &impl GenericClient, org: OrgId) -> Result<Value, CliError> {
    let types = service::list_object_types(client, org).await?;
    Ok(json!(
        types.iter().map(Definition::from).collect::<Vec<_>>()
    ))
}

/// Open processes with no delivery for `after` seconds, oldest first.
async fn stale_processes(
    client: &impl GenericClient,
    after: u64,
    limit: i64,
) -> Result<Value, CliError> {
    let stale = liveness::list(client, std::time::Duration::from_secs(after), limit)
        .await
        .map_err(AdminError::from)?;
    Ok(json!(stale))
}

/// A definition from a file holding the admin API's body, read as
/// strictly as the admin API reads it: unknown and repeated keys are
/// refused, naming them.
fn definition_from_file(path: &std::path::Path) -> Result<DefinitionInput, CliError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
    let _: super::body::DefinitionIn =
        super::body::read(text.as_bytes(), objectsync_model::ApiCode::BadRequest)
            .map_err(|e| CliError::Usage(format!("{}: {}", path.display(), e.message)))?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| CliError::Usage(format!("{}: {e}", path.display())))?;
    Ok(DefinitionInput::from_json(&value).map_err(AdminError::from)?)
}

/// Runs an admin command and returns what to print.
pub async fn run(settings: &Settings, command: AdminCommand) -> Result<Value, CliError> {
    // As the app role, this only checks that the schema is current.
    db::migrate_if_behind(settings.database.url.expose_secret()).await?;
    let pool = db::pool(&settings.database)?;
    let mut client = pool.get().await.map_err(AdminError::from)?;
    let out = match command {
        AdminCommand::CreateOrg {
            name,
            disable_custom_objects,
        } => {
            let org = service::create_org(&mut client, &name, !disable_custom_objects).await?;
            json!(org)
        }
        AdminCommand::CreateKey { org } => json!(service::create_key(&client, OrgId(org)).await?),
        AdminCommand::ListKeys { org } => json!(keys::list(&client, OrgId(org)).await?),
        AdminCommand::RevokeKey { org, key_id } => {
            keys::revoke(&client, OrgId(org), &key_id).await?;
            json!({ "revoked": key_id })
        }
        AdminCommand::DefineType {
            org,
            name,
            label,
            attrs,
            assocs,
            file,
        } => {
            let input = match file {
                Some(path) => definition_from_file(&path)?,
                None => definition_from_flags(&name, label, &attrs, &assocs)
                    .map_err(AdminError::from)?,
            };
            let stored = service::put_object_type(&mut client, OrgId(org), &name, input).await?;
            json!(Definition::from(&stored))
        }
        AdminCommand::StaleProcesses { older_than, limit } => {
            let after = older_than.unwrap_or(settings.worker.stale_after_secs);
            stale_processes(&client, after, limit).await?
        }
        AdminCommand::FailProcess {
            org,
            process,
            reason,
            operator,
        } => {
            let operator = operator.unwrap_or_else(default_operator);
            let (org, process) = (OrgId(org), ProcessId(process));
            json!(fail::fail_process(&client, org, process, &operator, &reason).await?)
        }
        AdminCommand::SetLimits {
            org,
            reset,
            writes_per_second,
            writes_burst,
            reads_per_second,
            reads_burst,
            max_open_processes,
        } => {
            let org = OrgId(org);
            let mut own = if reset {
                Limits::default()
            } else {
                service::get_limits(&client, &settings.limits, org)
                    .await?
                    .own
            };
            own.writes_per_second = writes_per_second.or(own.writes_per_second);
            own.writes_burst = writes_burst.or(own.writes_burst);
            own.reads_per_second = reads_per_second.or(own.reads_per_second);
            own.reads_burst = reads_burst.or(own.reads_burst);
            own.max_open_processes = max_open_processes.or(own.max_open_processes);
            json!(service::set_limits(&client, &settings.limits, org, own).await?)
        }
        AdminCommand::ShowLimits { org } => {
            json!(service::get_limits(&client, &settings.limits, OrgId(org)).await?)
        }
        AdminCommand::ListTypes { org } => list_types(&client, OrgId(org)).await?,
    };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_attribute_flags() {
        let def = definition_from_flags(
            "vehicle",
            None,
            &[
                "name:text".into(),
                "price:number".into(),
                "color:category:red,blue".into(),
            ],
            &["garage".into()],
        )
        .unwrap();
        assert_eq!(def.label, "vehicle");
        assert_eq!(def.attributes[2].options.len(), 2);
        assert_eq!(def.associations.unwrap()[0].as_str(), "garage");
    }

    #[test]
    fn refuses_bad_flags_with_the_flag_named() {
        let e = definition_from_flags("v", None, &["name".into()], &[]).unwrap_err();
        assert!(e.field.contains("--attr name"), "{e}");
        let e = definition_from_flags("v", None, &["name:txt".into()], &[]).unwrap_err();
        assert!(e.message.contains("txt"), "{e}");
        let e = definition_from_flags("v", None, &["color:category".into()], &[]).unwrap_err();
        assert!(e.field.contains("attributes[0]"), "{e}");
    }
}
