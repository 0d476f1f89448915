//! Distinguished names as the whitelist writes them (`CN=smtp.op.fr,OU=315...,O=Op,ST=Paris
//! (75),C=FR`) and as certificates carry them, compared the way a postmaster would: same
//! attributes with the same values, whatever the order, case or spacing.

use std::fmt;

/// A distinguished name, normalised for comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DistinguishedName {
    /// (attribute type in upper case, value with spaces collapsed), sorted.
    attributes: Vec<(String, String)>,
}

/// Why a DN string could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DnError {
    /// Nothing in it.
    #[error("the DN is empty")]
    Empty,
    /// A part without `TYPE=value`.
    #[error("`{0}` is not of the form TYPE=value")]
    NotAnAttribute(String),
    /// The text ends inside an escape.
    #[error("the DN ends with a lone backslash")]
    DanglingEscape,
}

impl DistinguishedName {
    /// Reads the textual form (RFC 4514 style, `,` or `+` between attributes, `\` escapes).
    pub fn parse(text: &str) -> Result<DistinguishedName, DnError> {
        let mut parts = Vec::new();
        let mut current = String::new();
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => current.push(chars.next().ok_or(DnError::DanglingEscape)?),
                ',' | '+' | ';' => parts.push(std::mem::take(&mut current)),
                _ => current.push(c),
            }
        }
        parts.push(current);
        let mut attributes = Vec::new();
        for part in parts {
            if part.trim().is_empty() {
                continue;
            }
            let (kind, value) = part
                .split_once('=')
                .ok_or_else(|| DnError::NotAnAttribute(part.trim().to_string()))?;
            if kind.trim().is_empty() {
                return Err(DnError::NotAnAttribute(part.trim().to_string()));
            }
            attributes.push((kind.to_string(), value.to_string()));
        }
        if attributes.is_empty() {
            return Err(DnError::Empty);
        }
        Ok(DistinguishedName::from_attributes(attributes))
    }

    /// Builds one from (type, value) pairs, e.g. read off a certificate. Types are short
    /// names (`CN`, `OU`, `O`, `ST`, `C`, ...).
    pub fn from_attributes<T, V>(pairs: impl IntoIterator<Item = (T, V)>) -> DistinguishedName
    where
        T: AsRef<str>,
        V: AsRef<str>,
    {
        let mut attributes: Vec<(String, String)> = pairs
            .into_iter()
            .map(|(t, v)| (normal_type(t.as_ref()), normal_value(v.as_ref())))
            .collect();
        attributes.sort();
        DistinguishedName { attributes }
    }

    /// The value of the first attribute of this type (`CN`), if any.
    pub fn get(&self, kind: &str) -> Option<&str> {
        let kind = normal_type(kind);
        self.attributes
            .iter()
            .find(|(t, _)| *t == kind)
            .map(|(_, v)| v.as_str())
    }
}

impl fmt::Display for DistinguishedName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (t, v)) in self.attributes.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}={}", escape(t), escape(v))?;
        }
        Ok(())
    }
}

/// A type or value as [`DistinguishedName::parse`] reads it back: the escape character
/// first, then the separators, so that two different names never print the same.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | ',' | '+' | ';' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn normal_type(kind: &str) -> String {
    match kind.trim().to_ascii_uppercase().as_str() {
        "S" | "STATEORPROVINCENAME" => "ST".into(),
        "COMMONNAME" => "CN".into(),
        "ORGANIZATIONNAME" => "O".into(),
        "ORGANIZATIONALUNITNAME" => "OU".into(),
        "COUNTRYNAME" => "C".into(),
        "LOCALITYNAME" => "L".into(),
        "E" | "EMAIL" => "EMAILADDRESS".into(),
        other => other.to_string(),
    }
}

/// Values compare without regard to case or runs of spaces.
fn normal_value(value: &str) -> String {
    value
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_case_and_spacing_do_not_matter() {
        let listed = DistinguishedName::parse(
            "CN=smtp.example-operator.fr,OU=31598513500187,O=Example Operator,ST=Paris (75),C=FR",
        )
        .expect("parses");
        let cert = DistinguishedName::from_attributes([
            ("C", "FR"),
            ("ST", "Paris  (75)"),
            ("O", "EXAMPLE OPERATOR"),
            ("OU", "31598513500187"),
            ("CN", "smtp.example-operator.fr"),
        ]);
        assert_eq!(listed, cert);
        assert_eq!(listed.get("cn"), Some("smtp.example-operator.fr"));
    }

    #[test]
    fn a_different_attribute_is_a_different_dn() {
        let a = DistinguishedName::parse("CN=mx.a.fr,O=A,C=FR").expect("parses");
        let b = DistinguishedName::parse("CN=mx.b.fr,O=A,C=FR").expect("parses");
        let c = DistinguishedName::parse("CN=mx.a.fr,O=A,OU=1,C=FR").expect("parses");
        assert_ne!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn escapes_and_errors() {
        let dn =
            DistinguishedName::parse(r"CN=x,O=Dupont\, Durand et associés,C=FR").expect("parses");
        assert_eq!(dn.get("O"), Some("dupont, durand et associés"));
        assert_eq!(DistinguishedName::parse(" , "), Err(DnError::Empty));
        assert!(matches!(
            DistinguishedName::parse("CN=x,garbage"),
            Err(DnError::NotAnAttribute(_))
        ));
        assert_eq!(
            DistinguishedName::parse("CN=x\\"),
            Err(DnError::DanglingEscape)
        );
    }

    #[test]
    fn fuzz_distinguished_names() {
        mssante_fuzzing::fuzz(
            "dn",
            &[
                b"CN=smtp.op.fr,OU=31598513500187,O=Op,ST=Paris (75),C=FR",
                b"CN=x\\,y+UID=1,O=\"A, B\",C=FR",
                b"cn = a , o = b",
            ],
            |input| {
                if let Ok(dn) = DistinguishedName::parse(&String::from_utf8_lossy(input)) {
                    // What is printed reads back as the same name: no two names print alike.
                    assert_eq!(DistinguishedName::parse(&dn.to_string()), Ok(dn));
                }
            },
        );
    }

    #[test]
    fn a_backslash_cannot_make_two_names_print_alike() {
        let two = DistinguishedName::from_attributes([("CN", "x\\"), ("O", "y")]);
        let one = DistinguishedName::from_attributes([("CN", "x,O=y")]);
        assert_ne!(two.to_string(), one.to_string());
        assert_eq!(DistinguishedName::parse(&two.to_string()), Ok(two));
        assert_eq!(DistinguishedName::parse(&one.to_string()), Ok(one));
    }
}
