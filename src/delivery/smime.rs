//! S/MIME on the way into a local mailbox: an encrypted message is decrypted with the
//! mailbox's escrowed keys (current or past), a signed one is verified, and the reader gets
//! the clear message with the verdict in a header:
//!
//! ```text
//! X-MSSante-Signature: valid; signer=810001234567; name="ALICE MARTIN"
//! X-MSSante-Signature: invalid; reason="certificate revoked"
//! X-MSSante-Encryption: decrypted
//! X-MSSante-Encryption: undecryptable; reason="..."
//! ```
//!
//! Those headers are the server's word: any the sender wrote are removed first. When the
//! message is decrypted, the original as received is kept beside it (see `LocalCopy`), and
//! the use of the escrowed key is audited (`key.decrypt`) in the same commit as the copy.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use mssante_smime::{KeyPair, SmimeError, Trust, Verdict, mime};
use openssl::pkey::PKey;
use openssl::x509::X509;

use super::verdicts::{header_without_verdicts, without_verdicts};
use crate::audit;
use crate::store::{Account, AuditRecord, KeyState, KeyUse, LocalCopy, Store};
use crate::tls::SmimeTrust;

/// The encryption keys of one mailbox, opened, with the (id, state) list they were opened
/// from: parsing a private key costs more than the decryption itself, so they are kept in
/// memory until the mailbox's keys change.
struct OpenedKeys {
    version: Vec<(i64, KeyState)>,
    pairs: Arc<Vec<KeyPair>>,
}

/// How a decryption that no key of the mailbox opens reads, to retry with fresh keys.
const NO_MATCHING_KEY: &str = "the message is not encrypted for any key of this mailbox";

/// Content headers of the outer message that the decrypted entity replaces.
const CONTENT_HEADERS: [&str; 4] = [
    "content-type",
    "content-transfer-encoding",
    "content-disposition",
    "content-description",
];

/// What kind of S/MIME a message is, from its top-level Content-Type.
enum Kind {
    Enveloped,
    /// multipart/signed: the signature travels beside the content.
    Signed,
    /// `smime-type=signed-data`: the content is inside the signature.
    Opaque,
    Plain,
}

fn kind(header: &[u8]) -> Kind {
    let content_type = mime::field(header, "content-type").unwrap_or_default();
    match mime::media_type(&content_type).as_str() {
        "application/pkcs7-mime" | "application/x-pkcs7-mime" => {
            let smime_type = mime::parameter(&content_type, "smime-type")
                .unwrap_or_default()
                .to_ascii_lowercase();
            if smime_type.is_empty() || smime_type.contains("enveloped") {
                Kind::Enveloped
            } else if smime_type == "signed-data" {
                Kind::Opaque
            } else {
                Kind::Plain
            }
        }
        "multipart/signed" => Kind::Signed,
        _ => Kind::Plain,
    }
}

/// The header section without the fields named in `drop`.
fn without(header: &[u8], drop: &[&str]) -> Vec<u8> {
    mime::fields(header, drop, false)
}

/// A header value's quoted-string form.
fn quoted(text: &str) -> String {
    let clean: String = text
        .chars()
        .filter(|c| !c.is_control())
        .map(|c| if c == '"' { '\'' } else { c })
        .collect();
    format!("\"{clean}\"")
}

/// The reader's copy of a signed message: the verdict first, then the message, an opaque
/// signature unwrapped (the entity it carries replaces it) and a multipart/signed as it is.
fn annotate_signed(trust: Option<&Trust>, message: &[u8]) -> Vec<u8> {
    let (header, _) = mime::split_entity(message);
    let mut out = verdict_header(&verify_with(trust, message)).into_bytes();
    let opaque = match kind(header) {
        Kind::Opaque => mssante_smime::opaque_content(message),
        Kind::Signed | Kind::Enveloped | Kind::Plain => None,
    };
    if let Some(content) = opaque {
        out.extend(without(&header_without_verdicts(header), &CONTENT_HEADERS));
        // The unwrapped entity is the sender's: any verdict written in it goes.
        out.extend_from_slice(&without_verdicts(&content));
        return out;
    }
    out.extend_from_slice(&without_verdicts(message));
    out
}

/// The verdict on a signed message; without anchors, none can be valid.
fn verify_with(trust: Option<&Trust>, message: &[u8]) -> Verdict {
    match trust {
        Some(trust) => mssante_smime::verify(message, trust),
        None => Verdict::Invalid(mssante_smime::Failure::Other(
            "no trust anchors configured".into(),
        )),
    }
}

fn verdict_header(verdict: &Verdict) -> String {
    match verdict {
        Verdict::Valid(signer) => format!(
            "X-MSSante-Signature: valid; signer={}; name={}\r\n",
            signer.idnat.as_deref().unwrap_or("unknown"),
            quoted(&signer.name)
        ),
        Verdict::Invalid(failure) => format!(
            "X-MSSante-Signature: invalid; reason={}\r\n",
            quoted(&failure.to_string())
        ),
    }
}

/// The S/MIME side of delivery: trust for signatures, and the size limit for decryption.
#[derive(Clone)]
pub struct SmimeInbound {
    store: Store,
    trust: Option<Arc<SmimeTrust>>,
    max_size: usize,
    opened: Arc<Mutex<HashMap<i64, OpenedKeys>>>,
}

impl SmimeInbound {
    /// Verifies against `trust` (None: signatures are reported unverifiable).
    pub fn new(store: Store, trust: Option<Arc<SmimeTrust>>, max_size: usize) -> SmimeInbound {
        SmimeInbound {
            store,
            trust,
            max_size,
            opened: Arc::default(),
        }
    }

    /// The trust in force now (the CRLs are refreshed while the server runs).
    fn trust(&self) -> Option<Arc<Trust>> {
        self.trust.as_ref().map(|t| t.current())
    }

    /// The copy each of `local` receives. A plain message is stored as received (forged
    /// verdict headers removed); a signed one is verified once and annotated for everyone
    /// (an opaque one unwrapped, its original kept); an encrypted one is decrypted with each
    /// mailbox's own keys, its original kept.
    pub async fn open(&self, local: &[Account], raw: &[u8]) -> Vec<LocalCopy> {
        let (header, _) = mime::split_entity(raw);
        let same_for_all = |opened: Option<Vec<u8>>, keep_original: bool| {
            local
                .iter()
                .map(|account| LocalCopy {
                    account: account.clone(),
                    opened: opened.clone(),
                    keep_original,
                    key_use: None,
                })
                .collect()
        };
        match kind(header) {
            Kind::Plain => {
                let clean = match without_verdicts(raw) {
                    Cow::Owned(clean) => Some(clean),
                    Cow::Borrowed(_) => None,
                };
                same_for_all(clean, false)
            }
            Kind::Signed | Kind::Opaque if local.is_empty() => Vec::new(),
            kind @ (Kind::Signed | Kind::Opaque) => {
                let message = raw.to_vec();
                let trust = self.trust();
                // Public-key work, however small the message: on the crypto pool.
                let annotated = crate::blocking::crypto(move || {
                    Ok::<_, crate::blocking::TaskFailed>(annotate_signed(
                        trust.as_deref(),
                        &message,
                    ))
                })
                .await;
                match annotated {
                    Ok(out) => same_for_all(Some(out), matches!(kind, Kind::Opaque)),
                    Err(e) => {
                        let failure = mssante_smime::Failure::Other(e.to_string());
                        let mut out = verdict_header(&Verdict::Invalid(failure)).into_bytes();
                        out.extend_from_slice(&without_verdicts(raw));
                        same_for_all(Some(out), false)
                    }
                }
            }
            Kind::Enveloped => {
                let mut copies = Vec::with_capacity(local.len());
                for account in local {
                    let (opened, key_use) = self.decrypt(account, header, raw).await;
                    copies.push(LocalCopy {
                        account: account.clone(),
                        opened: Some(opened),
                        keep_original: true,
                        key_use,
                    });
                }
                copies
            }
        }
    }

    /// The message `account` reads, and the audit record of the key that opened it (None
    /// when none could: the message is flagged instead).
    async fn decrypt(
        &self,
        account: &Account,
        header: &[u8],
        raw: &[u8],
    ) -> (Vec<u8>, Option<AuditRecord>) {
        let outer = header_without_verdicts(header);
        // The keys in memory first; the store's when there are none yet, or when none opens
        // the message (a key installed since).
        let remembered = self.remembered(account);
        let from_memory = remembered.is_some();
        let mut opened = match remembered {
            Some(keys) => self.open_envelope(keys, &outer, raw).await,
            None => Err(SmimeError::NoMatchingKey.to_string()),
        };
        if !from_memory || opened.as_ref().is_err_and(|e| *e == NO_MATCHING_KEY) {
            opened = match self.keys(account).await {
                Ok(keys) => self.open_envelope(keys, &outer, raw).await,
                Err(reason) => Err(reason),
            };
        }
        match opened {
            Ok((opened, key)) => {
                let message_id = mime::field(header, "message-id").unwrap_or_default();
                let detail = format!(
                    "escrowed encryption key ({key}) opened message {}",
                    message_id.trim()
                );
                let record = audit::entry(
                    "key.decrypt",
                    &account.address,
                    "delivery",
                    audit::Outcome::Ok,
                    &detail,
                );
                (opened, Some(record))
            }
            Err(reason) => (
                self.undecryptable(account, &outer, raw, &reason).await,
                None,
            ),
        }
    }

    /// Decrypts `raw` with `keys` and, when the content is signed, verifies it: one task on
    /// the blocking pool. Returns the message the reader gets and the key that opened it
    /// (its certificate's serial number), or why it cannot be opened.
    async fn open_envelope(
        &self,
        keys: Arc<Vec<KeyPair>>,
        outer: &[u8],
        raw: &[u8],
    ) -> Result<(Vec<u8>, String), String> {
        let (outer, raw) = (outer.to_vec(), raw.to_vec());
        let (max, trust) = (self.max_size, self.trust());
        let open = move || -> Result<(Vec<u8>, String), String> {
            let decrypted = mssante_smime::decrypt(&raw, &keys, max).map_err(|e| e.to_string())?;
            let key = keys
                .get(decrypted.key)
                .and_then(|pair| crate::pki::serial_hex(&pair.cert).ok())
                .map_or_else(
                    || "unknown".into(),
                    |hex| format!("certificate serial {hex}"),
                );
            let inner = decrypted.entity;
            // The outer headers (From, To, Subject...) then the decrypted entity, without
            // any verdict the sender wrote inside.
            let mut opened = without(&outer, &CONTENT_HEADERS);
            opened.extend_from_slice(&inner);
            let opened = without_verdicts(&opened).into_owned();
            let mut out = b"X-MSSante-Encryption: decrypted\r\n".to_vec();
            match kind(mime::split_entity(&inner).0) {
                // The From: that counts is the outer one, next to the signed entity.
                Kind::Signed | Kind::Opaque => {
                    out.extend(annotate_signed(trust.as_deref(), &opened))
                }
                Kind::Enveloped | Kind::Plain => out.extend(opened),
            }
            Ok((out, key))
        };
        crate::blocking::crypto(move || Ok::<_, crate::blocking::TaskFailed>(open()))
            .await
            .map_err(|e| e.to_string())?
    }

    /// The opened keys in memory for `account`, whatever the store holds now.
    fn remembered(&self, account: &Account) -> Option<Arc<Vec<KeyPair>>> {
        self.opened
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&account.id)
            .map(|o| o.pairs.clone())
    }

    /// The mailbox's encryption keys with certificates, current first, opened (or taken from
    /// memory when they have not changed).
    async fn keys(&self, account: &Account) -> Result<Arc<Vec<KeyPair>>, String> {
        let stored = self.store.keys(account).await.map_err(|e| e.to_string())?;
        let usable: Vec<_> = stored
            .iter()
            .filter(|k| k.usage == KeyUse::Encryption && k.certificate.is_some())
            .collect();
        let version: Vec<(i64, KeyState)> = usable.iter().map(|k| (k.id, k.state)).collect();
        let opened = |map: &mut HashMap<i64, OpenedKeys>| {
            map.get(&account.id)
                .filter(|o| o.version == version)
                .map(|o| o.pairs.clone())
        };
        if let Some(pairs) = opened(&mut self.opened.lock().unwrap_or_else(|p| p.into_inner())) {
            return Ok(pairs);
        }
        let mut sealed = Vec::new();
        for key in usable {
            let pkcs8 = self
                .store
                .open_key(account, key)
                .await
                .map_err(|e| e.to_string())?;
            sealed.push((pkcs8, key.certificate.clone().unwrap_or_default()));
        }
        // Parsing a private key is the costly part (OpenSSL 3 decoders): off the executor.
        let pairs = crate::blocking::crypto(move || {
            Ok::<_, crate::blocking::TaskFailed>(
                sealed
                    .iter()
                    .filter_map(|(pkcs8, cert)| {
                        Some(KeyPair {
                            key: PKey::private_key_from_pkcs8(pkcs8).ok()?,
                            cert: X509::from_der(cert).ok()?,
                        })
                    })
                    .collect::<Vec<_>>(),
            )
        })
        .await
        .map_err(|e| e.to_string())?;
        if pairs.is_empty() {
            return Err("the mailbox holds no encryption key".into());
        }
        let pairs = Arc::new(pairs);
        self.opened
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(
                account.id,
                OpenedKeys {
                    version,
                    pairs: pairs.clone(),
                },
            );
        Ok(pairs)
    }
}

impl SmimeInbound {
    /// The message as received, flagged: the reader sees it could not be opened, and why;
    /// the administrator finds it in the log and the audit trail.
    async fn undecryptable(
        &self,
        account: &Account,
        outer: &[u8],
        raw: &[u8],
        reason: &str,
    ) -> Vec<u8> {
        tracing::warn!(mailbox = %account.address, %reason, "S/MIME message delivered undecrypted");
        let trail = audit::Audit::new(self.store.clone());
        if let Err(e) = trail
            .record(
                "smime.undecryptable",
                &account.address,
                "delivery",
                audit::Outcome::Error,
                reason,
            )
            .await
        {
            tracing::error!(error = %e, "audit write failed");
        }
        flagged(outer, raw, reason)
    }
}

/// The message as received, with the reason it could not be decrypted.
fn flagged(outer: &[u8], raw: &[u8], reason: &str) -> Vec<u8> {
    let (_, body) = mime::split_entity(raw);
    let mut out = format!(
        "X-MSSante-Encryption: undecryptable; reason={}\r\n",
        quoted(reason)
    )
    .into_bytes();
    out.extend_from_slice(outer);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}
