//! Signed policies: an Ed25519 signature over a component's SHA-256, detached beside it in
//! `POLICY.sig`, checked against the keys a deployment trusts before the component is compiled.
//!
//! Keys are standard PEM files (PKCS#8 for the secret key, SubjectPublicKeyInfo for the public
//! one), so `openssl pkey -in NAME.key -pubout` gives the same public key. A signature file is
//! one line, so it also fits in an HTTP header:
//!
//! ```text
//! runretry-signature-v1 ed25519 key=<key id> sha256=<component sha256, hex> sig=<signature, hex>
//! ```
//!
//! The signature covers [`SIGNED_PREFIX`] followed by the component's 32-byte SHA-256, so it
//! cannot be taken for a signature of anything else. A key's id is the first 16 hex digits of
//! the SHA-256 of its 32 raw bytes. The embedded default policy is part of the binary and is
//! never asked for a signature.

use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::hex::hex;

/// What a signature covers, before the component's SHA-256: no other message starts so.
pub const SIGNED_PREFIX: &[u8] = b"runretry policy signature v1\0";

/// The first word of a signature file.
const SIGNATURE_TAG: &str = "runretry-signature-v1";

/// Where the signature of the policy at `policy` is: the same path with `.sig` appended.
pub fn signature_path(policy: &Path) -> PathBuf {
    let mut path = policy.as_os_str().to_owned();
    path.push(".sig");
    PathBuf::from(path)
}

/// The signature line beside the policy at `policy` (`POLICY.sig`), or `None` when there is no
/// such file.
pub fn read_signature(policy: &Path) -> Result<Option<String>, Error> {
    let path = signature_path(policy);
    let file = match std::fs::File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::unreadable(path.display(), &e)),
    };
    read_small_text(&path, file, MAX_SIGNATURE_BYTES, "a signature").map(Some)
}

/// The most a signature file may hold: a signature line is about 230 bytes.
pub const MAX_SIGNATURE_BYTES: u64 = 1024;

/// A new key pair, as PEM text: the secret key (PKCS#8), then the public key.
pub fn generate_key_pair() -> Result<(String, String), Error> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| Error::bad_input(format!("no randomness for a key: {e}")))?;
    let key = SigningKey::from_bytes(&seed);
    let secret =
        key.to_pkcs8_pem(LineEnding::LF).map_err(|e| Error::bad_input(format!("cannot encode the key: {e}")))?;
    let public = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| Error::bad_input(format!("cannot encode the public key: {e}")))?;
    Ok((secret.to_string(), public))
}

/// The signature line of `component` by the secret key in `secret_pem` (from `key_name`, named
/// in errors).
pub fn sign(key_name: &str, secret_pem: &str, component: &[u8]) -> Result<String, Error> {
    let key = SigningKey::from_pkcs8_pem(secret_pem)
        .map_err(|e| Error::bad_input(format!("{key_name}: not an Ed25519 secret key in PEM (PKCS#8): {e}")))?;
    let digest: [u8; 32] = Sha256::digest(component).into();
    let signature = key.sign(&signed_message(&digest));
    Ok(format!(
        "{SIGNATURE_TAG} ed25519 key={} sha256={} sig={}",
        key_id(&key.verifying_key()),
        hex(&digest),
        hex(&signature.to_bytes())
    ))
}

/// The text of a key file (PEM): bounded, and refused by name when it is not text.
pub fn read_key_file(path: &Path) -> Result<String, Error> {
    let file = std::fs::File::open(path).map_err(|e| Error::unreadable(path.display(), &e))?;
    read_small_text(path, file, MAX_KEY_FILE_BYTES, "a key in PEM")
}

/// The text of `file` (at `path`), read no further than `max` bytes whatever its size, and
/// refused by name, as not `what`, past that or when it is not text.
fn read_small_text(path: &Path, file: std::fs::File, max: u64, what: &str) -> Result<String, Error> {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes).map_err(|e| Error::unreadable(path.display(), &e))?;
    if bytes.len() as u64 > max {
        return Err(Error::bad_input(format!("{}: over {max} bytes, not {what}", path.display())));
    }
    String::from_utf8(bytes).map_err(|_| Error::bad_input(format!("{}: not {what} (not text)", path.display())))
}

/// The most a key file may hold: an Ed25519 key in PEM is about 120 bytes.
const MAX_KEY_FILE_BYTES: u64 = 16 << 10;

/// The keys a deployment trusts; a policy must be signed by one of them.
#[derive(Clone, Debug)]
pub struct TrustedKeys {
    /// Each key with its id and the file it came from.
    keys: Vec<(String, VerifyingKey, String)>,
}

impl TrustedKeys {
    /// Read public keys (PEM) from `files`: several for rotation. An empty list trusts nothing.
    pub fn read(files: &[PathBuf]) -> Result<Self, Error> {
        let mut keys = Vec::new();
        for file in files {
            let text = read_key_file(file)?;
            let key = VerifyingKey::from_public_key_pem(&text)
                .map_err(|e| Error::bad_input(format!("{}: not an Ed25519 public key in PEM: {e}", file.display())))?;
            keys.push((key_id(&key), key, file.display().to_string()));
        }
        Ok(TrustedKeys { keys })
    }

    /// The ids of the keys, as signatures name them.
    pub fn ids(&self) -> Vec<&str> {
        self.keys.iter().map(|(id, _, _)| id.as_str()).collect()
    }

    /// Check that `signature` (a signature file's line; `None` when there is none) signs
    /// `component` (`name` in errors) with a trusted key; the key's id when it does. Refused:
    /// unsigned, malformed, signed for other bytes, by an unknown key, or not verifying.
    pub fn check(&self, name: &str, component: &[u8], signature: Option<&str>) -> Result<String, Error> {
        let refuse = |why: String| Err(Error::invalid_component(format!("{name}: {why}")));
        let Some(line) = signature else {
            return refuse(format!(
                "is not signed, and only policies signed by a trusted key ({}) are accepted; sign it \
                 with `runretry sign --key KEY {name}`",
                self.ids().join(", ")
            ));
        };
        let parsed = match parse_signature(line.trim()) {
            Some(parsed) => parsed,
            None => return refuse(format!("its signature is not a `{SIGNATURE_TAG}` line")),
        };
        let digest: [u8; 32] = Sha256::digest(component).into();
        if parsed.sha256 != digest {
            return refuse(format!(
                "the signature is for another component (sha256 {}; this one is {})",
                hex(&parsed.sha256),
                hex(&digest)
            ));
        }
        let Some((id, key, _)) = self.keys.iter().find(|(id, _, _)| *id == parsed.key_id) else {
            return refuse(format!(
                "is signed by key {}, which is not trusted (trusted: {})",
                parsed.key_id,
                self.ids().join(", ")
            ));
        };
        match key.verify(&signed_message(&digest), &parsed.signature) {
            Ok(()) => Ok(id.clone()),
            Err(_) => refuse(format!("its signature by key {id} does not verify")),
        }
    }
}

struct ParsedSignature {
    key_id: String,
    sha256: [u8; 32],
    signature: Signature,
}

fn parse_signature(line: &str) -> Option<ParsedSignature> {
    let mut words = line.split(' ');
    if words.next()? != SIGNATURE_TAG || words.next()? != "ed25519" {
        return None;
    }
    let key_id = words.next()?.strip_prefix("key=")?.to_string();
    let sha256 = unhex::<32>(words.next()?.strip_prefix("sha256=")?)?;
    let signature = Signature::from_bytes(&unhex::<64>(words.next()?.strip_prefix("sig=")?)?);
    if words.next().is_some() || key_id.len() != 16 || !key_id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(ParsedSignature { key_id, sha256, signature })
}

fn signed_message(digest: &[u8; 32]) -> Vec<u8> {
    [SIGNED_PREFIX, digest].concat()
}

fn key_id(key: &VerifyingKey) -> String {
    hex(&Sha256::digest(key.as_bytes())[..8])
}

fn unhex<const N: usize>(text: &str) -> Option<[u8; N]> {
    if text.len() != 2 * N {
        return None;
    }
    let mut bytes = [0u8; N];
    for (i, byte) in bytes.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trusted(public_pem: &str) -> TrustedKeys {
        let key = VerifyingKey::from_public_key_pem(public_pem).unwrap();
        TrustedKeys { keys: vec![(key_id(&key), key, "test.pub".into())] }
    }

    #[test]
    fn a_signed_component_is_accepted_and_every_change_refused() {
        let (secret, public) = generate_key_pair().unwrap();
        let keys = trusted(&public);
        let line = sign("test.key", &secret, b"component").unwrap();
        assert_eq!(keys.check("p.wasm", b"component", Some(&line)).unwrap(), keys.ids()[0]);

        let refused = |bytes: &[u8], line: Option<&str>| keys.check("p.wasm", bytes, line).unwrap_err().to_string();
        assert!(refused(b"component", None).contains("is not signed"));
        assert!(refused(b"other", Some(&line)).contains("for another component"));
        assert!(refused(b"component", Some("garbage")).contains("not a `runretry-signature-v1` line"));
        // One flipped bit in the signature.
        assert!(refused(b"component", Some(&flip_last_digit(&line))).contains("does not verify"));
        // Another key's signature.
        let (other_secret, _) = generate_key_pair().unwrap();
        let other = sign("other.key", &other_secret, b"component").unwrap();
        assert!(refused(b"component", Some(&other)).contains("which is not trusted"));
    }

    fn flip_last_digit(line: &str) -> String {
        let (head, last) = line.split_at(line.len() - 1);
        format!("{head}{}", if last == "0" { "1" } else { "0" })
    }
}
