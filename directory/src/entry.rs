//! One mailbox as the national directory shows it, and its LDAP form under mssante's schema
//! (`config/mssante-directory.schema`): RDN `mail=<address>`, one structural class per
//! mailbox type, O/N flags as ANS writes them, the encryption certificate in
//! `userSMIMECertificate` and `userCertificate;binary`.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

/// The mailbox (BAL) types of MSSanté.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MailboxType {
    /// A health professional's own mailbox, owned by their idNat.
    Per,
    /// A service or team of a structure.
    Org,
    /// A piece of software.
    App,
    /// Shared by the professionals of a practice.
    Cab,
}

impl MailboxType {
    /// `PER`, `ORG`, `APP`, `CAB`.
    pub fn as_str(self) -> &'static str {
        match self {
            MailboxType::Per => "PER",
            MailboxType::Org => "ORG",
            MailboxType::App => "APP",
            MailboxType::Cab => "CAB",
        }
    }

    /// The structural object class of this type's entries.
    pub fn object_class(self) -> &'static str {
        match self {
            MailboxType::Per => "mssPersonMailbox",
            MailboxType::Org => "mssOrganisationMailbox",
            MailboxType::App => "mssApplicationMailbox",
            MailboxType::Cab => "mssCabinetMailbox",
        }
    }
}

impl fmt::Display for MailboxType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MailboxType {
    type Err = String;

    fn from_str(s: &str) -> Result<MailboxType, String> {
        match s.trim().to_ascii_uppercase().as_str() {
            "PER" => Ok(MailboxType::Per),
            "ORG" => Ok(MailboxType::Org),
            "APP" => Ok(MailboxType::App),
            "CAB" => Ok(MailboxType::Cab),
            other => Err(format!(
                "{other:?} is not a mailbox type (PER, ORG, APP, CAB)"
            )),
        }
    }
}

/// A mailbox entry of the directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The address (lower case): the entry's RDN.
    pub address: String,
    /// PER, ORG, APP or CAB.
    pub kind: MailboxType,
    /// The owner's idNat (PER; required by the schema for PER).
    pub owner_idnat: Option<String>,
    /// FINESS or SIRET of the structure.
    pub structure_id: Option<String>,
    /// The name shown (cn, displayName).
    pub display_name: Option<String>,
    /// Surname (sn) of the owner.
    pub surname: Option<String>,
    /// Given name of the owner.
    pub given_name: Option<String>,
    /// Profession code of the owner.
    pub profession_code: Option<String>,
    /// Service of the structure.
    pub service: Option<String>,
    /// Free description.
    pub description: Option<String>,
    /// Phone number.
    pub phone: Option<String>,
    /// Person responsible (not for PER).
    pub responsible: Option<String>,
    /// Accepts results and letters by secure messaging instead of paper.
    pub dematerialisation: bool,
    /// Red list: never in the public view.
    pub red_list: bool,
    /// The S/MIME encryption certificate (DER).
    pub certificate: Option<Vec<u8>>,
}

/// Attributes this crate writes; the ones a publication replaces or removes.
pub const ATTRIBUTES: [&str; 16] = [
    "objectClass",
    "mail",
    "mssMailboxType",
    "mssOwnerIdNat",
    "mssStructureId",
    "cn",
    "displayName",
    "sn",
    "givenName",
    "mssProfessionCode",
    "mssService",
    "description",
    "telephoneNumber",
    "mssResponsible",
    "mssDematerialisation",
    "mssListeRouge",
];

/// The certificate attributes (binary transfer).
pub const CERTIFICATE_ATTRIBUTES: [&str; 2] = ["userSMIMECertificate", "userCertificate;binary"];

fn flag(on: bool) -> &'static str {
    if on { "O" } else { "N" }
}

/// The first value of attribute `name` (names are case-insensitive in LDAP).
pub(crate) fn first_value<V: Clone>(attrs: &HashMap<String, Vec<V>>, name: &str) -> Option<V> {
    attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.first().cloned())
}

impl Entry {
    /// A bare entry of `kind` for `address`.
    pub fn new(address: &str, kind: MailboxType) -> Entry {
        Entry {
            address: address.to_ascii_lowercase(),
            kind,
            owner_idnat: None,
            structure_id: None,
            display_name: None,
            surname: None,
            given_name: None,
            profession_code: None,
            service: None,
            description: None,
            phone: None,
            responsible: None,
            dematerialisation: false,
            red_list: false,
            certificate: None,
        }
    }

    /// Every attribute with its values, as written to the directory (absent ones omitted).
    /// The schema wants `sn` on a person and `cn` for address books: both fall back on
    /// the address when unknown.
    pub fn attributes(&self) -> Vec<(String, HashSet<Vec<u8>>)> {
        let mut out: Vec<(&str, Vec<u8>)> = vec![
            ("objectClass", self.kind.object_class().into()),
            ("mail", self.address.clone().into_bytes()),
            ("mssMailboxType", self.kind.as_str().into()),
            ("mssDematerialisation", flag(self.dematerialisation).into()),
            ("mssListeRouge", flag(self.red_list).into()),
        ];
        let cn = self
            .display_name
            .clone()
            .unwrap_or_else(|| self.address.clone());
        out.push(("cn", cn.into_bytes()));
        if self.kind == MailboxType::Per {
            let sn = self.surname.clone().unwrap_or_else(|| self.address.clone());
            out.push(("sn", sn.into_bytes()));
        } else if let Some(sn) = &self.surname {
            out.push(("sn", sn.clone().into_bytes()));
        }
        let optional = [
            ("mssOwnerIdNat", &self.owner_idnat),
            ("mssStructureId", &self.structure_id),
            ("displayName", &self.display_name),
            ("givenName", &self.given_name),
            ("mssProfessionCode", &self.profession_code),
            ("mssService", &self.service),
            ("description", &self.description),
            ("telephoneNumber", &self.phone),
            ("mssResponsible", &self.responsible),
        ];
        for (name, value) in optional {
            if let Some(v) = value.as_ref().filter(|v| !v.trim().is_empty()) {
                out.push((name, v.clone().into_bytes()));
            }
        }
        if let Some(cert) = &self.certificate {
            for name in CERTIFICATE_ATTRIBUTES {
                out.push((name, cert.clone()));
            }
        }
        out.into_iter()
            .map(|(name, value)| (name.to_string(), HashSet::from([value])))
            .collect()
    }

    /// The entry an LDAP search returned (`attrs`: text values, `binary`: the others), or
    /// why it is not one of ours.
    pub fn from_ldap(
        attrs: &HashMap<String, Vec<String>>,
        binary: &HashMap<String, Vec<Vec<u8>>>,
    ) -> Result<Entry, String> {
        let get = |name: &str| first_value(attrs, name);
        let address = get("mail").ok_or("an entry without mail")?;
        let kind: MailboxType = get("mssMailboxType")
            .ok_or_else(|| format!("{address}: no mssMailboxType"))?
            .parse()?;
        let is_on = |name: &str| get(name).is_some_and(|v| v.eq_ignore_ascii_case("O"));
        let certificate = CERTIFICATE_ATTRIBUTES
            .iter()
            .find_map(|name| first_value(binary, name));
        Ok(Entry {
            owner_idnat: get("mssOwnerIdNat"),
            structure_id: get("mssStructureId"),
            display_name: get("displayName"),
            surname: get("sn").filter(|sn| !sn.eq_ignore_ascii_case(&address)),
            given_name: get("givenName"),
            profession_code: get("mssProfessionCode"),
            service: get("mssService"),
            description: get("description"),
            phone: get("telephoneNumber"),
            responsible: get("mssResponsible"),
            dematerialisation: is_on("mssDematerialisation"),
            red_list: is_on("mssListeRouge"),
            certificate,
            ..Entry::new(&address, kind)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_survives_its_ldap_form() {
        let mut entry = Entry::new("Alice@Hopital.test", MailboxType::Per);
        entry.owner_idnat = Some("810001234567".into());
        entry.display_name = Some("Dr Alice MARTIN".into());
        entry.surname = Some("MARTIN".into());
        entry.red_list = true;
        entry.certificate = Some(vec![0x30, 0x03, 0x02, 0x01, 0x01]);
        let mut text = HashMap::new();
        let mut binary = HashMap::new();
        for (name, values) in entry.attributes() {
            let values: Vec<Vec<u8>> = values.into_iter().collect();
            if CERTIFICATE_ATTRIBUTES.contains(&name.as_str()) {
                binary.insert(name, values);
            } else {
                let text_values = values
                    .into_iter()
                    .map(|v| String::from_utf8(v).expect("text"))
                    .collect();
                text.insert(name.to_ascii_lowercase(), text_values);
            }
        }
        assert_eq!(text["msslisterouge"], vec!["O".to_string()]);
        assert_eq!(text["objectclass"], vec!["mssPersonMailbox".to_string()]);
        assert_eq!(Entry::from_ldap(&text, &binary), Ok(entry));
    }

    #[test]
    fn a_person_without_a_surname_still_satisfies_the_schema() {
        let entry = Entry::new("x@h.test", MailboxType::Per);
        let names: Vec<String> = entry.attributes().into_iter().map(|(n, _)| n).collect();
        assert!(names.contains(&"sn".to_string()) && names.contains(&"cn".to_string()));
        assert_eq!("cab".parse(), Ok(MailboxType::Cab));
        assert!("XYZ".parse::<MailboxType>().is_err());
    }
}
