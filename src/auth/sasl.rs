//! SASL, without I/O: the mechanisms' exchanges as a small state machine that SMTP, IMAP and
//! POP3 drive with their own framing (`334`, `+`, base64 lines).
//!
//! PLAIN (RFC 4616), LOGIN, and EXTERNAL (RFC 4422 appendix A: the TLS client certificate,
//! a CPS card, with an optional authorization identity) are here; XOAUTH2 and OAUTHBEARER
//! plug into the same [`Mechanism`] and [`Credentials`].

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

/// A SASL mechanism this server knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// RFC 4616: `authzid NUL authcid NUL password`.
    Plain,
    /// The de-facto LOGIN: username, then password, each prompted.
    Login,
    /// RFC 4422 appendix A: the identity the TLS client certificate proved.
    External,
    /// Google's XOAUTH2: `user=...^Aauth=Bearer TOKEN^A^A`.
    XOAuth2,
    /// RFC 7628: a GS2 header, then `auth=Bearer TOKEN` among `^A`-separated pairs.
    OAuthBearer,
}

impl Mechanism {
    /// The mechanisms offered, in the order advertised: EXTERNAL first when the client
    /// presented a certificate the handshake verified (a card user is never asked for a
    /// password).
    /// OAUTHBEARER and XOAUTH2 when Pro Santé Connect is configured.
    pub fn offered(with_certificate: bool, with_bearer: bool) -> Vec<Mechanism> {
        let mut all = vec![Mechanism::Plain, Mechanism::Login];
        if with_bearer {
            all.splice(0..0, [Mechanism::OAuthBearer, Mechanism::XOAuth2]);
        }
        if with_certificate {
            all.insert(0, Mechanism::External);
        }
        all
    }

    /// Parses a mechanism name (case-insensitive).
    pub fn parse(name: &str) -> Option<Mechanism> {
        match name.to_ascii_uppercase().as_str() {
            "PLAIN" => Some(Mechanism::Plain),
            "LOGIN" => Some(Mechanism::Login),
            "EXTERNAL" => Some(Mechanism::External),
            "XOAUTH2" => Some(Mechanism::XOAuth2),
            "OAUTHBEARER" => Some(Mechanism::OAuthBearer),
            _ => None,
        }
    }

    /// The registered name.
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Login => "LOGIN",
            Mechanism::External => "EXTERNAL",
            Mechanism::XOAuth2 => "XOAUTH2",
            Mechanism::OAuthBearer => "OAUTHBEARER",
        }
    }
}

/// What the client proved it knows, to be checked by the authenticator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A username and password; `authzid` is the identity to act as, if different.
    Password {
        /// Requested authorization identity (empty: the same as `username`).
        authzid: Option<String>,
        /// Authentication identity.
        username: String,
        /// The password.
        password: String,
    },
    /// The TLS client certificate (a CPS card, an APP's software certificate).
    Certificate {
        /// The mailbox to act as, if the client named one.
        authzid: Option<String>,
        /// The leaf certificate (DER) the handshake verified.
        leaf: Vec<u8>,
    },
    /// An OAuth 2.0 bearer token (a Pro Santé Connect access token).
    Bearer {
        /// The mailbox to act as, if the client named one.
        authzid: Option<String>,
        /// The token.
        token: String,
    },
}

/// What to do next in an exchange.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send this challenge (raw bytes; the protocol base64-encodes it) and wait for a reply.
    Challenge(Vec<u8>),
    /// The exchange is complete.
    Done(Credentials),
}

/// Why an exchange failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaslError {
    /// The client sent `*`.
    #[error("authentication cancelled")]
    Cancelled,
    /// Not base64, not UTF-8, or not the mechanism's format.
    #[error("malformed SASL message")]
    Malformed,
    /// EXTERNAL without a client certificate.
    #[error("EXTERNAL needs a TLS client certificate (a CPS card)")]
    NoCertificate,
}

/// One authentication exchange in progress.
#[derive(Debug)]
pub struct Exchange {
    state: State,
}

#[derive(Debug)]
enum State {
    PlainWaiting,
    LoginUser,
    LoginPassword(String),
    External,
    XOAuth2,
    OAuthBearer,
}

/// The token of an `auth=` value: `Bearer TOKEN` (scheme case-insensitive).
fn bearer_token(value: &str) -> Option<String> {
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty())
        .then(|| token.trim().to_string())
}

/// Decodes one client response line: base64, `=` for empty, `*` to cancel.
pub fn decode_response(line: &[u8]) -> Result<Vec<u8>, SaslError> {
    let line = line.trim_ascii();
    match line {
        b"*" => Err(SaslError::Cancelled),
        b"=" => Ok(Vec::new()),
        _ => STANDARD.decode(line).map_err(|_| SaslError::Malformed),
    }
}

/// Encodes a server challenge.
pub fn encode_challenge(challenge: &[u8]) -> String {
    STANDARD.encode(challenge)
}

impl Exchange {
    /// Starts an exchange, with the initial response if the client sent one (already decoded).
    pub fn start(
        mechanism: Mechanism,
        initial: Option<Vec<u8>>,
    ) -> Result<(Exchange, Step), SaslError> {
        let mut exchange = Exchange {
            state: match mechanism {
                Mechanism::Plain => State::PlainWaiting,
                Mechanism::Login => State::LoginUser,
                Mechanism::External => State::External,
                Mechanism::XOAuth2 => State::XOAuth2,
                Mechanism::OAuthBearer => State::OAuthBearer,
            },
        };
        let step = match (mechanism, initial) {
            (_, Some(data)) => exchange.respond(&data)?,
            (Mechanism::Plain, None) => Step::Challenge(Vec::new()),
            (Mechanism::Login, None) => Step::Challenge(b"Username:".to_vec()),
            (Mechanism::External | Mechanism::XOAuth2 | Mechanism::OAuthBearer, None) => {
                Step::Challenge(Vec::new())
            }
        };
        Ok((exchange, step))
    }

    /// Feeds the client's (decoded) response.
    pub fn respond(&mut self, data: &[u8]) -> Result<Step, SaslError> {
        let text = std::str::from_utf8(data).map_err(|_| SaslError::Malformed)?;
        match std::mem::replace(&mut self.state, State::PlainWaiting) {
            State::PlainWaiting => {
                let mut parts = text.split('\0');
                let (Some(authzid), Some(username), Some(password), None) =
                    (parts.next(), parts.next(), parts.next(), parts.next())
                else {
                    return Err(SaslError::Malformed);
                };
                if username.is_empty() {
                    return Err(SaslError::Malformed);
                }
                Ok(Step::Done(Credentials::Password {
                    authzid: (!authzid.is_empty()).then(|| authzid.to_string()),
                    username: username.to_string(),
                    password: password.to_string(),
                }))
            }
            State::LoginUser => {
                self.state = State::LoginPassword(text.to_string());
                Ok(Step::Challenge(b"Password:".to_vec()))
            }
            State::LoginPassword(username) => Ok(Step::Done(Credentials::Password {
                authzid: None,
                username,
                password: text.to_string(),
            })),
            State::XOAuth2 => {
                let mut user = None;
                let mut token = None;
                for pair in text.split('\u{1}') {
                    if let Some(u) = pair.strip_prefix("user=") {
                        user = Some(u.to_string());
                    } else if let Some(t) = pair.strip_prefix("auth=") {
                        token = bearer_token(t);
                    }
                }
                let token = token.ok_or(SaslError::Malformed)?;
                Ok(Step::Done(Credentials::Bearer {
                    authzid: user.filter(|u| !u.is_empty()),
                    token,
                }))
            }
            State::OAuthBearer => {
                // gs2-header: "n," (no channel binding), "a=authzid," or ",", then ^A pairs.
                let (gs2, pairs) = text.split_once('\u{1}').ok_or(SaslError::Malformed)?;
                let mut gs2 = gs2.splitn(3, ',');
                let (Some(flag), Some(authzid)) = (gs2.next(), gs2.next()) else {
                    return Err(SaslError::Malformed);
                };
                if flag != "n" && flag != "y" {
                    return Err(SaslError::Malformed); // channel binding is not offered
                }
                let authzid = match authzid.strip_prefix("a=") {
                    Some(a) => Some(a.replace("=2C", ",").replace("=3D", "=")),
                    None if authzid.is_empty() => None,
                    None => return Err(SaslError::Malformed),
                };
                let token = pairs
                    .split('\u{1}')
                    .find_map(|p| p.strip_prefix("auth=").and_then(bearer_token))
                    .ok_or(SaslError::Malformed)?;
                Ok(Step::Done(Credentials::Bearer { authzid, token }))
            }
            // The certificate itself comes from the connection (see `converse`).
            State::External => Ok(Step::Done(Credentials::Certificate {
                authzid: (!text.is_empty()).then(|| text.to_string()),
                leaf: Vec::new(),
            })),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn password(step: Step) -> (Option<String>, String, String) {
        match step {
            Step::Done(Credentials::Password {
                authzid,
                username,
                password,
            }) => (authzid, username, password),
            other => panic!("not done: {other:?}"),
        }
    }

    #[test]
    fn plain_with_initial_response() {
        let (_, step) =
            Exchange::start(Mechanism::Plain, Some(b"\0alice@x.fr\0secret".to_vec())).unwrap();
        assert_eq!(password(step), (None, "alice@x.fr".into(), "secret".into()));
    }

    #[test]
    fn plain_with_authzid_after_empty_challenge() {
        let (mut ex, step) = Exchange::start(Mechanism::Plain, None).unwrap();
        assert_eq!(step, Step::Challenge(vec![]));
        let step = ex.respond(b"boss@x.fr\0alice@x.fr\0pw").unwrap();
        assert_eq!(password(step).0.as_deref(), Some("boss@x.fr"));
    }

    #[test]
    fn external_takes_an_optional_authorization_identity() {
        let (mut ex, step) = Exchange::start(Mechanism::External, None).expect("start");
        assert_eq!(step, Step::Challenge(vec![]));
        assert_eq!(
            ex.respond(b"").expect("respond"),
            Step::Done(Credentials::Certificate {
                authzid: None,
                leaf: vec![]
            })
        );
        let (_, step) = Exchange::start(Mechanism::External, Some(b"secretariat@x.fr".to_vec()))
            .expect("start");
        assert_eq!(
            step,
            Step::Done(Credentials::Certificate {
                authzid: Some("secretariat@x.fr".into()),
                leaf: vec![]
            })
        );
        assert_eq!(Mechanism::offered(true, false)[0], Mechanism::External);
        assert!(!Mechanism::offered(false, false).contains(&Mechanism::External));
    }

    #[test]
    fn bearer_tokens_in_both_formats() {
        let (_, step) = Exchange::start(
            Mechanism::XOAuth2,
            Some(b"user=dr@x.fr\x01auth=Bearer abc.def.ghi\x01\x01".to_vec()),
        )
        .expect("start");
        assert_eq!(
            step,
            Step::Done(Credentials::Bearer {
                authzid: Some("dr@x.fr".into()),
                token: "abc.def.ghi".into()
            })
        );
        let (_, step) = Exchange::start(
            Mechanism::OAuthBearer,
            Some(b"n,a=dr@x.fr,\x01host=h\x01port=993\x01auth=Bearer t.o.k\x01\x01".to_vec()),
        )
        .expect("start");
        assert_eq!(
            step,
            Step::Done(Credentials::Bearer {
                authzid: Some("dr@x.fr".into()),
                token: "t.o.k".into()
            })
        );
        assert!(
            Exchange::start(
                Mechanism::OAuthBearer,
                Some(b"p=tls-unique,,\x01auth=Bearer x\x01\x01".to_vec())
            )
            .is_err()
        );
        assert!(Exchange::start(Mechanism::XOAuth2, Some(b"user=a\x01\x01".to_vec())).is_err());
        assert_eq!(Mechanism::offered(false, true)[0], Mechanism::OAuthBearer);
    }

    #[test]
    fn login_prompts_twice() {
        let (mut ex, step) = Exchange::start(Mechanism::Login, None).unwrap();
        assert_eq!(step, Step::Challenge(b"Username:".to_vec()));
        assert_eq!(
            ex.respond(b"bob").unwrap(),
            Step::Challenge(b"Password:".to_vec())
        );
        assert_eq!(password(ex.respond(b"pw").unwrap()).1, "bob");
    }

    #[test]
    fn malformed_and_cancelled() {
        assert_eq!(
            Exchange::start(Mechanism::Plain, Some(b"no-nuls".to_vec())).unwrap_err(),
            SaslError::Malformed
        );
        assert_eq!(
            Exchange::start(Mechanism::Plain, Some(b"\0\0pw".to_vec())).unwrap_err(),
            SaslError::Malformed
        );
        assert_eq!(decode_response(b"*\r\n"), Err(SaslError::Cancelled));
        assert_eq!(decode_response(b"=\r\n"), Ok(vec![]));
        assert_eq!(decode_response(b"!!!\r\n"), Err(SaslError::Malformed));
        assert!(Mechanism::parse("cram-md5").is_none());
        assert_eq!(Mechanism::parse("plain"), Some(Mechanism::Plain));
    }

    #[test]
    fn fuzz_sasl_responses() {
        mssante_fuzzing::fuzz(
            "sasl",
            &[
                b"AGpAZQBwYXNz",
                b"*",
                b"=",
                b"\0jean@x.fr\0pass word",
                b"user=jean@x.fr\x01auth=Bearer eyJ.eyJ.sig\x01\x01",
                b"n,a=jean=2Cx@x.fr,\x01host=x\x01port=993\x01auth=Bearer t\x01\x01",
            ],
            |input| {
                let _ = decode_response(input);
                for mechanism in [
                    Mechanism::Plain,
                    Mechanism::Login,
                    Mechanism::External,
                    Mechanism::XOAuth2,
                    Mechanism::OAuthBearer,
                ] {
                    if let Ok((mut exchange, Step::Challenge(_))) = Exchange::start(mechanism, None)
                    {
                        let _ = exchange.respond(input);
                    }
                    let _ = Exchange::start(mechanism, Some(input.to_vec()));
                }
            },
        );
    }
}
