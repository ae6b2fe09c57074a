//! Reads. Everything read is verified again (see [`verify`](super::verify)); reads do not wait for the writer
//! (they see applied writes, including ones whose flush is still running).

use wsis_protocol::envelope::SignedEnvelope;
use wsis_protocol::ids::{DocId, EnvelopeId, FederationId, OpId};
use wsis_protocol::op::SignedOp;

use super::error::sled_error;
use super::verify::{decode_peer, show_envelope_key, verify_envelope, verify_op};
use super::{PeerRecord, Store, StoreError, DOC_INDEX_KEY_LEN, TREE_DOC_INDEX, TREE_ENVELOPES};

impl Store {
    /// Whether an op is stored (no verification: a membership test for sync).
    pub fn contains_op(&self, id: &OpId) -> Result<bool, StoreError> {
        self.inner
            .trees
            .ops
            .contains_key(id.0)
            .map_err(|source| sled_error(format!("looking up {id}"), source))
    }

    /// One op, verified.
    pub fn get_op(&self, id: &OpId) -> Result<Option<SignedOp>, StoreError> {
        let bytes = self
            .inner
            .trees
            .ops
            .get(id.0)
            .map_err(|source| sled_error(format!("reading {id}"), source))?;
        bytes
            .map(|b| verify_op(&id.0, &b, self.federation()))
            .transpose()
    }

    /// Every stored op, each verified again (decoding, signature, key = hash of the bytes, federation), in key
    /// order. The first item that fails is reported; nothing is skipped.
    pub fn load_ops(&self) -> Result<Vec<SignedOp>, StoreError> {
        let federation = self.federation();
        let mut out = Vec::new();
        for item in self.inner.trees.ops.iter() {
            let (key, bytes) =
                item.map_err(|source| sled_error("reading the ops".into(), source))?;
            out.push(verify_op(&key, &bytes, federation)?);
        }
        Ok(out)
    }

    /// The number of stored ops (walks the tree).
    pub fn op_count(&self) -> usize {
        self.inner.trees.ops.len()
    }

    /// One envelope, verified.
    pub fn get_envelope(&self, id: &EnvelopeId) -> Result<Option<SignedEnvelope>, StoreError> {
        let Some(federation) = self.federation() else {
            return Ok(None);
        };
        let bytes = self
            .inner
            .trees
            .envelopes
            .get(id.0)
            .map_err(|source| sled_error(format!("reading {id}"), source))?;
        bytes
            .map(|b| verify_envelope(&id.0, &b, federation, None))
            .transpose()
    }

    /// The envelopes of one document, verified, in the order they were first stored.
    pub fn envelopes_of(&self, doc: &DocId) -> Result<Vec<SignedEnvelope>, StoreError> {
        let Some(federation) = self.federation() else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        for item in self.inner.trees.doc_index.scan_prefix(doc.0) {
            let (key, _) = item.map_err(|source| sled_error(format!("listing {doc}"), source))?;
            out.push(self.indexed_envelope(&key, federation)?);
        }
        Ok(out)
    }

    /// Every stored envelope, verified, grouped by document and in insertion order within each. Also checks
    /// that the index and the envelopes agree: an envelope that no document lists is reported as damaged.
    pub fn load_envelopes(&self) -> Result<Vec<SignedEnvelope>, StoreError> {
        let trees = &self.inner.trees;
        let Some(federation) = self.federation() else {
            return if trees.envelopes.is_empty() {
                Ok(Vec::new())
            } else {
                Err(StoreError::NotBound)
            };
        };
        let mut out = Vec::new();
        for item in trees.doc_index.iter() {
            let (key, _) =
                item.map_err(|source| sled_error("reading the document index".into(), source))?;
            out.push(self.indexed_envelope(&key, federation)?);
        }
        if out.len() != trees.envelopes.len() {
            let listed: std::collections::HashSet<EnvelopeId> =
                out.iter().map(|e| e.id()).collect();
            for item in trees.envelopes.iter() {
                let (key, _) =
                    item.map_err(|source| sled_error("reading the envelopes".into(), source))?;
                let unlisted = <[u8; 32]>::try_from(key.as_ref())
                    .map(|k| !listed.contains(&EnvelopeId(k)))
                    .unwrap_or(true);
                if unlisted {
                    return Err(StoreError::Damaged {
                        tree: TREE_ENVELOPES,
                        key: show_envelope_key(&key),
                        reason: "no document lists this envelope in doc_index".into(),
                    });
                }
            }
            // The count differs but every envelope is listed: an index entry names an envelope twice.
            return Err(StoreError::Damaged {
                tree: TREE_DOC_INDEX,
                key: String::from("(whole tree)"),
                reason: "the index lists more entries than there are envelopes".into(),
            });
        }
        Ok(out)
    }

    /// The envelope a `doc_index` key names, verified, including that it belongs to the indexed document.
    fn indexed_envelope(
        &self,
        key: &[u8],
        federation: FederationId,
    ) -> Result<SignedEnvelope, StoreError> {
        let damaged = |reason: String| StoreError::Damaged {
            tree: TREE_DOC_INDEX,
            key: format!("0x{}", hex::encode(key)),
            reason,
        };
        if key.len() != DOC_INDEX_KEY_LEN {
            return Err(damaged(format!(
                "an index key is {DOC_INDEX_KEY_LEN} bytes, found {}",
                key.len()
            )));
        }
        let mut doc = [0u8; 32];
        let mut id = [0u8; 32];
        doc.copy_from_slice(&key[..32]);
        id.copy_from_slice(&key[40..]);
        let (doc, id) = (DocId(doc), EnvelopeId(id));
        let bytes = self
            .inner
            .trees
            .envelopes
            .get(id.0)
            .map_err(|source| sled_error(format!("reading {id}"), source))?
            .ok_or_else(|| damaged(format!("it lists {id}, which is not stored")))?;
        verify_envelope(&id.0, &bytes, federation, Some(doc))
    }

    /// What is known about one peer.
    pub fn get_peer(&self, peer_id: &[u8]) -> Result<Option<PeerRecord>, StoreError> {
        let bytes = self
            .inner
            .trees
            .peers
            .get(peer_id)
            .map_err(|source| sled_error("reading a peer record".into(), source))?;
        bytes.map(|b| decode_peer(peer_id, &b)).transpose()
    }

    /// Every peer record, in peer id order.
    pub fn load_peers(&self) -> Result<Vec<(Vec<u8>, PeerRecord)>, StoreError> {
        let mut out = Vec::new();
        for item in self.inner.trees.peers.iter() {
            let (key, bytes) =
                item.map_err(|source| sled_error("reading the peers".into(), source))?;
            out.push((key.to_vec(), decode_peer(&key, &bytes)?));
        }
        Ok(out)
    }
}
