//! Real messages, the seeds of every MIME reader's fuzz test (IMAP's structure, SMTP's 7-bit
//! downgrade, the S/MIME entity split): what Thunderbird, Outlook, practice software and
//! other operators send, with the shapes attackers play with (nested messages, look-alike
//! boundaries, RFC 2231 parameters, encoded words).

/// Whole messages, CRLF line ends unless the shape is the point.
pub const MESSAGES: &[&[u8]] = &[
    b"From: Jean Dupont <jean.dupont@demo.mssante.test>\r\nTo: alice@x.fr\r\nSubject: hello\r\nDate: Fri, 4 Dec 2026 17:58:18 +0100\r\nMessage-ID: <1@x>\r\n\r\nhello, doctor\r\n",
    b"From: =?utf-8?q?Ren=C3=A9e?= <r@x.fr>, \"Dupont, J\" <j@x.fr>\r\nTo: group: a@x.fr, b@y.fr;, <@route:c@z.fr>\r\nCc: undisclosed-recipients:;\r\nSubject: =?utf-8?b?w6l0w6k=?= =?iso-8859-1?q?=E9t=E9?=\r\nIn-Reply-To: <0@x>\r\nReferences: <a@x> <b@x>\r\n\r\nbody\r\n",
    b"MIME-Version: 1.0\r\nFrom: a@x.fr\r\nContent-Type: multipart/mixed; boundary=\"=_b1\"\r\n\r\npreamble\r\n--=_b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nd=C3=A9j=C3=A0 vu=\r\n\r\n--=_b1\r\nContent-Type: application/pdf; name*0*=utf-8''compte%20rendu; name*1=\".pdf\"\r\nContent-Disposition: attachment; filename*=utf-8''r%C3%A9sultat.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--=_b1--\r\nepilogue\r\n",
    b"From: a@x.fr\r\nContent-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; micalg=sha-256; boundary=\"sig\"\r\n\r\n--sig\r\nContent-Type: text/plain\r\n\r\nsigned text\r\n--sig\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\nContent-Transfer-Encoding: base64\r\n\r\nMIAGCSqGSIb3DQEHAqCAMIACAQExDzANBglghkgBZQMEAgEFADCABgkqhkiG9w0BBwEAAA==\r\n--sig--\r\n",
    b"From: a@x.fr\r\nContent-Type: multipart/signed; boundary=b; protocol=\"application/pkcs7-signature\"\r\n\r\n--bX\r\nContent-Type: text/plain\r\n\r\nthe attacker's part\r\n--b\r\nContent-Type: text/plain\r\n\r\ngenuine\r\n--b\r\nContent-Type: application/pkcs7-signature\r\n\r\nAAAA\r\n--b--\r\n--bX--\r\n",
    b"From: a@x.fr\r\nContent-Type: multipart/mixed; boundary=outer\r\n\r\n--outer\r\nContent-Type: message/rfc822\r\n\r\nFrom: inner@y.fr\r\nSubject: forwarded\r\nContent-Type: multipart/alternative; boundary=inner\r\n\r\n--inner\r\nContent-Type: text/plain\r\n\r\nplain\r\n--inner\r\nContent-Type: text/html\r\n\r\n<p>html</p>\r\n--inner--\r\n--outer\r\nContent-Type: multipart/digest; boundary=d\r\n\r\n--d\r\n\r\nSubject: in a digest\r\n\r\nx\r\n--d--\r\n--outer--\r\n",
    b"From: a@x.fr\r\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\r\nContent-Transfer-Encoding: base64\r\nX-MSSante-Signature: valid; signer=forged\r\n\r\nMIAGCSqGSIb3DQEHA6CAMIACAQIxggE=\r\n",
    b"From: a@x.fr\nSubject: bare LF\nContent-Type: text/plain; charset=iso-8859-1\nContent-Transfer-Encoding: 8bit\n\nd\xe9j\xe0\n",
    b"From: a@x.fr\r\nSubject: folded\r\n\tsubject line\r\nX-Long: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\nContent-Type: text/plain; charset=\"utf-8\"; format=flowed\r\nContent-Transfer-Encoding: 8bit\r\n\r\n\xc3\xa9t\xc3\xa9\r\n.\r\n..dot\r\n",
    b"Content-Type: multipart/mixed; boundary=\r\n\r\n--\r\n\r\n----\r\n",
    b"",
    b"\r\n\r\n",
];
