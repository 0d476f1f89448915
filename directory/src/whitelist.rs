//! The ANS whitelist, `listeblanchemssante.xml`: every domain of the MSSanté trust space and
//! the subject DN of its operator's server certificate.
//!
//! ```xml
//! <ListeBlanche xmlns="https://listeblanche.mssante.fr/schema" DateDeGeneration="...">
//!   <Domaine>
//!     <Nom>hopital-exemple.fr</Nom>
//!     <Description>...</Description>
//!     <DNCertificatOperateur>CN=smtp.op.fr,OU=...,O=...,ST=...,C=FR</DNCertificatOperateur>
//!     <ResponsableContact>...</ResponsableContact>
//!     <SupportContact>...</SupportContact>
//!     <DateMAJ>...</DateMAJ>
//!   </Domaine>
//! </ListeBlanche>
//! ```
//!
//! Parsing only, all or nothing: a file with one bad entry is refused whole, with its line,
//! so a broken download never shrinks the trust space. Domain names come out in their A-label
//! form (IDN), lower case.

use std::collections::HashMap;

use crate::dn::DistinguishedName;

/// The namespace of the ANS schema.
pub const NAMESPACE: &str = "https://listeblanche.mssante.fr/schema";

/// A whole whitelist file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Whitelist {
    /// `DateDeGeneration`, as written (attribute or element of the root), if present.
    pub generated: Option<String>,
    /// The domains, in file order, each once.
    pub domains: Vec<TrustedDomain>,
}

/// One `<Domaine>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedDomain {
    /// The domain, A-label form, lower case.
    pub name: String,
    /// The operator's server certificate subject, as written in the file.
    pub operator_dn: String,
    /// `Description`.
    pub description: String,
    /// `SupportContact`.
    pub support_contact: String,
    /// `DateMAJ`.
    pub updated: String,
}

/// Why a whitelist file was refused; `line` is 1-based.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WhitelistError {
    /// Not well-formed XML.
    #[error("line {line}: not well-formed XML: {message}")]
    Xml {
        /// Where.
        line: u32,
        /// The parser's words.
        message: String,
    },
    /// The root is in another namespace.
    #[error(
        "line {line}: the root element <{found}> is not the ANS whitelist (namespace {NAMESPACE})"
    )]
    NotAWhitelist {
        /// Where.
        line: u32,
        /// The root's name and namespace.
        found: String,
    },
    /// A `<Domaine>` lacks a required child.
    #[error("line {line}: <Domaine> without <{field}>")]
    MissingField {
        /// Where the `<Domaine>` starts.
        line: u32,
        /// The missing child.
        field: &'static str,
    },
    /// `<Nom>` is not a domain name.
    #[error("line {line}: `{name}` is not a domain name: {reason}")]
    BadDomain {
        /// Where.
        line: u32,
        /// The text.
        name: String,
        /// Why.
        reason: String,
    },
    /// `<DNCertificatOperateur>` is not a DN.
    #[error("line {line}: DNCertificatOperateur `{dn}`: {reason}")]
    BadDn {
        /// Where.
        line: u32,
        /// The text.
        dn: String,
        /// Why.
        reason: String,
    },
    /// The same domain twice with different operators.
    #[error("line {line}: {name} is listed again with another operator (first at line {first})")]
    Conflicting {
        /// The second entry.
        line: u32,
        /// The domain.
        name: String,
        /// The first entry.
        first: u32,
    },
    /// No `<Domaine>` at all: surely a truncated or wrong file.
    #[error("the file lists no <Domaine>: refusing to empty the trust space")]
    Empty,
}

/// Parses a whitelist file.
pub fn parse(xml: &str) -> Result<Whitelist, WhitelistError> {
    let doc = roxmltree::Document::parse(xml).map_err(|e| WhitelistError::Xml {
        line: e.pos().row,
        message: e.to_string(),
    })?;
    // Line numbers from one index of line starts: asking roxmltree for each node's position
    // rescans the text from its start, quadratic in the number of domains.
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(xml.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let line_of = |node: roxmltree::Node| {
        let at = node.range().start;
        u32::try_from(line_starts.partition_point(|&start| start <= at)).unwrap_or(u32::MAX)
    };
    let root = doc.root_element();
    if let Some(ns) = root.tag_name().namespace()
        && ns != NAMESPACE
    {
        return Err(WhitelistError::NotAWhitelist {
            line: line_of(root),
            found: format!("{} ({ns})", root.tag_name().name()),
        });
    }
    let generated = root
        .attribute("DateDeGeneration")
        .map(str::to_string)
        .or_else(|| child_text(root, "DateDeGeneration"));

    let mut domains: Vec<TrustedDomain> = Vec::new();
    let mut seen: HashMap<String, (u32, DistinguishedName)> = HashMap::new();
    for node in root
        .descendants()
        .filter(|n| n.is_element() && n.tag_name().name() == "Domaine")
    {
        let line = line_of(node);
        let required = |field: &'static str| {
            child_text(node, field)
                .filter(|t| !t.is_empty())
                .ok_or(WhitelistError::MissingField { line, field })
        };
        let raw_name = required("Nom")?;
        let name = a_label(&raw_name).map_err(|reason| WhitelistError::BadDomain {
            line,
            name: raw_name.clone(),
            reason,
        })?;
        let operator_dn = required("DNCertificatOperateur")?;
        let dn = DistinguishedName::parse(&operator_dn).map_err(|e| WhitelistError::BadDn {
            line,
            dn: operator_dn.clone(),
            reason: e.to_string(),
        })?;
        if let Some((first, first_dn)) = seen.get(&name) {
            if *first_dn != dn {
                return Err(WhitelistError::Conflicting {
                    line,
                    name,
                    first: *first,
                });
            }
            continue; // the same entry twice: harmless
        }
        seen.insert(name.clone(), (line, dn));
        domains.push(TrustedDomain {
            name,
            operator_dn,
            description: child_text(node, "Description").unwrap_or_default(),
            support_contact: child_text(node, "SupportContact").unwrap_or_default(),
            updated: child_text(node, "DateMAJ").unwrap_or_default(),
        });
    }
    if domains.is_empty() {
        return Err(WhitelistError::Empty);
    }
    Ok(Whitelist { generated, domains })
}

/// The trimmed text of the first child element with this local name.
fn child_text(node: roxmltree::Node, name: &str) -> Option<String> {
    node.children()
        .find(|c| c.is_element() && c.tag_name().name() == name)
        .map(|c| c.text().unwrap_or("").trim().to_string())
}

/// A domain name in its A-label form, lower case (`hôpital.fr` → `xn--hpital-...`), or why
/// it is not a domain name. The one domain check of the project.
pub fn a_label(name: &str) -> Result<String, String> {
    let name = name.trim().trim_end_matches('.');
    let ascii = idna::domain_to_ascii(name).map_err(|e| format!("not a valid IDN ({e})"))?;
    if !ascii.contains('.') {
        return Err("a domain needs at least two labels".into());
    }
    if ascii.len() > 253 {
        return Err("longer than 253 characters".into());
    }
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    if !ascii.split('.').all(label_ok) {
        return Err("labels are letters, digits and inner hyphens, 1 to 63 long".into());
    }
    Ok(ascii.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListeBlanche xmlns="https://listeblanche.mssante.fr/schema" DateDeGeneration="2026-11-20T06:00:00">
  <Domaine>
    <Nom>hopital-exemple.fr</Nom>
    <Description>CH Exemple</Description>
    <DNCertificatOperateur>CN=smtp.op.fr,OU=31598513500187,O=Op,ST=Paris (75),C=FR</DNCertificatOperateur>
    <ResponsableContact>rssi@op.fr</ResponsableContact>
    <SupportContact>support@op.fr</SupportContact>
    <DateMAJ>2026-01-02</DateMAJ>
  </Domaine>
  <Domaine>
    <Nom>Clinique-Évry.fr</Nom>
    <DNCertificatOperateur>CN=smtp.op.fr,OU=31598513500187,O=Op,ST=Paris (75),C=FR</DNCertificatOperateur>
  </Domaine>
</ListeBlanche>
"#;

    #[test]
    fn reads_domains_in_a_label_form() {
        let list = parse(SAMPLE).expect("parses");
        assert_eq!(list.generated.as_deref(), Some("2026-11-20T06:00:00"));
        assert_eq!(list.domains.len(), 2);
        assert_eq!(list.domains[0].name, "hopital-exemple.fr");
        assert_eq!(list.domains[0].support_contact, "support@op.fr");
        assert!(
            list.domains[1].name.starts_with("xn--clinique-vry"),
            "{}",
            list.domains[1].name
        );
    }

    #[test]
    fn a_bad_entry_refuses_the_whole_file_with_its_line() {
        let broken = SAMPLE.replace("<Nom>Clinique-Évry.fr</Nom>", "");
        assert_eq!(
            parse(&broken),
            Err(WhitelistError::MissingField {
                line: 11,
                field: "Nom"
            })
        );
        let truncated = &SAMPLE[..SAMPLE.len() - 30];
        assert!(matches!(parse(truncated), Err(WhitelistError::Xml { .. })));
        let bad_dn = SAMPLE.replacen("CN=smtp.op.fr,OU", "garbage,OU", 1);
        assert!(matches!(
            parse(&bad_dn),
            Err(WhitelistError::BadDn { line: 3, .. })
        ));
        let other_ns = SAMPLE.replace("https://listeblanche.mssante.fr/schema", "urn:other");
        assert!(matches!(
            parse(&other_ns),
            Err(WhitelistError::NotAWhitelist { .. })
        ));
        assert_eq!(
            parse("<ListeBlanche xmlns=\"https://listeblanche.mssante.fr/schema\"/>"),
            Err(WhitelistError::Empty)
        );
    }

    #[test]
    fn the_same_domain_with_two_operators_is_refused() {
        let twice = SAMPLE.replace("Clinique-Évry.fr", "hopital-exemple.fr").replacen(
            "CN=smtp.op.fr,OU=31598513500187,O=Op,ST=Paris (75),C=FR</DNCertificatOperateur>\n  </Domaine>\n</Liste",
            "CN=other,O=Other,C=FR</DNCertificatOperateur>\n  </Domaine>\n</Liste",
            1,
        );
        assert!(
            matches!(
                parse(&twice),
                Err(WhitelistError::Conflicting { first: 3, .. })
            ),
            "{:?}",
            parse(&twice)
        );
    }

    #[test]
    fn fuzz_whitelist_files() {
        mssante_fuzzing::fuzz("whitelist", &[SAMPLE.as_bytes()], |input| {
            let _ = parse(&String::from_utf8_lossy(input));
        });
    }

    #[test]
    fn line_numbers_come_from_one_index_of_line_starts() {
        let domains: String = (0..20_000)
            .map(|i| {
                format!(
                    "<Domaine><Nom>d{i}.fr</Nom><DNCertificatOperateur>CN=mx.d{i}.fr,O=Op,C=FR</DNCertificatOperateur></Domaine>\n"
                )
            })
            .collect();
        let xml = format!(
            "<ListeBlanche xmlns=\"{NAMESPACE}\">\n{domains}<Domaine><Nom>nodot</Nom><DNCertificatOperateur>CN=x</DNCertificatOperateur></Domaine>\n</ListeBlanche>\n"
        );
        let err = parse(&xml).expect_err("the last domain is bad");
        assert!(err.to_string().contains("line 20002"), "{err}");
    }
}
