//! Pro Santé Connect: SASL XOAUTH2 and OAUTHBEARER (RFC 7628) with the JWT access token PSC
//! issued. The token's RS256 signature is checked against the issuer's keys (a JWKS file,
//! re-read when it changes), then `iss`, `exp`, `nbf`, the audience (`aud` or `azp`) and the
//! minimum `acr`; the holder is the `SubjectNameID` claim (the idNat). Parsing and checking
//! are here; `Authenticator::bearer_login` (at the end) maps the holder to a mailbox.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rustls::RootCertStore;

use aws_lc_rs::signature::{RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;

use crate::config::Acr;

/// Seconds of clock difference tolerated on `exp` and `nbf`.
const LEEWAY: i64 = 60;

/// What `[auth.psc]` says.
#[derive(Debug, Clone)]
pub struct BearerPolicy {
    /// The expected `iss`.
    pub issuer: String,
    /// This server's client id: in `aud`, or as `azp`.
    pub audience: String,
    /// Where the issuer's keys (a JWKS document) come from.
    pub jwks: KeySource,
    /// The lowest `acr` accepted, if any.
    pub min_acr: Option<Acr>,
}

/// Where the issuer's signing keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// A file, re-read when it changes.
    File(PathBuf),
    /// An HTTPS URL (the realm's certs endpoint), fetched at first use and every
    /// [`KEYS_MAX_AGE`], sooner when a token names a key not seen yet.
    Url {
        /// The URL.
        url: String,
        /// The CAs its server certificate must chain to.
        roots: Arc<RootCertStore>,
    },
}

/// How long keys fetched from a URL are used before they are fetched again.
pub const KEYS_MAX_AGE: Duration = Duration::from_secs(600);
/// The shortest time between two fetches for a key not seen yet.
const KEYS_MIN_AGE: Duration = Duration::from_secs(30);

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not three base64url parts of JSON.
    #[error("malformed token")]
    Malformed,
    /// An algorithm other than RS256.
    #[error("unsupported signature algorithm {0}")]
    Algorithm(String),
    /// No key of the issuer has this `kid`.
    #[error("unknown signing key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("bad signature")]
    BadSignature,
    /// `exp` is past.
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future.
    #[error("token not yet valid")]
    NotYetValid,
    /// Another issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// Issued for another client.
    #[error("wrong audience")]
    WrongAudience,
    /// A required claim is absent.
    #[error("missing claim {0}")]
    MissingClaim(&'static str),
    /// Authenticated at a lower level than required (or at a level that is not one).
    #[error("authentication level {0} below the minimum")]
    WeakAcr(String),
    /// An ID token (or another kind), not an access token.
    #[error("not an access token")]
    NotAnAccessToken,
    /// The issuer's keys cannot be read.
    #[error("the issuer's keys cannot be read: {0}")]
    Keys(String),
}

/// What a valid token says of its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    /// `SubjectNameID`: the idNat.
    pub idnat: String,
}

/// RSA public keys (modulus, exponent; big-endian octets) by `kid`.
type Jwks = HashMap<String, (Vec<u8>, Vec<u8>)>;

/// Checks tokens against one issuer; its keys are cached and re-read when the file changes.
#[derive(Debug)]
pub struct BearerVerifier {
    policy: BearerPolicy,
    /// The keys by `kid`, and when they were read: the file's modification time, or the
    /// time of the fetch.
    keys: Mutex<Option<(SystemTime, Jwks)>>,
}

impl BearerVerifier {
    /// A verifier for `policy`.
    pub fn new(policy: BearerPolicy) -> BearerVerifier {
        BearerVerifier {
            policy,
            keys: Mutex::default(),
        }
    }

    /// Verifies `token` at Unix time `now`.
    pub fn verify(&self, token: &str, now: i64) -> Result<Holder, TokenError> {
        let mut parts = token.trim().split('.');
        let (Some(header), Some(payload), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let json = |part: &str| -> Result<Value, TokenError> {
            let bytes = URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| TokenError::Malformed)?;
            serde_json::from_slice(&bytes).map_err(|_| TokenError::Malformed)
        };
        let (header_json, claims) = (json(header)?, json(payload)?);
        let alg = header_json["alg"].as_str().unwrap_or_default();
        if alg != "RS256" {
            return Err(TokenError::Algorithm(alg.to_string()));
        }
        // An access token, not an ID token that a client got for itself: Keycloak (Pro Santé
        // Connect) writes `typ: Bearer` in access tokens and `typ: ID` in ID tokens; RFC 9068
        // access tokens say `at+jwt` in the header.
        let header_typ = header_json["typ"].as_str().unwrap_or_default();
        let access =
            claims["typ"].as_str() == Some("Bearer") || header_typ.eq_ignore_ascii_case("at+jwt");
        if !access {
            return Err(TokenError::NotAnAccessToken);
        }
        let kid = header_json["kid"].as_str().unwrap_or_default();
        let (n, e) = self.key(kid)?;
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .map_err(|_| TokenError::Malformed)?;
        let signed = format!("{header}.{payload}");
        RsaPublicKeyComponents { n: &n, e: &e }
            .verify(&RSA_PKCS1_2048_8192_SHA256, signed.as_bytes(), &signature)
            .map_err(|_| TokenError::BadSignature)?;
        self.check_claims(&claims, now)
    }

    fn check_claims(&self, claims: &Value, now: i64) -> Result<Holder, TokenError> {
        if claims["iss"].as_str() != Some(self.policy.issuer.as_str()) {
            return Err(TokenError::WrongIssuer);
        }
        let exp = claims["exp"]
            .as_i64()
            .ok_or(TokenError::MissingClaim("exp"))?;
        if exp + LEEWAY <= now {
            return Err(TokenError::Expired);
        }
        if claims["nbf"].as_i64().is_some_and(|nbf| nbf - LEEWAY > now) {
            return Err(TokenError::NotYetValid);
        }
        let audience = self.policy.audience.as_str();
        let in_aud = match &claims["aud"] {
            Value::String(one) => one == audience,
            Value::Array(many) => many.iter().any(|a| a.as_str() == Some(audience)),
            _ => false,
        };
        if !in_aud && claims["azp"].as_str() != Some(audience) {
            return Err(TokenError::WrongAudience);
        }
        if let Some(min) = self.policy.min_acr {
            let acr = claims["acr"]
                .as_str()
                .ok_or(TokenError::MissingClaim("acr"))?;
            // Read exactly: `noteidas3` or `eidas33` is no level at all.
            if Acr::parse(acr).is_none_or(|level| level < min) {
                return Err(TokenError::WeakAcr(acr.to_string()));
            }
        }
        let idnat = claims["SubjectNameID"]
            .as_str()
            .filter(|s| !s.is_empty())
            .ok_or(TokenError::MissingClaim("SubjectNameID"))?;
        Ok(Holder {
            idnat: idnat.to_string(),
        })
    }

    /// Fetches the keys from the URL when they are older than [`KEYS_MAX_AGE`] (or
    /// [`KEYS_MIN_AGE`] when `sooner`: a token named an unknown key). Files need nothing.
    pub async fn refresh_keys(&self, sooner: bool) -> Result<(), TokenError> {
        let KeySource::Url { url, roots } = &self.policy.jwks else {
            return Ok(());
        };
        let max_age = if sooner { KEYS_MIN_AGE } else { KEYS_MAX_AGE };
        let fresh = self
            .keys
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed().is_ok_and(|age| age < max_age));
        if fresh {
            return Ok(());
        }
        let body = crate::tls::fetch::get(url, Some(roots.clone()))
            .await
            .map_err(TokenError::Keys)?;
        let keys = parse_jwks(&body).map_err(|e| TokenError::Keys(format!("{url}: {e}")))?;
        *self.keys.lock().unwrap_or_else(|p| p.into_inner()) = Some((SystemTime::now(), keys));
        Ok(())
    }

    /// Whether the keys come from a URL (an unknown key may mean they were rotated).
    pub fn fetches_keys(&self) -> bool {
        matches!(self.policy.jwks, KeySource::Url { .. })
    }

    /// The RSA key (modulus, exponent) with this `kid`: from the JWKS file (re-read when it
    /// changed since it was last read), or from the keys last fetched.
    fn key(&self, kid: &str) -> Result<(Vec<u8>, Vec<u8>), TokenError> {
        let mut cache = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        if let KeySource::File(file) = &self.policy.jwks {
            let keys_error = |e: String| TokenError::Keys(format!("{}: {e}", file.display()));
            let modified = std::fs::metadata(file)
                .and_then(|m| m.modified())
                .map_err(|e| keys_error(e.to_string()))?;
            if cache.as_ref().is_none_or(|(at, _)| *at != modified) {
                let text = std::fs::read(file).map_err(|e| keys_error(e.to_string()))?;
                let keys = parse_jwks(&text).map_err(keys_error)?;
                *cache = Some((modified, keys));
            }
        }
        let (_, keys) = cache
            .as_ref()
            .ok_or_else(|| TokenError::Keys("the issuer's keys were not fetched yet".into()))?;
        keys.get(kid)
            .or_else(|| (keys.len() == 1).then(|| keys.values().next()).flatten())
            .cloned()
            .ok_or(TokenError::UnknownKey)
    }
}

/// The RSA keys of a JWKS document by `kid`.
fn parse_jwks(text: &[u8]) -> Result<Jwks, String> {
    let doc: Value = serde_json::from_slice(text).map_err(|e| format!("not JSON: {e}"))?;
    let keys = doc["keys"].as_array().ok_or("no \"keys\" array")?;
    let mut out = HashMap::new();
    // Only signature keys for RS256: a key published for encryption (`use: enc`) or another
    // algorithm never checks a token.
    let signing = |k: &&Value| k["kty"] == "RSA" && k["use"] == "sig" && k["alg"] == "RS256";
    for key in keys.iter().filter(signing) {
        let part = |name: &str| {
            key[name]
                .as_str()
                .and_then(|v| URL_SAFE_NO_PAD.decode(v).ok())
                .ok_or(format!("RSA key without a valid {name:?}"))
        };
        let kid = key["kid"].as_str().unwrap_or_default().to_string();
        out.insert(kid, (part("n")?, part("e")?));
    }
    if out.is_empty() {
        return Err("no RSA signature key (kty RSA, use sig, alg RS256)".into());
    }
    Ok(out)
}

/// The JSON an RFC 7628 server sends, as a last challenge, when a token fails, so clients
/// know to get a new one.
pub fn error_challenge() -> Vec<u8> {
    br#"{"status":"invalid_token","schemes":"bearer","scope":"openid"}"#.to_vec()
}

impl super::Authenticator {
    /// Logs the token's holder in; every outcome is audited.
    pub(super) async fn bearer_login(
        &self,
        authzid: Option<String>,
        token: &str,
        source: &str,
    ) -> Result<super::Login, super::AuthError> {
        use super::AuthError;
        let holder = match self.bearer.clone() {
            Some(verifier) => {
                let mut checked = verify_on_pool(&verifier, token).await;
                // A key not seen yet: the realm may have rotated its keys.
                if checked == Err(TokenError::UnknownKey) && verifier.fetches_keys() {
                    if let Err(e) = verifier.refresh_keys(true).await {
                        tracing::warn!(error = %e, "Pro Santé Connect keys not refreshed");
                    }
                    checked = verify_on_pool(&verifier, token).await;
                }
                checked.map_err(|e| AuthError::Refused(format!("Pro Santé Connect token: {e}")))
            }
            None => Err(AuthError::Refused(
                "Pro Santé Connect is not configured here".into(),
            )),
        };
        let result = match &holder {
            Ok(holder) => self.holder_mailbox(&holder.idnat, authzid, source).await,
            Err(e) => Err(e.clone()),
        };
        let idnat = holder.as_ref().map_or("none", |h| h.idnat.as_str());
        let actor = match &result {
            Ok(login) => login.account.address.clone(),
            Err(_) => idnat.to_string(),
        };
        let (outcome, detail) = match &result {
            Ok(_) => (
                crate::audit::Outcome::Ok,
                format!("Pro Santé Connect: idNat {idnat}"),
            ),
            Err(AuthError::Unavailable) => (
                crate::audit::Outcome::Error,
                "Pro Santé Connect: store unavailable".to_string(),
            ),
            Err(e) => (
                crate::audit::Outcome::Refused,
                format!("Pro Santé Connect: idNat {idnat}: {e}"),
            ),
        };
        self.trace("login", &actor, source, outcome, &detail)
            .await?;
        result
    }
}

/// Fetches the keys if due, then verifies `token` on the blocking pool (public-key work,
/// and perhaps a file read).
async fn verify_on_pool(verifier: &Arc<BearerVerifier>, token: &str) -> Result<Holder, TokenError> {
    if let Err(e) = verifier.refresh_keys(false).await {
        tracing::warn!(error = %e, "Pro Santé Connect keys not refreshed; the last ones stay");
    }
    let (verifier, token) = (verifier.clone(), token.to_string());
    crate::blocking::run(move || {
        Ok::<_, crate::blocking::TaskFailed>(
            verifier.verify(&token, chrono::Utc::now().timestamp()),
        )
    })
    .await
    .unwrap_or_else(|e| Err(TokenError::Keys(e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acr_levels_are_read_exactly() {
        assert!(Acr::parse("eidas2") > Acr::parse("eidas1"));
        for other in ["x", "eidas", "noteidas3", "eidas33", "EIDAS3", " eidas3"] {
            assert_eq!(Acr::parse(other), None, "{other}");
        }
    }

    #[test]
    fn a_jwks_needs_rsa_keys() {
        assert!(parse_jwks(br#"{"keys":[]}"#).is_err());
        assert!(parse_jwks(b"nope").is_err());
        let keys = parse_jwks(
            br#"{"keys":[{"kty":"RSA","kid":"k1","use":"sig","alg":"RS256","n":"AQAB","e":"AQAB"},
                {"kty":"RSA","kid":"k2","use":"enc","alg":"RSA-OAEP","n":"AQAB","e":"AQAB"},
                {"kty":"RSA","kid":"k3","use":"sig","alg":"PS256","n":"AQAB","e":"AQAB"}]}"#,
        )
        .expect("one key");
        assert_eq!(keys["k1"], (vec![1, 0, 1], vec![1, 0, 1]));
        assert_eq!(
            keys.len(),
            1,
            "encryption and other-algorithm keys are left out"
        );
        assert!(
            parse_jwks(br#"{"keys":[{"kty":"RSA","kid":"k1","n":"AQAB","e":"AQAB"}]}"#).is_err(),
            "a key that does not say it signs RS256"
        );
    }
}
