//! Typed access to verified token claims.

use super::IdentityError;
use serde_json::{Map, Value};

/// A verified token's claims, with typed accessors that report wrong types as `IdentityError`s.
pub struct Claims<'a>(pub &'a Map<String, Value>);

impl<'a> Claims<'a> {
    pub(crate) fn get(&self, name: &str) -> Option<&'a Value> {
        self.0.get(name)
    }

    /// A string claim, or `None` when absent or null; another type is an error.
    pub(crate) fn optional_string(&self, name: &str) -> Result<Option<&'a str>, IdentityError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(IdentityError::Claim(format!(
                "claim {name} must be a string"
            ))),
        }
    }

    /// A non-empty string claim.
    pub(crate) fn required_string(&self, name: &str) -> Result<&'a str, IdentityError> {
        match self.optional_string(name)? {
            Some(s) if !s.is_empty() => Ok(s),
            _ => Err(IdentityError::Claim(format!(
                "required claim {name} is missing or empty"
            ))),
        }
    }

    pub(crate) fn subject(&self) -> Result<&'a str, IdentityError> {
        self.required_string("sub")
    }

    pub(crate) fn issuer(&self) -> &'a str {
        self.0.get("iss").and_then(Value::as_str).unwrap_or("")
    }

    /// Go's `stringAsBool` over `email_verified`: JSON booleans or the strings
    /// `true`/`True`/`false`/`False`; absent means false; anything else is an error.
    pub(crate) fn email_verified(&self) -> Result<bool, IdentityError> {
        match self.0.get("email_verified") {
            None | Some(Value::Null) => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::String(s)) if s == "true" || s == "True" => Ok(true),
            Some(Value::String(s)) if s == "false" || s == "False" => Ok(false),
            Some(_) => Err(IdentityError::Claim(
                "claim email_verified must be a boolean".into(),
            )),
        }
    }
}

/// Renders a JSON value as text the way Fulcio's claim stringification does: strings as
/// is, booleans `true`/`false`, integral numbers without exponent or decimal point, other
/// numbers in shortest form, and nested values in Go's `%v` style.
pub fn stringify(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Null => "<nil>".into(),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.to_string()
            } else if let Some(u) = n.as_u64() {
                u.to_string()
            } else {
                let f = n.as_f64().unwrap_or(0.0);
                if f.fract() == 0.0 && f.abs() < 1e21 {
                    format!("{f:.0}")
                } else {
                    let s = format!("{f}");
                    s
                }
            }
        }
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(stringify).collect::<Vec<_>>().join(" ")
        ),
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort();
            format!(
                "map[{}]",
                keys.iter()
                    .map(|k| format!("{k}:{}", stringify(&o[k.as_str()])))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
    }
}

/// A syntactic email check in the spirit of govalidator's `IsEmail`: dot-atoms on the left,
/// a dotted hostname of letters, digits and hyphens on the right.
pub(crate) fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.rsplit_once('@') else {
        return false;
    };
    const ATEXT: &[u8] = b"!#$%&'*+-/=?^_`{|}~";
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && local.split('.').all(|atom| {
            !atom.is_empty()
                && atom
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || ATEXT.contains(&b))
        });
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && domain.len() <= 253
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    local_ok && domain_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stringification_matches_fulcio() {
        assert_eq!(stringify(&json!(1)), "1");
        assert_eq!(stringify(&json!(1.4)), "1.4");
        assert_eq!(stringify(&json!(1.7)), "1.7");
        assert_eq!(stringify(&json!(1000000.0)), "1000000");
        assert_eq!(stringify(&json!(1753000000)), "1753000000");
        assert_eq!(stringify(&json!(true)), "true");
    }

    #[test]
    fn emails() {
        assert!(is_email("alice@example.com"));
        assert!(is_email("a.b+c@sub.example.org"));
        assert!(!is_email("alice"));
        assert!(!is_email("alice@localhost"));
        assert!(!is_email("@example.com"));
        assert!(!is_email("a..b@example.com"));
        assert!(!is_email("a b@example.com"));
        assert!(!is_email("alice@-example.com"));
    }
}
