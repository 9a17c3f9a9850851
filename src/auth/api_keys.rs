//! API key secrets: `roost_<16 hex key id>_<64 hex secret>`. The key id is public and selects the
//! record; the 256-bit secret is checked against its stored SHA-256 in constant time.

use super::{random_hex, sha256_hex};
use crate::domain::{ApiKeyType, Secret};
use crate::store::audit::Actor;
use crate::store::{ApiKeyRecord, ApiKeyScope, Store, StoreResult, now_unix};

const PREFIX: &str = "roost_";
const KEY_ID_BYTES: usize = 8;
const SECRET_BYTES: usize = 32;

/// A key just created: the record as stored, and the token to hand out once.
pub struct IssuedKey {
    pub record: ApiKeyRecord,
    pub token: String,
}

pub fn issue(
    store: &Store,
    actor: &Actor,
    scope: ApiKeyScope,
    note: &str,
    created_by: &str,
) -> StoreResult<IssuedKey> {
    let key_id = random_hex(KEY_ID_BYTES);
    let secret = random_hex(SECRET_BYTES);
    let record = ApiKeyRecord {
        key_id: key_id.clone(),
        secret_hash: Secret::new(sha256_hex(&secret)),
        scope,
        note: note.to_string(),
        created: now_unix(),
        created_by: created_by.to_string(),
        last_used: None,
    };
    store.insert_api_key(actor, &record)?;
    Ok(IssuedKey {
        record,
        token: format!("{PREFIX}{key_id}_{secret}"),
    })
}

/// Creates a global key and returns its token (used by `roost token create` and tests).
/// Creates a global key as the command line does and returns its token (`roost token create`,
/// tests).
pub fn issue_global_key(
    store: &Store,
    key_type: ApiKeyType,
    note: &str,
    created_by: &str,
) -> StoreResult<String> {
    let scope = ApiKeyScope::Global { key_type };
    Ok(issue(store, &Actor::cli(), scope, note, created_by)?.token)
}

/// The key a token belongs to, if the token is genuine. Records the use.
pub fn authenticate(store: &Store, token: &str) -> StoreResult<Option<ApiKeyRecord>> {
    let Some((key_id, secret)) = split_token(token.trim()) else {
        return Ok(None);
    };
    let Some(key) = store.api_key(key_id)? else {
        return Ok(None);
    };
    if !key.secret_hash.matches(&sha256_hex(secret)) {
        return Ok(None);
    }
    Ok(Some(key))
}

fn split_token(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix(PREFIX)?;
    let (key_id, secret) = rest.split_once('_')?;
    let is_hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    (is_hex(key_id, KEY_ID_BYTES * 2) && is_hex(secret, SECRET_BYTES * 2))
        .then_some((key_id, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_authenticate_and_tampered_ones_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let token = issue_global_key(&store, ApiKeyType::Admin, "t", "test").unwrap();
        assert!(token.starts_with("roost_") && token.len() == 6 + 16 + 1 + 64);
        let key = authenticate(&store, &token).unwrap().unwrap();
        assert!(
            !key.secret_hash.expose().contains(&token[23..]),
            "secret must not be stored"
        );
        // Authenticating only reads; the caller records the use, once a minute.
        assert!(key.last_used.is_none() && key.last_used_is_stale(now_unix()));
        store.touch_api_key(&key, now_unix()).unwrap();
        let used = store.api_key(&key.key_id).unwrap().unwrap();
        assert!(used.last_used.is_some() && !used.last_used_is_stale(now_unix()));
        let mut tampered = token.clone();
        let last = if tampered.ends_with('0') { "1" } else { "0" };
        tampered.replace_range(tampered.len() - 1.., last);
        assert!(authenticate(&store, &tampered).unwrap().is_none());
        assert!(authenticate(&store, "").unwrap().is_none());
        assert!(authenticate(&store, "roost_zz_zz").unwrap().is_none());
    }
}
