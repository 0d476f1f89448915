//! A throwaway CA for the peer tests (`Pki`): issues S/MIME certificates and CRLs with the
//! `openssl` command.

use std::path::{Path, PathBuf};

use mssante_smime::KeyPair;
use openssl::pkey::PKey;
use openssl::x509::{X509, X509Crl};

use crate::openssl_cli::openssl;

/// A throwaway CA in a temp dir, issuing S/MIME certificates and CRLs with openssl.
pub struct Pki {
    /// Where the CA and what it issued live.
    pub dir: tempfile::TempDir,
}

impl Pki {
    pub fn new(name: &str) -> Pki {
        let dir = tempfile::tempdir().expect("temp dir");
        let d = dir.path();
        std::fs::write(d.join("index.txt"), "").expect("index");
        std::fs::write(d.join("crlnumber"), "01\n").expect("crlnumber");
        std::fs::write(
            d.join("ca.cnf"),
            "[ca]\ndefault_ca = ca\n[ca]\ndatabase = index.txt\ncrlnumber = crlnumber\n\
             default_md = sha256\ndefault_crl_days = 30\n",
        )
        .expect("ca.cnf");
        openssl(
            d,
            &[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "30",
                "-subj",
                &format!("/CN={name}/O=TEST"),
                "-addext",
                "basicConstraints=critical,CA:true",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        Pki { dir }
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.path().join(file)
    }

    /// A person certificate `{CN=idNat + SN + GN}` with an e-mail address, for signature
    /// and encryption.
    pub fn issue(&self, name: &str, email: &str, bits: u32) -> KeyPair {
        let d = self.dir.path();
        std::fs::write(
            d.join(format!("{name}.ext")),
            format!(
                "keyUsage=critical,digitalSignature,keyEncipherment\n\
                 extendedKeyUsage=emailProtection\nsubjectAltName=email:{email}\n"
            ),
        )
        .expect("ext");
        openssl(
            d,
            &[
                "req",
                "-new",
                "-newkey",
                &format!("rsa:{bits}"),
                "-nodes",
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
                "-multivalue-rdn",
                "-subj",
                "/C=FR/O=TEST/CN=899700367917+SN=MARTIN+GN=ALICE",
            ],
        );
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "30",
                "-extfile",
                &format!("{name}.ext"),
                "-out",
                &format!("{name}.pem"),
            ],
        );
        KeyPair {
            key: PKey::private_key_from_pem(
                &std::fs::read(self.path(&format!("{name}.key"))).expect("key"),
            )
            .expect("parse key"),
            cert: X509::from_pem(&std::fs::read(self.path(&format!("{name}.pem"))).expect("cert"))
                .expect("parse cert"),
        }
    }

    pub fn ca(&self) -> X509 {
        X509::from_pem(&std::fs::read(self.path("ca.pem")).expect("ca")).expect("parse ca")
    }

    /// Revokes `name` and returns the new CRL.
    pub fn revoke(&self, name: &str) -> X509Crl {
        let d = self.dir.path();
        let ca = ["-config", "ca.cnf", "-keyfile", "ca.key", "-cert", "ca.pem"];
        let mut revoke = vec!["ca"];
        revoke.extend(ca);
        let cert = format!("{name}.pem");
        revoke.extend(["-revoke", &cert]);
        openssl(d, &revoke);
        self.crl()
    }

    pub fn crl(&self) -> X509Crl {
        let d = self.dir.path();
        openssl(
            d,
            &[
                "ca", "-config", "ca.cnf", "-keyfile", "ca.key", "-cert", "ca.pem", "-gencrl",
                "-out", "crl.pem",
            ],
        );
        X509Crl::from_pem(&std::fs::read(self.path("crl.pem")).expect("crl")).expect("parse crl")
    }

    pub fn write(&self, file: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(file);
        std::fs::write(&p, bytes).expect("write");
        p
    }
}

pub fn text(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}
