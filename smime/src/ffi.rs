//! The few OpenSSL CMS calls the `openssl` crate does not wrap: RSA-OAEP key transport and
//! RSA-PSS signatures need the per-recipient and per-signer key contexts, which only the
//! "partial" CMS API reaches. Every `unsafe` block of the crate is here, each with the
//! ownership rule it relies on; the rest of the crate calls the safe functions below.

use std::ffi::{c_int, c_uint};
use std::ptr;

use foreign_types::{ForeignType, ForeignTypeRef};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKeyRef, Private};
use openssl::stack::{Stack, StackRef};
use openssl::symm::Cipher;
use openssl::x509::{X509, X509Ref};
use openssl_sys as sys;

#[allow(non_camel_case_types)]
enum CMS_RecipientInfo {}
#[allow(non_camel_case_types)]
enum CMS_SignerInfo {}

unsafe extern "C" {
    fn CMS_add1_recipient_cert(
        cms: *mut sys::CMS_ContentInfo,
        recip: *mut sys::X509,
        flags: c_uint,
    ) -> *mut CMS_RecipientInfo;
    fn CMS_RecipientInfo_get0_pkey_ctx(ri: *mut CMS_RecipientInfo) -> *mut sys::EVP_PKEY_CTX;
    fn CMS_add1_signer(
        cms: *mut sys::CMS_ContentInfo,
        signer: *mut sys::X509,
        pkey: *mut sys::EVP_PKEY,
        md: *const sys::EVP_MD,
        flags: c_uint,
    ) -> *mut CMS_SignerInfo;
    fn CMS_SignerInfo_get0_pkey_ctx(si: *mut CMS_SignerInfo) -> *mut sys::EVP_PKEY_CTX;
    fn CMS_final(
        cms: *mut sys::CMS_ContentInfo,
        data: *mut sys::BIO,
        dcont: *mut sys::BIO,
        flags: c_uint,
    ) -> c_int;
    fn CMS_get0_signers(cms: *mut sys::CMS_ContentInfo) -> *mut sys::stack_st_X509;
    fn EVP_PKEY_CTX_set_rsa_oaep_md(ctx: *mut sys::EVP_PKEY_CTX, md: *const sys::EVP_MD) -> c_int;
    fn X509_NAME_ENTRY_set(ne: *const sys::X509_NAME_ENTRY) -> c_int;
    fn X509_STORE_add_crl(store: *mut sys::X509_STORE, crl: *mut sys::X509_CRL) -> c_int;
}

/// RSA_PKCS1_PSS_PADDING / RSA_PKCS1_OAEP_PADDING, and a salt as long as the digest.
const PSS_PADDING: c_int = 6;
const OAEP_PADDING: c_int = 4;
const PSS_SALT_DIGEST: c_int = -1;

fn check(ok: bool) -> Result<(), ErrorStack> {
    if ok { Ok(()) } else { Err(ErrorStack::get()) }
}

/// A read-only memory BIO over a byte slice it borrows.
struct SliceBio<'a>(*mut sys::BIO, std::marker::PhantomData<&'a [u8]>);

impl<'a> SliceBio<'a> {
    fn new(data: &'a [u8]) -> Result<SliceBio<'a>, ErrorStack> {
        let len = c_int::try_from(data.len()).map_err(|_| ErrorStack::get())?;
        // SAFETY: the BIO reads `data`, which outlives it (the lifetime ties them).
        let bio = unsafe { sys::BIO_new_mem_buf(data.as_ptr().cast(), len) };
        check(!bio.is_null())?;
        Ok(SliceBio(bio, std::marker::PhantomData))
    }
}

impl Drop for SliceBio<'_> {
    fn drop(&mut self) {
        // SAFETY: created by BIO_new_mem_buf, freed once.
        unsafe {
            sys::BIO_free_all(self.0);
        }
    }
}

/// Owns a CMS_ContentInfo for the duration of a build, freeing it on every path.
struct Cms(*mut sys::CMS_ContentInfo);

impl Drop for Cms {
    fn drop(&mut self) {
        // SAFETY: the pointer came from CMS_encrypt/CMS_sign and is freed once, here.
        unsafe { sys::CMS_ContentInfo_free(self.0) }
    }
}

impl Cms {
    fn new(raw: *mut sys::CMS_ContentInfo) -> Result<Cms, ErrorStack> {
        check(!raw.is_null())?;
        Ok(Cms(raw))
    }

    /// Feeds the content and completes the structure, then serialises it.
    fn finish(self, data: &[u8], flags: c_uint) -> Result<Vec<u8>, ErrorStack> {
        let bio = SliceBio::new(data)?;
        // SAFETY: both pointers are live for the call; CMS_final does not keep the BIO.
        check(unsafe { CMS_final(self.0, bio.0, ptr::null_mut(), flags) } == 1)?;
        // SAFETY: the CMS outlives `borrowed`, which only reads it.
        let borrowed = unsafe { openssl::cms::CmsContentInfoRef::from_ptr(self.0) };
        borrowed.to_der()
    }
}

/// Key transport for each recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyTransport {
    /// RSAES-OAEP with SHA-256 and MGF1-SHA-256 (RFC 8017, RFC 4055).
    OaepSha256,
    /// RSAES-PKCS1-v1_5, for old clients.
    Pkcs1v15,
}

/// An EnvelopedData (CBC) or AuthEnvelopedData (GCM) DER for `recipients`.
pub fn envelope(
    data: &[u8],
    recipients: &[X509],
    cipher: Cipher,
    transport: KeyTransport,
) -> Result<Vec<u8>, ErrorStack> {
    let flags = sys::CMS_PARTIAL | sys::CMS_BINARY;
    // SAFETY: no certificates and no data yet (CMS_PARTIAL); the cipher is static.
    let cms = Cms::new(unsafe {
        sys::CMS_encrypt(ptr::null_mut(), ptr::null_mut(), cipher.as_ptr(), flags)
    })?;
    for cert in recipients {
        let key_flags = if transport == KeyTransport::OaepSha256 {
            sys::CMS_KEY_PARAM
        } else {
            0
        };
        // SAFETY: the certificate is live; CMS_add1 takes its own reference.
        let ri = unsafe { CMS_add1_recipient_cert(cms.0, cert.as_ptr(), key_flags) };
        check(!ri.is_null())?;
        if transport == KeyTransport::OaepSha256 {
            // SAFETY: the context belongs to `ri` (CMS_KEY_PARAM keeps it open until final).
            unsafe {
                let ctx = CMS_RecipientInfo_get0_pkey_ctx(ri);
                check(!ctx.is_null())?;
                check(sys::EVP_PKEY_CTX_set_rsa_padding(ctx, OAEP_PADDING) > 0)?;
                check(EVP_PKEY_CTX_set_rsa_oaep_md(ctx, MessageDigest::sha256().as_ptr()) > 0)?;
                check(
                    sys::EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, MessageDigest::sha256().as_ptr()) > 0,
                )?;
            }
        }
    }
    cms.finish(data, sys::CMS_BINARY)
}

/// RSA signature scheme of a signer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureScheme {
    /// RSASSA-PSS with SHA-256, MGF1-SHA-256 and a 32-octet salt.
    PssSha256,
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Pkcs1v15Sha256,
}

/// A detached SignedData DER over `data`, by `key`/`cert`, carrying `chain`.
pub fn detached_signature(
    data: &[u8],
    key: &PKeyRef<Private>,
    cert: &X509Ref,
    chain: &StackRef<X509>,
    scheme: SignatureScheme,
) -> Result<Vec<u8>, ErrorStack> {
    let flags = sys::CMS_PARTIAL | sys::CMS_DETACHED | sys::CMS_BINARY;
    // SAFETY: no signer yet (CMS_PARTIAL); the chain is only read (CMS adds references).
    let cms = Cms::new(unsafe {
        sys::CMS_sign(
            ptr::null_mut(),
            ptr::null_mut(),
            chain.as_ptr(),
            ptr::null_mut(),
            flags,
        )
    })?;
    let key_flags = if scheme == SignatureScheme::PssSha256 {
        sys::CMS_KEY_PARAM
    } else {
        0
    };
    // SAFETY: certificate and key are live; CMS takes its own references.
    let si = unsafe {
        CMS_add1_signer(
            cms.0,
            cert.as_ptr(),
            key.as_ptr(),
            MessageDigest::sha256().as_ptr(),
            key_flags,
        )
    };
    check(!si.is_null())?;
    if scheme == SignatureScheme::PssSha256 {
        // SAFETY: the context belongs to `si` until CMS_final.
        unsafe {
            let ctx = CMS_SignerInfo_get0_pkey_ctx(si);
            check(!ctx.is_null())?;
            check(sys::EVP_PKEY_CTX_set_rsa_padding(ctx, PSS_PADDING) > 0)?;
            check(sys::EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, PSS_SALT_DIGEST) > 0)?;
            check(sys::EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, MessageDigest::sha256().as_ptr()) > 0)?;
        }
    }
    cms.finish(data, sys::CMS_DETACHED | sys::CMS_BINARY)
}

/// The signer certificates of a verified SignedData.
pub fn signers(cms: &openssl::cms::CmsContentInfoRef) -> Result<Vec<X509>, ErrorStack> {
    // SAFETY: the returned stack is owned by us but its certificates by the CMS: copy each
    // (up_ref through to_owned), then free only the stack.
    unsafe {
        let stack = CMS_get0_signers(cms.as_ptr());
        check(!stack.is_null())?;
        let borrowed = StackRef::<X509>::from_ptr(stack);
        let certs = borrowed.iter().map(|c| c.to_owned()).collect();
        sys::OPENSSL_sk_free(stack.cast());
        Ok(certs)
    }
}

/// For each entry of a name, in order: its RDN index (entries of a multi-valued RDN share
/// one), its short name, its text.
pub fn name_entries(cert: &X509Ref) -> Vec<(i32, String, String)> {
    cert.subject_name()
        .entries()
        .map(|e| {
            // SAFETY: the entry is live while `cert` is; the call only reads it.
            let set = unsafe { X509_NAME_ENTRY_set(e.as_ptr()) };
            let name = e.object().nid().short_name().unwrap_or("?").to_string();
            let text = e.data().to_string().unwrap_or_default();
            (set, name, text)
        })
        .collect()
}

/// A stack of certificates (the chain a signature carries).
pub fn stack(certs: &[X509]) -> Result<Stack<X509>, ErrorStack> {
    let mut stack = Stack::new()?;
    for c in certs {
        stack.push(c.clone())?;
    }
    Ok(stack)
}

/// Adds a CRL to a store being built (the `openssl` crate has no wrapper for it).
pub fn add_crl(
    builder: &mut openssl::x509::store::X509StoreBuilderRef,
    crl: &openssl::x509::X509CrlRef,
) -> Result<(), ErrorStack> {
    // SAFETY: both are live; the store takes its own reference to the CRL.
    check(unsafe { X509_STORE_add_crl(builder.as_ptr(), crl.as_ptr()) } == 1)
}
