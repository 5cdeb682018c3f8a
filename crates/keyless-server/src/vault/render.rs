//! Key Vault JSON: SecretBundle, SecretItem, DeletedSecretBundle, errors.

use keyless_core::vault::{DeletedSecretView, SecretVersionView};
use serde_json::{Map, Value, json};

fn attributes(v: &SecretVersionView) -> Value {
    let mut a = Map::new();
    a.insert("enabled".into(), json!(v.enabled));
    if let Some(nbf) = v.nbf {
        a.insert("nbf".into(), json!(nbf));
    }
    if let Some(exp) = v.exp {
        a.insert("exp".into(), json!(exp));
    }
    a.insert("created".into(), json!(v.created));
    a.insert("updated".into(), json!(v.updated));
    a.insert(
        "recoveryLevel".into(),
        json!(if v.recoverable_days > 0 {
            "Recoverable+Purgeable"
        } else {
            "Purgeable"
        }),
    );
    a.insert("recoverableDays".into(), json!(v.recoverable_days));
    Value::Object(a)
}

fn base(origin: &str, v: &SecretVersionView, versioned: bool) -> Map<String, Value> {
    let mut m = Map::new();
    let id = if versioned {
        format!("{origin}/secrets/{}/{}", v.name, v.version)
    } else {
        format!("{origin}/secrets/{}", v.name)
    };
    m.insert("id".into(), json!(id));
    m.insert("attributes".into(), attributes(v));
    m.insert("tags".into(), Value::Object(v.tags.clone()));
    if let Some(ct) = &v.content_type {
        m.insert("contentType".into(), json!(ct));
    }
    m
}

/// A SecretBundle (with the value when the operation returns one).
pub fn bundle(origin: &str, v: &SecretVersionView) -> Value {
    let mut m = base(origin, v, true);
    if let Some(value) = &v.value {
        m.insert("value".into(), json!(value));
    }
    Value::Object(m)
}

/// A SecretItem: list-secrets ids carry no version; list-versions ids do.
pub fn item(origin: &str, v: &SecretVersionView, versioned: bool) -> Value {
    Value::Object(base(origin, v, versioned))
}

/// A DeletedSecretBundle / DeletedSecretItem.
pub fn deleted(origin: &str, d: &DeletedSecretView, as_item: bool) -> Value {
    let mut m = base(origin, &d.latest, !as_item);
    m.insert(
        "recoveryId".into(),
        json!(format!("{origin}/deletedsecrets/{}", d.latest.name)),
    );
    m.insert("deletedDate".into(), json!(d.deleted_date));
    m.insert("scheduledPurgeDate".into(), json!(d.scheduled_purge_date));
    Value::Object(m)
}

/// Key Vault's error body.
pub fn error(code: &str, message: &str, inner: Option<&str>) -> Value {
    let mut e = json!({"code": code, "message": message});
    if let (Some(i), Some(o)) = (inner, e.as_object_mut()) {
        o.insert("innererror".into(), json!({"code": i}));
    }
    json!({ "error": e })
}
