//! The ANS daily public extract "Extraction_Correspondance_MSSante": UTF-8, `|`-separated,
//! one header line, 31 columns (see ../shared/MSSANTE.md), about 535,000 rows. Read as a
//! stream, one row at a time (bounded memory); a malformed row is an error naming its line,
//! and reading goes on with the next.

use std::io::BufRead;

use crate::entry::{Entry, MailboxType};

/// Columns of a row.
pub const COLUMNS: usize = 31;

/// Longest line read, in octets: a real row is under 1 KiB.
pub const MAX_LINE: usize = 16 * 1024;

// Column positions this reader uses (0-based).
const TYPE: usize = 0;
const ADDRESS: usize = 1;
const IDNAT: usize = 4;
const STRUCTURE_ID: usize = 6;
const SERVICE: usize = 7;
const SURNAME: usize = 9;
const GIVEN_NAME: usize = 10;
const PROFESSION_CODE: usize = 13;
const PROFESSION: usize = 14;
const DEMATERIALISATION: usize = 17;
const COMPANY: usize = 18;

/// Why a row (or the file) cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct RowError {
    /// 1-based line in the file.
    pub line: u64,
    /// What is wrong.
    pub reason: String,
}

/// Reads the extract row by row.
pub struct ExtractReader<R> {
    input: R,
    line: u64,
    buffer: String,
    header_checked: bool,
}

impl<R: BufRead> ExtractReader<R> {
    /// A reader over `input` (the whole file, header first).
    pub fn new(input: R) -> ExtractReader<R> {
        ExtractReader {
            input,
            line: 0,
            buffer: String::new(),
            header_checked: false,
        }
    }

    /// The line last read (1-based).
    pub fn line(&self) -> u64 {
        self.line
    }

    /// Reads the next line into `buffer`. A line over [`MAX_LINE`] octets is skipped to its
    /// end without being held (a file without line ends cannot fill the memory) and is an
    /// error naming it; so is one that is not UTF-8.
    fn next_line(&mut self) -> Option<Result<(), RowError>> {
        self.buffer.clear();
        self.line += 1;
        let mut bytes = Vec::new();
        let mut too_long = false;
        loop {
            let available = match self.input.fill_buf() {
                Ok(available) => available,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Some(Err(RowError {
                        line: self.line,
                        reason: format!("read error: {e}"),
                    }));
                }
            };
            if available.is_empty() {
                if bytes.is_empty() && !too_long {
                    return None;
                }
                break;
            }
            let (taken, found_end) = match available.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (available.len(), false),
            };
            if !too_long {
                if bytes.len() + taken > MAX_LINE {
                    too_long = true;
                    bytes = Vec::new();
                } else {
                    bytes.extend_from_slice(&available[..taken]);
                }
            }
            self.input.consume(taken);
            if found_end {
                break;
            }
        }
        if too_long {
            return Some(Err(RowError {
                line: self.line,
                reason: format!("line longer than {MAX_LINE} octets"),
            }));
        }
        match String::from_utf8(bytes) {
            Ok(text) => {
                self.buffer = text;
                Some(Ok(()))
            }
            Err(_) => Some(Err(RowError {
                line: self.line,
                reason: "not UTF-8".into(),
            })),
        }
    }
}

impl<R: BufRead> Iterator for ExtractReader<R> {
    type Item = Result<Entry, RowError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Err(e) = self.next_line()? {
                // A line that is not UTF-8 was consumed as far as read_line went: go on.
                return Some(Err(e));
            }
            let text = self
                .buffer
                .trim_end_matches(['\r', '\n'])
                .trim_start_matches('\u{feff}');
            if !self.header_checked {
                self.header_checked = true;
                let columns = text.split('|').count();
                let looks_like_header = text
                    .split('|')
                    .next()
                    .is_some_and(|first| first.trim().eq_ignore_ascii_case("Type de BAL"));
                if looks_like_header && columns == COLUMNS {
                    continue;
                }
                return Some(Err(RowError {
                    line: self.line,
                    reason: format!(
                        "not the extract's header (expected {COLUMNS} columns starting with \
                         \"Type de BAL\", found {columns})"
                    ),
                }));
            }
            if text.trim().is_empty() {
                continue;
            }
            return Some(parse_row(text).map_err(|reason| RowError {
                line: self.line,
                reason,
            }));
        }
    }
}

/// One data row as an entry.
pub fn parse_row(text: &str) -> Result<Entry, String> {
    let fields: Vec<&str> = text.split('|').map(str::trim).collect();
    if fields.len() != COLUMNS {
        return Err(format!("{} columns, expected {COLUMNS}", fields.len()));
    }
    let kind: MailboxType = fields[TYPE].parse()?;
    let address = fields[ADDRESS];
    let valid_address = address
        .split_once('@')
        .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        && !address.contains(char::is_whitespace);
    if !valid_address {
        return Err(format!("{address:?} is not a mail address"));
    }
    let value = |i: usize| Some(fields[i].to_string()).filter(|v| !v.is_empty());
    let mut entry = Entry::new(address, kind);
    entry.owner_idnat = value(IDNAT);
    if kind == MailboxType::Per && entry.owner_idnat.is_none() {
        return Err("a PER mailbox without its owner's national identifier".into());
    }
    entry.structure_id = value(STRUCTURE_ID);
    entry.service = value(SERVICE);
    entry.surname = value(SURNAME);
    entry.given_name = value(GIVEN_NAME);
    entry.profession_code = value(PROFESSION_CODE);
    entry.dematerialisation = matches!(
        fields[DEMATERIALISATION].to_ascii_lowercase().as_str(),
        "o" | "oui" | "true" | "1"
    );
    entry.display_name = match kind {
        MailboxType::Per => {
            let name: Vec<&str> = [fields[GIVEN_NAME], fields[SURNAME]]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect();
            (!name.is_empty()).then(|| name.join(" "))
        }
        _ => value(SERVICE).or_else(|| value(COMPANY)),
    };
    entry.description = match kind {
        MailboxType::Per => value(PROFESSION),
        _ => value(COMPANY),
    };
    Ok(entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "Type de BAL|Adresse BAL|Type Identifiant PP|Identifiant PP|Identification nationale PP|Type identifiant structure|Identification Structure|Service de rattachement|Civilité d'exercice|Nom d'exercice|Prénom d'exercice|Catégorie profession|Libellé de catégorie profession|Code Profession|Libellé Profession|Code savoir-faire|Libellé savoir-faire|Dématérialisation|Raison Sociale structure BAL|Enseigne commerciale structure BAL|L2COMPLEMENTLOCALISATION structure BAL|L3COMPLEMENTDISTRIBUTION structure BAL|L4NUMEROVOIE structure BAL|L4COMPLEMENTNUMEROVOIE structure BAL|NL4TYPEVOIE structure BAL|L4LIBELLEVOIE structure BAL|L5LIEUDITMENTION structure BAL|L6LIGNEACHEMINEMENT structure BAL|Code postal structure BAL|Département structure BAL|Pays structure BAL";

    fn per(address: &str) -> String {
        format!(
            "PER|{address}|8|10001234567|810001234567|1|750712184|Cardiologie|DR|MARTIN|Alice|C|Civil|10|Médecin|SM04|Cardiologie|O|CHU EXEMPLE||||12||RUE|DE LA PAIX||75001 PARIS|75001|75|FR"
        )
    }

    #[test]
    fn rows_become_entries_and_bad_rows_name_their_line() {
        // Only the columns given, the others empty.
        let row = |set: &[(usize, &str)]| {
            let mut fields = vec![""; COLUMNS];
            for (i, v) in set {
                fields[*i] = v;
            }
            fields.join("|")
        };
        let org = row(&[
            (TYPE, "ORG"),
            (ADDRESS, "secretariat@chu.test"),
            (STRUCTURE_ID, "750712184"),
            (SERVICE, "Accueil"),
            (DEMATERIALISATION, "N"),
            (COMPANY, "CHU EXEMPLE"),
        ]);
        let file = [
            HEADER.to_string(),
            per("alice@chu.test"),
            row(&[
                (TYPE, "PER"),
                (ADDRESS, "pas-une-adresse"),
                (IDNAT, "810000000001"),
            ]),
            "ORG|x@chu.test|too few".into(),
            String::new(),
            org,
            row(&[(TYPE, "XYZ"), (ADDRESS, "y@chu.test")]),
        ]
        .join("\r\n");
        let results: Vec<_> = ExtractReader::new(file.as_bytes()).collect();
        assert_eq!(results.len(), 5);
        let alice = results[0].as_ref().expect("alice");
        assert_eq!(alice.owner_idnat.as_deref(), Some("810001234567"));
        assert_eq!(alice.display_name.as_deref(), Some("Alice MARTIN"));
        assert!(alice.dematerialisation && !alice.red_list);
        assert_eq!(results[1].as_ref().map_err(|e| e.line), Err(3));
        assert_eq!(results[2].as_ref().map_err(|e| e.line), Err(4));
        let secretariat = results[3].as_ref().expect("org");
        assert_eq!(secretariat.kind, MailboxType::Org);
        assert_eq!(secretariat.display_name.as_deref(), Some("Accueil"));
        let bad_type = results[4].as_ref().expect_err("unknown type");
        assert_eq!(bad_type.line, 7);
        assert!(bad_type.reason.contains("mailbox type"), "{bad_type}");
    }

    #[test]
    fn a_file_without_the_header_is_refused_at_line_one() {
        let first = ExtractReader::new(per("a@b.test").as_bytes()).next();
        assert!(matches!(first, Some(Err(RowError { line: 1, .. }))));
    }

    #[test]
    fn a_line_without_end_is_refused_by_its_number_and_reading_goes_on() {
        let file = format!(
            "{HEADER}\n{}\n{}\n{}",
            per("a@chu.test"),
            "x".repeat(MAX_LINE * 4),
            per("b@chu.test")
        );
        // A reader with a small buffer, as a file is read.
        let reader = std::io::BufReader::with_capacity(512, file.as_bytes());
        let results: Vec<_> = ExtractReader::new(reader).collect();
        assert_eq!(results.len(), 3);
        let long = results[1].as_ref().expect_err("too long");
        assert_eq!(long.line, 3);
        assert!(long.reason.contains("longer than"), "{long}");
        assert_eq!(
            results[2].as_ref().map(|e| e.address.as_str()),
            Ok("b@chu.test")
        );
    }

    #[test]
    fn fuzz_extract_rows() {
        let file = format!("{HEADER}\r\n{}\r\n{}\r\n", per("a@chu.test"), per("b@x.fr"));
        mssante_fuzzing::fuzz(
            "directory extract",
            &[file.as_bytes(), b"Type de BAL\n\xff\xfe\n"],
            |input| {
                let reader = std::io::BufReader::with_capacity(64, input);
                for (i, row) in ExtractReader::new(reader).enumerate() {
                    assert!(i <= input.len(), "more rows than octets");
                    let _ = row;
                }
            },
        );
    }
}
