//! One-time codes (TOTP, RFC 6238): HMAC-SHA-1, 30-second steps, 6 digits — what every
//! authenticator app (FreeOTP, Google Authenticator, oathtool) computes from the secret in
//! the `otpauth://` URI `mssante user otp enroll` prints.
//!
//! Stock mail clients have no field for a code, so it is typed after the password
//! (`password123456`): [`split_code`] takes it off. A code is accepted for the current and
//! the previous step (a code typed just before the step turned), and a step once used is
//! never accepted again (the store keeps the last one).

use aws_lc_rs::hmac;

/// Seconds per step.
pub const STEP_SECONDS: i64 = 30;
/// Digits per code.
pub const DIGITS: usize = 6;
/// Octets of a new secret (160 bits, RFC 4226's recommendation).
pub const SECRET_LEN: usize = 20;

/// The code of `secret` for time step `step` (RFC 4226 HOTP with the step as counter).
pub fn code(secret: &[u8], step: i64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &step.to_be_bytes());
    let mac = tag.as_ref();
    // Dynamic truncation: 31 bits from the offset the last nibble gives.
    let offset = usize::from(mac[mac.len() - 1] & 0x0f);
    let value = u32::from_be_bytes([
        mac[offset] & 0x7f,
        mac[offset + 1],
        mac[offset + 2],
        mac[offset + 3],
    ]);
    format!(
        "{:0width$}",
        value % 10u32.pow(DIGITS as u32),
        width = DIGITS
    )
}

/// The time step of Unix time `now`.
pub fn step_at(now: i64) -> i64 {
    now.div_euclid(STEP_SECONDS)
}

/// The step `candidate` is the code of, among the current and the previous step at `now`,
/// if it is later than `last_used`; None otherwise.
pub fn accepted_step(secret: &[u8], candidate: &str, now: i64, last_used: i64) -> Option<i64> {
    let current = step_at(now);
    [current, current - 1]
        .into_iter()
        .filter(|step| *step > last_used)
        .find(|step| constant_time_eq(code(secret, *step).as_bytes(), candidate.as_bytes()))
}

/// Splits `password123456` into the password and the code; None when the typed secret does
/// not end with [`DIGITS`] digits after at least one other character.
pub fn split_code(typed: &str) -> Option<(&str, &str)> {
    let at = typed.len().checked_sub(DIGITS)?;
    if at == 0 || !typed.is_char_boundary(at) {
        return None;
    }
    let (password, code) = typed.split_at(at);
    code.bytes()
        .all(|b| b.is_ascii_digit())
        .then_some((password, code))
}

/// RFC 4648 base32 without padding, as `otpauth://` URIs carry secrets.
pub fn base32(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for byte in bytes {
        buffer = (buffer << 8) | u32::from(*byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(ALPHABET[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(ALPHABET[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// The `otpauth://totp/...` URI authenticator apps import (from a QR code or by hand).
pub fn uri(issuer: &str, address: &str, secret: &[u8]) -> String {
    let label = |s: &str| -> String {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'@' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect()
    };
    format!(
        "otpauth://totp/{}:{}?secret={}&issuer={}&algorithm=SHA1&digits={DIGITS}&period={STEP_SECONDS}",
        label(issuer),
        label(address),
        base32(secret),
        label(issuer)
    )
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 (8-digit codes there; their last 6 digits here).
    #[test]
    fn the_rfc_6238_vectors_hold() {
        let secret = b"12345678901234567890";
        for (time, eight) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
        ] {
            assert_eq!(code(secret, step_at(time)), eight[2..], "t={time}");
        }
    }

    #[test]
    fn a_code_counts_for_two_steps_and_once() {
        let secret = b"12345678901234567890";
        let now = 1_234_567_890;
        let current = code(secret, step_at(now));
        let previous = code(secret, step_at(now) - 1);
        assert_eq!(accepted_step(secret, &current, now, 0), Some(step_at(now)));
        assert_eq!(
            accepted_step(secret, &previous, now, 0),
            Some(step_at(now) - 1)
        );
        assert_eq!(accepted_step(secret, &current, now, step_at(now)), None);
        assert_eq!(
            accepted_step(secret, &previous, now, step_at(now) - 1),
            None
        );
        assert_eq!(
            accepted_step(secret, &code(secret, step_at(now) - 2), now, 0),
            None
        );
        assert_eq!(accepted_step(secret, "000000x", now, 0), None);
    }

    #[test]
    fn the_code_comes_off_the_end_of_the_password() {
        assert_eq!(
            split_code("horse battery123456"),
            Some(("horse battery", "123456"))
        );
        assert_eq!(split_code("123456"), None);
        assert_eq!(split_code("password12345a"), None);
        assert_eq!(
            split_code("mot de passe é123456"),
            Some(("mot de passe é", "123456"))
        );
        assert_eq!(split_code("é12345"), None);
    }

    #[test]
    fn secrets_are_base32_in_the_uri() {
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
        assert_eq!(
            uri("mssante hopital.test", "a@b.test", b"foobar"),
            "otpauth://totp/mssante%20hopital.test:a@b.test?secret=MZXW6YTBOI&issuer=mssante%20hopital.test&algorithm=SHA1&digits=6&period=30"
        );
    }
}
