//! Logging in with a card: SASL EXTERNAL over the TLS client certificate the handshake
//! verified (chain to the IGC-Santé anchors, CRLs; see `tls`). The holder is the idNat of
//! the certificate's multi-valued RDN (`identity::person`), cross-checked with the UPN
//! `<idNat>@carte-cps.fr` when the card carries one; the mailbox is the one the holder owns,
//! or the one the authorization identity names among them. TEST cards are refused in
//! production. A card user is never asked for a password or a one-time code. An APP
//! mailbox's software certificate, which names no person, is bound to its mailbox by
//! fingerprint (`mssante user cert bind`).

use super::{AuthError, Authenticator, Login, normalize_address};
use crate::audit::Outcome;
use crate::identity;
use crate::store::Account;

impl Authenticator {
    /// Logs the certificate holder in; every outcome is audited.
    pub(super) async fn card_login(
        &self,
        authzid: Option<String>,
        leaf: &[u8],
        source: &str,
    ) -> Result<Login, AuthError> {
        let holder = identity::person(leaf).map(|p| p.idnat).ok();
        let result = self
            .check_card(authzid, leaf, holder.as_deref(), source)
            .await;
        let actor = match &result {
            Ok(login) => login.account.address.clone(),
            Err(_) => holder.clone().unwrap_or_else(|| "-".into()),
        };
        let idnat = holder.as_deref().unwrap_or("none");
        let (outcome, detail) = match &result {
            Ok(_) => (Outcome::Ok, format!("certificate: idNat {idnat}")),
            Err(AuthError::Unavailable) => (
                Outcome::Error,
                format!("certificate: idNat {idnat}: store unavailable"),
            ),
            Err(e) => (Outcome::Refused, format!("certificate: idNat {idnat}: {e}")),
        };
        self.trace("login", &actor, source, outcome, &detail)
            .await?;
        result
    }

    async fn check_card(
        &self,
        authzid: Option<String>,
        leaf: &[u8],
        holder: Option<&str>,
        source: &str,
    ) -> Result<Login, AuthError> {
        let refused = |why: &str| AuthError::Refused(why.to_string());
        if self.production && identity::is_test_certificate(leaf) {
            return Err(refused("a TEST certificate is refused in production"));
        }
        let fingerprint = super::device::hash_bytes(leaf);
        let bound = self
            .store
            .db()
            .bound_account(&fingerprint)
            .await
            .map_err(|_| AuthError::Unavailable)?;
        if let Some(address) = bound {
            return self.bound_mailbox(&address, authzid).await;
        }
        let idnat =
            holder.ok_or_else(|| refused("not a person certificate, and bound to no mailbox"))?;
        match identity::upn(leaf) {
            Ok(Some(upn)) if !upn.eq_ignore_ascii_case(&format!("{idnat}@carte-cps.fr")) => {
                return Err(refused("the card's UPN does not match its idNat"));
            }
            Ok(_) => {}
            Err(_) => return Err(refused("the card's UPN cannot be read")),
        }
        self.holder_mailbox(idnat, authzid, source).await
    }

    /// The mailbox a software certificate is bound to; an authorization identity must name it.
    async fn bound_mailbox(
        &self,
        address: &str,
        authzid: Option<String>,
    ) -> Result<Login, AuthError> {
        if let Some(wanted) = authzid.map(|a| normalize_address(&a))
            && wanted != address
        {
            return Err(AuthError::NotAuthorized(wanted));
        }
        let account = self
            .store
            .db()
            .find_account(address)
            .await
            .map_err(|_| AuthError::Unavailable)?
            .ok_or(AuthError::InvalidCredentials)?;
        if account.suspended {
            return Err(AuthError::Suspended);
        }
        Ok(Login::own(account))
    }

    /// The mailbox of the professional `idnat` logs in to: the one they own, the one
    /// `authzid` names among theirs, or the one it names among those delegated to one of
    /// theirs (card and Pro Santé Connect alike).
    pub(super) async fn holder_mailbox(
        &self,
        idnat: &str,
        authzid: Option<String>,
        source: &str,
    ) -> Result<Login, AuthError> {
        let refused = |why: &str| AuthError::Refused(why.to_string());
        let owned = self
            .store
            .db()
            .accounts_by_idnat(idnat)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "account lookup failed");
                AuthError::Unavailable
            })?;
        let account = match authzid.map(|a| normalize_address(&a)) {
            Some(wanted) => match owned.iter().find(|a| a.address == wanted) {
                Some(own) => own.clone(),
                None => return self.acting_for(&owned, &wanted, source).await,
            },
            None => {
                let mut owned = owned.into_iter();
                match (owned.next(), owned.next()) {
                    (Some(only), None) => only,
                    (None, _) => return Err(refused("no mailbox belongs to this idNat")),
                    (Some(_), Some(_)) => {
                        return Err(refused(
                            "several mailboxes belong to this idNat: name one as the \
                             authorization identity",
                        ));
                    }
                }
            }
        };
        if account.suspended {
            return Err(AuthError::Suspended);
        }
        Ok(Login::own(account))
    }
}

impl Authenticator {
    /// The login of whichever of `owned` has `wanted` delegated to it, acting for it.
    async fn acting_for(
        &self,
        owned: &[Account],
        wanted: &str,
        source: &str,
    ) -> Result<Login, AuthError> {
        for own in owned.iter().filter(|a| !a.suspended) {
            let rights = self.store.db().delegated_rights(own.id, wanted).await;
            if rights.map_err(|_| AuthError::Unavailable)?.is_some() {
                let delegated = self.delegated(own, wanted, source).await?;
                return Ok(Login {
                    delegated: Some(delegated),
                    ..Login::own(own.clone())
                });
            }
        }
        Err(AuthError::NotAuthorized(wanted.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use crate::audit::Audit;
    use crate::auth::{AuthError, Authenticator};
    use crate::config::AuthPolicy;
    use crate::pki::x509;
    use crate::store::{AccountKind, NewAccount, Store};

    /// A card certificate of idNat 810001234567, TEST product category or not.
    fn card(test: bool) -> Vec<u8> {
        let extra = if test {
            vec![
                x509::ans_extension(x509::OID_PRODUCT_CATEGORY, x509::CATEGORY_TEST_CARD)
                    .expect("extension"),
            ]
        } else {
            vec![]
        };
        x509::test_card(
            &[
                &[("C", "FR")],
                &[("CN", "810001234567"), ("SN", "MARTIN"), ("GN", "ALICE")],
            ],
            extra,
        )
    }

    #[tokio::test]
    async fn a_test_card_is_refused_in_production_only() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open(dir.path(), None).await.expect("store");
        store.db().add_domain("h.test").await.expect("domain");
        store
            .create_account(&NewAccount {
                address: "dr@h.test".into(),
                kind: AccountKind::Per,
                idnat: Some("810001234567".into()),
                display_name: None,
                password_hash: None,
            })
            .await
            .expect("account");
        let auth = |production| {
            Authenticator::new(store.clone(), Audit::new(store.clone()))
                .with_policy(&AuthPolicy::default(), production)
        };
        let source = "imap 192.0.2.1:1";
        let dev = auth(false).card_login(None, &card(true), source).await;
        assert_eq!(
            dev.map(|l| l.account.address).ok().as_deref(),
            Some("dr@h.test")
        );
        let production = auth(true);
        assert!(matches!(
            production.card_login(None, &card(true), source).await,
            Err(AuthError::Refused(why)) if why.contains("TEST certificate")
        ));
        assert!(
            production
                .card_login(None, &card(false), source)
                .await
                .is_ok()
        );
    }
}
