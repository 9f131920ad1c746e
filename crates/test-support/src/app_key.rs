//! RSA key pairs for GitHub App tests, made fresh for each run: no private key, not even
//! a throwaway one, is committed. aws-lc-rs can generate RSA keys (ring, which the packed
//! binaries sign with, cannot), and it is already built for the `scaleset` crate's tests.

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine;

/// One App key in the PEM forms a test needs.
pub struct AppKeyPair {
    /// `RSA PRIVATE KEY` (PKCS#1): the form GitHub's "Generate a private key" downloads.
    pub pkcs1_pem: String,
    /// `PRIVATE KEY` (PKCS#8): what `openssl genpkey` writes.
    pub pkcs8_pem: String,
    /// `PUBLIC KEY` (SubjectPublicKeyInfo): what the simulator verifies JWTs with.
    pub public_pem: String,
}

impl AppKeyPair {
    pub fn generate() -> Self {
        let key = KeyPair::generate(KeySize::Rsa2048).expect("generate an RSA key");
        let pkcs8: Pkcs8V1Der = key.as_der().expect("PKCS#8 form of the key");
        let public: PublicKeyX509Der = key.public_key().as_der().expect("public key DER");
        let pkcs1 = pkcs1_of(pkcs8.as_ref()).expect("PKCS#8 holds an RSAPrivateKey");
        AppKeyPair {
            pkcs1_pem: pem("RSA PRIVATE KEY", &pkcs1),
            pkcs8_pem: pem("PRIVATE KEY", pkcs8.as_ref()),
            public_pem: pem("PUBLIC KEY", public.as_ref()),
        }
    }
}

/// A PEM block: base64 in lines of 64, as openssl writes them.
pub fn pem(label: &str, der: &[u8]) -> String {
    let body = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The RSAPrivateKey inside a PKCS#8 PrivateKeyInfo: SEQUENCE { version, algorithm,
/// OCTET STRING { RSAPrivateKey } }.
fn pkcs1_of(pkcs8: &[u8]) -> Option<Vec<u8>> {
    let (tag, info, _) = der_element(pkcs8)?;
    if tag != 0x30 {
        return None;
    }
    let (_, _, rest) = der_element(info)?; // version
    let (_, _, rest) = der_element(rest)?; // algorithm identifier
    let (tag, key, _) = der_element(rest)?;
    (tag == 0x04).then(|| key.to_vec())
}

/// One DER element: its tag, its contents and what follows it.
fn der_element(buf: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = buf.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (first as usize, rest)
    } else {
        let n = (first & 0x7f) as usize;
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | *b as usize);
        (len, &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_two_private_forms_are_the_same_key() {
        let pair = AppKeyPair::generate();
        let body = |pem: &str| {
            let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap()
        };
        let pkcs8 = body(&pair.pkcs8_pem);
        let pkcs1 = body(&pair.pkcs1_pem);
        // PKCS#8 ends with the PKCS#1 key, and aws-lc-rs reads the PKCS#8 form back.
        assert!(pkcs8.ends_with(&pkcs1));
        assert!(pkcs1.len() > 1000, "a 2048-bit key: {}", pkcs1.len());
        KeyPair::from_pkcs8(&pkcs8).expect("PKCS#8 parses");
        KeyPair::from_der(&pkcs1).expect("PKCS#1 parses");
        assert!(pair.public_pem.starts_with("-----BEGIN PUBLIC KEY-----\n"));
        assert!(pair
            .pkcs1_pem
            .starts_with("-----BEGIN RSA PRIVATE KEY-----\n"));
    }
}
