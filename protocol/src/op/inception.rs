//! Organisation inception records: what an organisation says about itself when it comes into existence, signed
//! with its own key; the hash of the signed bytes is its [`OrgId`].

use super::payload::{dec_country, dec_name};
use super::{decode_signed_wrapper, sign_wrapped, Country, OpError, StakeholderType, VERSION};
use crate::cbor::Encoder;
use crate::crypto::{Domain, PublicKey, SecretKey};
use crate::envelope::wrapper::open_versioned_body;
use crate::ids::OrgId;
use crate::limits::{MAX_INCEPTION_BYTES, MAX_TIMESTAMP_MS};
use std::fmt;
use std::sync::Arc;

/// What an organisation says about itself when it comes into existence. Self-signed; its hash is the [`OrgId`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inception {
    pub name: String,
    pub stakeholder: StakeholderType,
    /// Required for governments (it is the country they may report for); optional otherwise.
    pub country: Option<Country>,
    pub key: PublicKey,
    /// Informational; lets an organisation make a fresh identity with the same name and key material.
    pub created_ms: u64,
}

/// A signed inception record, kept as the exact bytes that were signed.
#[derive(Clone, PartialEq, Eq)]
pub struct SignedInception {
    bytes: Arc<[u8]>,
    id: OrgId,
    body: Inception,
}

impl fmt::Debug for SignedInception {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Inception({:?} {:?})", self.id, self.body.name)
    }
}

impl Inception {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        e.map(5 + self.country.is_some() as usize);
        e.key(0).u64(VERSION);
        e.key(1).text(&self.name);
        e.key(2).u64(self.stakeholder.wire());
        if let Some(c) = self.country {
            e.key(3).text(c.as_str());
        }
        e.key(4).bytes(self.key.as_bytes());
        e.key(5).u64(self.created_ms);
        e.into_bytes()
    }

    pub(crate) fn decode(bytes: &[u8]) -> Result<Self, OpError> {
        let (mut d, mut m) = open_versioned_body(bytes, VERSION)?;
        m.required(&mut d, 1)?;
        let name = dec_name(&mut d, "organisation name")?.to_string();
        m.required(&mut d, 2)?;
        let stakeholder = StakeholderType::from_wire(d.u64()?)?;
        let country = if m.optional(&mut d, 3)? {
            Some(dec_country(&mut d)?)
        } else {
            None
        };
        m.required(&mut d, 4)?;
        let key = PublicKey::from_bytes(&d.fixed::<32>("public key")?).map_err(OpError::Key)?;
        m.required(&mut d, 5)?;
        let created_ms = d.u64()?;
        m.end()?;
        d.finish()?;
        if stakeholder == StakeholderType::Government && country.is_none() {
            return Err(OpError::Structure(
                "a government's inception names its country",
            ));
        }
        if created_ms > MAX_TIMESTAMP_MS {
            return Err(OpError::Structure("timestamp beyond year 2200"));
        }
        Ok(Self {
            name,
            stakeholder,
            country,
            key,
            created_ms,
        })
    }

    /// Signs the record and reads the signed bytes back through the decoder every peer runs
    /// ([`SignedInception::from_bytes`]), refusing with its reason what a peer would refuse (an empty name, a
    /// government without a country, …). What nodes use; [`Inception::sign`] is the raw signer.
    pub fn seal(self, secret: &SecretKey) -> Result<SignedInception, OpError> {
        if secret.public() != self.key {
            return Err(OpError::Structure(
                "an inception is signed by the key it names",
            ));
        }
        SignedInception::from_bytes(self.sign(secret).bytes())
    }

    /// Signs the record with the organisation's key, which must be the key it names, without checking it (tests
    /// build refused records with it; nodes use [`Inception::seal`]).
    pub fn sign(self, secret: &SecretKey) -> SignedInception {
        assert_eq!(
            secret.public(),
            self.key,
            "an inception is signed by the key it names"
        );
        let body = self.encode();
        let (bytes, _) = sign_wrapped(secret, Domain::OrgInception, &body);
        SignedInception {
            id: OrgId::of_bytes(&bytes),
            bytes,
            body: self,
        }
    }
}

impl SignedInception {
    /// Decodes and verifies a signed inception record.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, OpError> {
        if bytes.len() > MAX_INCEPTION_BYTES {
            return Err(OpError::TooLarge {
                what: "inception record",
                len: bytes.len(),
                max: MAX_INCEPTION_BYTES,
            });
        }
        let (body, sig) = decode_signed_wrapper(bytes, MAX_INCEPTION_BYTES)?;
        let body_bytes = &bytes[body.0..body.1];
        let body = Inception::decode(body_bytes)?;
        body.key
            .verify(Domain::OrgInception, body_bytes, &sig)
            .map_err(|_| OpError::BadSignature)?;
        Ok(Self {
            bytes: bytes.into(),
            id: OrgId::of_bytes(bytes),
            body,
        })
    }

    pub fn id(&self) -> OrgId {
        self.id
    }

    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    pub fn body(&self) -> &Inception {
        &self.body
    }
}
