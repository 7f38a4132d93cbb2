//! Secrets planted in an input: whatever the input, an error message never quotes a credential or
//! an encryption key.

use serde_json::Value;

/// A value no message of pwcache contains unless it copied it from the input.
pub const MARKER: &str = "pwcache-check-secret-7f3a9c";

/// The fields whose values are secrets (configuration and entries).
const SECRET_FIELDS: [&str; 3] = ["encryption_key", "username", "password"];

/// Replaces every string under a secret field, at any depth, by [`MARKER`] (non-string scalars
/// become the marker too, so a secret of the wrong type is covered). Returns the text of the
/// changed value, or `None` when `text` is not JSON or holds no secret field.
pub fn plant(text: &str) -> Option<String> {
    let mut value: Value = serde_json::from_str(text).ok()?;
    plant_in(&mut value, false).then(|| value.to_string())
}

/// [`plant`], and for a configuration also the password of every `url` (the shared tier's
/// `redis://user:password@host` URL): [`MARKER`] becomes its userinfo's password.
pub fn plant_in_config(text: &str) -> Option<String> {
    let mut value: Value = serde_json::from_str(text).ok()?;
    plant_in(&mut value, true).then(|| value.to_string())
}

fn plant_in(value: &mut Value, urls: bool) -> bool {
    match value {
        Value::Object(map) => {
            let mut planted = false;
            for (name, field) in map.iter_mut() {
                if SECRET_FIELDS.contains(&name.as_str()) {
                    overwrite(field);
                    planted = true;
                } else if urls && name == "url" {
                    *field = Value::String(match field.as_str() {
                        Some(url) => match url.split_once("://") {
                            Some((scheme, rest)) => format!("{scheme}://user:{MARKER}@{rest}"),
                            None => format!("redis://user:{MARKER}@{url}"),
                        },
                        None => MARKER.to_string(),
                    });
                    planted = true;
                } else {
                    planted |= plant_in(field, urls);
                }
            }
            planted
        }
        Value::Array(items) => items
            .iter_mut()
            .fold(false, |p, item| plant_in(item, urls) | p),
        _ => false,
    }
}

fn overwrite(value: &mut Value) {
    match value {
        Value::Object(map) => map.values_mut().for_each(overwrite),
        Value::Array(items) => items.iter_mut().for_each(overwrite),
        Value::Null => {}
        other => *other = Value::String(MARKER.into()),
    }
}

/// Asserts that `message` (of an error about input holding [`MARKER`]) does not quote it.
pub fn assert_not_quoted(what: &str, message: &str) {
    assert!(
        !message.contains(MARKER),
        "{what}: an error message quotes a secret: {message}"
    );
}
