//! `POST /devices/pair`: a phone exchanges the pairing code the professional was given
//! (`mssante device pair`, later the portal's QR code) for its own app password, with the
//! settings to use it. The body is `code=K3J9X-QW2ZP` (a form); the answer is JSON. A code
//! works once and for two minutes; wrong codes count for the brute-force brake.

use super::{ClientSettings, Endpoint, Response};
use crate::auth::AuthError;
use crate::server::ServerContext;

/// Largest body read.
pub const MAX_BODY: usize = 1024;

/// Answers a pairing request with `body`.
pub async fn serve(ctx: &ServerContext, body: &[u8], source: &str) -> Response {
    let body = String::from_utf8_lossy(body);
    let Some(code) = body
        .split('&')
        .find_map(|pair| pair.trim().strip_prefix("code="))
    else {
        return Response::text("400 Bad Request", "the body is code=PAIRING-CODE\n");
    };
    match ctx.auth.pair(code, source).await {
        Ok(paired) => {
            let settings = ClientSettings::from_config(&ctx.config);
            let endpoint = |e: &Option<Endpoint>| match e {
                Some(e) => format!(
                    "{{\"host\":{},\"port\":{},\"tls\":\"{}\"}}",
                    json(&e.host),
                    e.port,
                    if e.implicit_tls {
                        "implicit"
                    } else {
                        "starttls"
                    }
                ),
                None => "null".into(),
            };
            let answer = format!(
                "{{\"address\":{},\"device\":{},\"app_password\":{},\"imap\":{},\"smtp\":{}}}\n",
                json(&paired.address),
                json(&paired.name),
                json(&paired.app_password),
                endpoint(&settings.imap),
                endpoint(&settings.submission),
            );
            Response {
                status: "200 OK",
                headers: "Content-Type: application/json\r\n".into(),
                body: answer.into_bytes(),
            }
        }
        Err(AuthError::SourceBlocked(_)) => {
            Response::text("429 Too Many Requests", "too many wrong codes; try later\n")
        }
        Err(AuthError::Unavailable) => {
            Response::text("503 Service Unavailable", "try again later\n")
        }
        Err(_) => Response::text(
            "403 Forbidden",
            "unknown, expired or already used pairing code\n",
        ),
    }
}

/// A JSON string.
fn json(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(super::json("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }
}
