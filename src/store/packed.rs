//! JSON kept compressed in memory (LZ4, the `lz4_flex` crate): what [`super::kept`] holds
//! (thread lists, latest message pages, threads by pair) is JSON that repeats its keys for
//! every message or thread, and LZ4 stores it in less than half the bytes (a page of scenario
//! A's conversations: 1,341 bytes of JSON, 591 packed), so the same `--kept-answers-mb` keeps
//! twice as many answers. Packing costs a few microseconds when an answer is read from the
//! database; unpacking one when it is given costs about a microsecond per 1.5 KB of JSON (a
//! tenth of a kept thread list's answer, docs/STORAGE.md).

use serde::Serialize;

use super::{StoreError, StoreResult};

/// The JSON of an answer that may be kept in memory: packed when it is to be kept, as it is
/// when it is given once (on PostgreSQL or with `--kept-answers-mb 0` nothing is kept, and
/// packing would be work for nothing).
#[derive(Debug)]
pub struct KeptJson {
    /// How long the JSON is.
    len: usize,
    /// The JSON, packed or as it is.
    bytes: Box<[u8]>,
    packed: bool,
}

impl KeptJson {
    /// `value` as JSON, packed if it is to be `kept`.
    pub fn of(value: &impl Serialize, kept: bool) -> StoreResult<KeptJson> {
        let json = serde_json::to_vec(value).map_err(|e| StoreError::Other(e.into()))?;
        let len = json.len();
        let bytes = if kept {
            lz4_flex::block::compress(&json)
        } else {
            json
        };
        Ok(KeptJson {
            len,
            bytes: bytes.into_boxed_slice(),
            packed: kept,
        })
    }

    /// How long the JSON is, unpacked.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the JSON is empty (never, for a serialized value).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many bytes it takes in memory.
    pub fn stored_len(&self) -> usize {
        self.bytes.len()
    }

    /// Appends the JSON to `out`.
    pub fn write_to(&self, out: &mut Vec<u8>) -> StoreResult<()> {
        if !self.packed {
            out.extend_from_slice(&self.bytes);
            return Ok(());
        }
        let start = out.len();
        out.resize(start + self.len, 0);
        match lz4_flex::block::decompress_into(&self.bytes, &mut out[start..]) {
            Ok(written) if written == self.len => Ok(()),
            outcome => {
                out.truncate(start);
                Err(StoreError::Other(anyhow::anyhow!(
                    "kept JSON did not unpack: {outcome:?}"
                )))
            }
        }
    }

    /// The JSON as bytes.
    pub fn to_vec(&self) -> StoreResult<Vec<u8>> {
        let mut out = Vec::with_capacity(self.len);
        self.write_to(&mut out)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

    use super::*;

    #[test]
    fn kept_json_unpacks_as_it_was_and_takes_less_room() {
        let messages: Vec<Value> = (0..20)
            .map(|id| {
                json!({"id": id, "thread": 7, "sender": 3, "text": format!("message {id} ✓"),
                       "created": "2026-12-01T05:25:43.660907Z", "is_read": false,
                       "client_id": null, "edited": null, "reply_to": null,
                       "reactions": [], "files": []})
            })
            .collect();
        let json = serde_json::to_vec(&messages).unwrap();
        let kept = KeptJson::of(&messages, true).unwrap();
        assert_eq!(kept.to_vec().unwrap(), json);
        assert_eq!(kept.len(), json.len());
        assert!(
            kept.stored_len() * 2 < json.len(),
            "{} packed of {}",
            kept.stored_len(),
            json.len()
        );
        let mut out = b"{\"results\":".to_vec();
        kept.write_to(&mut out).unwrap();
        assert_eq!(&out[11..], &json[..], "appended after what was there");

        let given_once = KeptJson::of(&messages, false).unwrap();
        assert_eq!(given_once.stored_len(), json.len(), "not packed");
        assert_eq!(given_once.to_vec().unwrap(), json);
    }

    #[test]
    fn damaged_bytes_are_an_error_not_a_panic() {
        let mut kept = KeptJson::of(&json!({"text": "hello hello hello hello"}), true).unwrap();
        let mut bytes = kept.bytes.to_vec();
        bytes.truncate(bytes.len() / 2);
        kept.bytes = bytes.into_boxed_slice();
        let mut out = b"kept".to_vec();
        assert!(kept.write_to(&mut out).is_err());
        assert_eq!(out, b"kept", "nothing half-written is left");
    }
}
