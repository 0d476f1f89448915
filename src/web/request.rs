//! An HTTP/1.1 request head: read from the connection whole within [`HEAD_TIME`] (a client
//! that trickles header octets cannot hold a connection), then parsed without I/O into the
//! few things the responder uses. Anything ambiguous (two Content-Length fields, a line that
//! is not a field, a request line that is not `METHOD target HTTP/1.x`) is refused with 400.

use std::time::Duration;

use crate::listener::{Connection, ReadError};

/// Longest line of the head.
pub const MAX_HEADER_LINE: usize = 8192;
/// Most header fields.
pub const MAX_HEADERS: usize = 100;
/// Time the whole head may take to arrive, from the connection's first octet of it.
pub const HEAD_TIME: Duration = Duration::from_secs(10);

/// What the responder needs of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    /// The method, as sent (methods are case-sensitive).
    pub method: String,
    /// The path of the target, without its query.
    pub path: String,
    /// The Authorization field's value.
    pub authorization: Option<String>,
    /// The body's length (0 without Content-Length).
    pub content_length: usize,
}

/// Why a head is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeadError {
    /// Malformed.
    Bad,
    /// Too many fields or too long a line.
    TooLarge,
}

impl HeadError {
    /// The status to answer with.
    pub fn status(self) -> &'static str {
        match self {
            HeadError::Bad => "400 Bad Request",
            HeadError::TooLarge => "431 Request Header Fields Too Large",
        }
    }
}

/// Reads the head's lines (request line first, the blank line excluded): Ok(Err) when it
/// is too large, `TooSlow` when it did not arrive whole in [`HEAD_TIME`].
pub async fn read(conn: &mut Connection) -> Result<Result<Vec<Vec<u8>>, HeadError>, ReadError> {
    let time = HEAD_TIME.min(conn.limits().command);
    let lines = async {
        let mut lines = Vec::new();
        loop {
            let line = match conn.read_line(MAX_HEADER_LINE).await {
                Ok(line) => line,
                Err(ReadError::LineTooLong(_)) => return Ok(Err(HeadError::TooLarge)),
                Err(e) => return Err(e),
            };
            if line == b"\r\n" || line == b"\n" {
                return Ok(Ok(lines));
            }
            if lines.len() > MAX_HEADERS {
                return Ok(Err(HeadError::TooLarge));
            }
            lines.push(line);
        }
    };
    tokio::time::timeout(time, lines)
        .await
        .unwrap_or(Err(ReadError::TooSlow))
}

/// Parses the head's lines.
pub fn parse(lines: &[Vec<u8>]) -> Result<Head, HeadError> {
    let (request, fields) = lines.split_first().ok_or(HeadError::Bad)?;
    let request = std::str::from_utf8(request).map_err(|_| HeadError::Bad)?;
    let mut parts = request.trim_end_matches(['\r', '\n']).split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::Bad);
    };
    let token = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic());
    if !token(method) || !target.starts_with('/') || !token(target) {
        return Err(HeadError::Bad);
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(HeadError::Bad);
    }
    let mut head = Head {
        method: method.to_string(),
        path: target.split('?').next().unwrap_or_default().to_string(),
        authorization: None,
        content_length: 0,
    };
    let mut length_seen = false;
    for field in fields {
        let field = String::from_utf8_lossy(field);
        let (name, value) = field.split_once(':').ok_or(HeadError::Bad)?;
        // RFC 9112 5.1: no white space between the name and the colon.
        if name.is_empty() || name.ends_with([' ', '\t']) || name.starts_with([' ', '\t']) {
            return Err(HeadError::Bad);
        }
        let value = value.trim();
        if name.eq_ignore_ascii_case("authorization") {
            if head.authorization.is_some() {
                return Err(HeadError::Bad);
            }
            head.authorization = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("content-length") {
            let valid =
                !value.is_empty() && value.len() <= 12 && value.bytes().all(|b| b.is_ascii_digit());
            if length_seen || !valid {
                return Err(HeadError::Bad);
            }
            length_seen = true;
            head.content_length = value.parse().map_err(|_| HeadError::Bad)?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // No chunked bodies here: a body of unknown length is not read.
            return Err(HeadError::Bad);
        }
    }
    Ok(head)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &str) -> Vec<Vec<u8>> {
        text.split_inclusive("\r\n")
            .map(|l| l.as_bytes().to_vec())
            .collect()
    }

    #[test]
    fn reads_the_request_line_and_the_fields_used() {
        let head = parse(&lines(
            "POST /devices/pair?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 12\r\nAuthorization: Basic eA==\r\n",
        ))
        .expect("a head");
        assert_eq!(head.method, "POST");
        assert_eq!(head.path, "/devices/pair");
        assert_eq!(head.content_length, 12);
        assert_eq!(head.authorization.as_deref(), Some("Basic eA=="));
    }

    #[test]
    fn ambiguous_heads_are_refused() {
        for bad in [
            "GET /health HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n",
            "GET /health HTTP/1.1\r\nContent-Length: -1\r\n",
            "GET /health HTTP/1.1\r\nContent-Length : 1\r\n",
            "GET /health HTTP/1.1\r\nTransfer-Encoding: chunked\r\n",
            "GET /health HTTP/1.1\r\nno colon\r\n",
            "GET /health HTTP/1.1\r\nAuthorization: a\r\nAuthorization: b\r\n",
            "GET  /health HTTP/1.1\r\n",
            "GET health HTTP/1.1\r\n",
            "GET /health\r\n",
            "GET /health HTTP/2\r\n",
        ] {
            assert_eq!(parse(&lines(bad)), Err(HeadError::Bad), "{bad:?}");
        }
        assert_eq!(parse(&[]), Err(HeadError::Bad));
    }

    #[test]
    fn fuzz_request_heads() {
        mssante_fuzzing::fuzz(
            "http head",
            &[
                b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n",
                b"POST /devices/pair HTTP/1.1\r\nContent-Length: 40\r\nContent-Type: application/x-www-form-urlencoded\r\n",
                b"GET /original/12 HTTP/1.0\r\nAuthorization: Basic amVhbkB4LmZyOnBhc3M=\r\n",
            ],
            |input| {
                let split: Vec<Vec<u8>> = input
                    .split_inclusive(|&b| b == b'\n')
                    .map(<[u8]>::to_vec)
                    .collect();
                if let Ok(head) = parse(&split) {
                    assert!(head.path.starts_with('/'));
                }
            },
        );
    }
}
