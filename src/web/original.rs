//! `GET /messages/UID/original`: the professional's own copy of the original, as received,
//! of a message the server decrypted for them (the legal proof of what was sent; the
//! administrator's way is `mssante message original`). HTTP Basic with the mailbox's
//! credentials, over the HTTPS listener only; every read lands in the audit trail. The
//! portal will link here.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use super::Response;
use crate::audit::Outcome;
use crate::auth::Credentials;
use crate::server::ServerContext;

/// The route's path prefix and suffix around the UID (of the INBOX).
const PREFIX: &str = "/messages/";
const SUFFIX: &str = "/original";

/// The UID in `path` when it is this route's.
pub fn uid_of(path: &str) -> Option<Option<u32>> {
    let uid = path.strip_prefix(PREFIX)?.strip_suffix(SUFFIX)?;
    Some(uid.parse().ok().filter(|uid| *uid > 0))
}

/// Serves the original of INBOX message `uid` to whoever `authorization` (the header's
/// value) proves to own the mailbox.
pub async fn serve(
    ctx: &ServerContext,
    authorization: Option<&str>,
    uid: Option<u32>,
    source: &str,
) -> Response {
    let Some((username, password)) = authorization.and_then(basic) else {
        return Response::unauthorized();
    };
    let credentials = Credentials::Password {
        authzid: None,
        username,
        password,
    };
    let Ok(login) = ctx.auth.authenticate(credentials, source).await else {
        return Response::unauthorized();
    };
    let account = login.account;
    let Some(uid) = uid else {
        return Response::text("400 Bad Request", "the UID is a positive number\n");
    };
    let db = ctx.store.db();
    let original = match db.mailbox(account.id, "INBOX", false).await {
        Ok(Some(inbox)) => ctx.store.read_original(&account, inbox.id, uid).await,
        Ok(None) => Ok(None),
        Err(e) => Err(e),
    };
    let original = match original {
        Ok(Some(original)) => original,
        Ok(None) => {
            return Response::text(
                "404 Not Found",
                "no original for this message: it was stored as received\n",
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "reading an original failed");
            return Response::text("503 Service Unavailable", "store unavailable\n");
        }
    };
    // What cannot be traced is not handed out.
    if let Err(e) = ctx
        .audit
        .record(
            "message.original",
            &account.address,
            source,
            Outcome::Ok,
            &format!("{} UID {uid}, read by its owner", account.address),
        )
        .await
    {
        tracing::error!(error = %e, "audit write failed; original not served");
        return Response::text("503 Service Unavailable", "audit trail unavailable\n");
    }
    Response {
        status: "200 OK",
        headers: format!(
            "Content-Type: message/rfc822\r\n\
             Content-Disposition: attachment; filename=\"original-{uid}.eml\"\r\n"
        ),
        body: original.to_vec(),
    }
}

/// The username and password of an `Authorization: Basic` value.
fn basic(value: &str) -> Option<(String, String)> {
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, password) = decoded.split_once(':')?;
    Some((user.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_route_and_the_credentials_are_read_strictly() {
        assert_eq!(uid_of("/messages/12/original"), Some(Some(12)));
        assert_eq!(uid_of("/messages/0/original"), Some(None));
        assert_eq!(uid_of("/messages/x/original"), Some(None));
        assert_eq!(uid_of("/messages/12"), None);
        assert_eq!(
            basic("Basic YWxpY2VAaC50ZXN0OnB3OmQ="),
            Some(("alice@h.test".into(), "pw:d".into()))
        );
        assert_eq!(basic("Bearer abc"), None);
        assert_eq!(basic("Basic !!!"), None);
    }
}
