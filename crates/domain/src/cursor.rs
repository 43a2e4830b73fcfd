//! Opaque list cursors (SPEC §4): a position bound to the list and the tenant (or the
//! platform) it came from.
//!
//! A cursor carries its list, its partition and its position, plus a check value, in
//! URL-safe base64. Decoding refuses anything that is not a cursor this engine made for
//! the same list and partition: a forged or altered cursor, or one from another list or
//! tenant, is `invalid_cursor`. The check value is a digest, not a secret MAC: isolation
//! never rests on it (every list reads only its own tenant's rows whatever the
//! position), it only makes a cursor something a client hands back rather than builds.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::error::Error;

/// Bytes of the check value kept in a cursor.
const CHECK_LEN: usize = 12;
/// Separates the fields of a cursor's body; no list, partition or position contains it.
const SEPARATOR: char = '\u{1f}';
const VERSION: &str = "c1";

/// Which list a cursor pages through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    Tenants,
    Members,
    Audit,
    Events,
    Deliveries,
}

impl List {
    fn as_str(self) -> &'static str {
        match self {
            Self::Tenants => "tenants",
            Self::Members => "members",
            Self::Audit => "audit",
            Self::Events => "events",
            Self::Deliveries => "deliveries",
        }
    }
}

fn check_value(body: &str) -> [u8; CHECK_LEN] {
    let digest = Sha256::new()
        .chain_update(b"user-engine list cursor\n")
        .chain_update(body.as_bytes())
        .finalize();
    let mut check = [0; CHECK_LEN];
    check.copy_from_slice(digest.get(..CHECK_LEN).unwrap_or_default());
    check
}

/// The cursor of `position` in `list` of `partition` (a tenant id or `_platform`).
pub fn encode(list: List, partition: &str, position: &str) -> String {
    let body = [VERSION, list.as_str(), partition, position].join(&SEPARATOR.to_string());
    let mut bytes = body.clone().into_bytes();
    bytes.extend_from_slice(&check_value(&body));
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The position a cursor names, if it is one made by [`encode`] for this list and
/// partition.
///
/// # Errors
/// `InvalidCursor` for anything else.
pub fn decode(list: List, partition: &str, cursor: &str) -> Result<String, Error> {
    let bytes = URL_SAFE_NO_PAD
        .decode(cursor)
        .map_err(|_| Error::InvalidCursor)?;
    let split = bytes
        .len()
        .checked_sub(CHECK_LEN)
        .ok_or(Error::InvalidCursor)?;
    let (body, check) = bytes.split_at(split);
    let body = std::str::from_utf8(body).map_err(|_| Error::InvalidCursor)?;
    if check != check_value(body) {
        return Err(Error::InvalidCursor);
    }
    let mut fields = body.split(SEPARATOR);
    match (fields.next(), fields.next(), fields.next(), fields.next()) {
        (Some(VERSION), Some(kind), Some(owner), Some(position))
            if kind == list.as_str() && owner == partition && fields.next().is_none() =>
        {
            Ok(position.to_owned())
        }
        _ => Err(Error::InvalidCursor),
    }
}

/// A numeric position (audit `seq`, feed position) from an optional cursor; none means
/// from the start.
///
/// # Errors
/// `InvalidCursor` when the cursor is not this list's.
pub fn decode_number(list: List, partition: &str, cursor: Option<&str>) -> Result<u64, Error> {
    cursor.map_or(Ok(0), |cursor| {
        decode(list, partition, cursor)?
            .parse()
            .map_err(|_| Error::InvalidCursor)
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_decodes_to_its_position_in_its_own_list_and_partition() {
        let cursor = encode(List::Members, "acme", "0189-x");
        assert_eq!(decode(List::Members, "acme", &cursor).unwrap(), "0189-x");
        assert!(!cursor.contains("acme"), "opaque: {cursor}");
    }

    #[test]
    fn a_cursor_from_another_list_or_partition_is_refused() {
        let cursor = encode(List::Audit, "acme", "17");
        assert_eq!(
            decode(List::Events, "acme", &cursor),
            Err(Error::InvalidCursor)
        );
        assert_eq!(
            decode(List::Audit, "globex", &cursor),
            Err(Error::InvalidCursor)
        );
        assert_eq!(
            decode(List::Audit, "_platform", &cursor),
            Err(Error::InvalidCursor)
        );
    }

    #[test]
    fn forged_and_altered_cursors_are_refused() {
        let cursor = encode(List::Events, "acme", "42");
        for forged in ["", "42", "AAAA", "!!!", &cursor[..cursor.len() - 1]] {
            assert_eq!(
                decode(List::Events, "acme", forged),
                Err(Error::InvalidCursor),
                "{forged:?}"
            );
        }
        // Every single-character change is caught.
        let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        for index in 0..cursor.len() {
            for replacement in alphabet.chars() {
                let mut altered: Vec<char> = cursor.chars().collect();
                if altered[index] == replacement {
                    continue;
                }
                altered[index] = replacement;
                let altered: String = altered.into_iter().collect();
                assert!(
                    decode(List::Events, "acme", &altered)
                        .is_err_and(|e| e == Error::InvalidCursor)
                        || decode(List::Events, "acme", &altered).unwrap() == "42",
                    "{altered}"
                );
            }
        }
    }

    #[test]
    fn numeric_positions_decode_or_start_from_zero() {
        let cursor = encode(List::Events, "acme", "9");
        assert_eq!(decode_number(List::Events, "acme", Some(&cursor)), Ok(9));
        assert_eq!(decode_number(List::Events, "acme", None), Ok(0));
        let not_a_number = encode(List::Events, "acme", "nine");
        assert_eq!(
            decode_number(List::Events, "acme", Some(&not_a_number)),
            Err(Error::InvalidCursor)
        );
    }
}
