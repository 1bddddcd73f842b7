//! The Lua scripts of the Redis store (atomic on the server) and their handles.

use super::*;

/// Stores a token (a string or a flagged hash) with its TTL and adds it to its grant's
/// index, extending the index's TTL to the token's if that is later. An already expired
/// record is not stored (and replaces, by deletion, any value under the key).
///
/// KEYS: token key, index key, and optionally the grant's tombstone key: if that exists,
/// nothing is written and the script returns -1. ARGV: record JSON, expires_at, index
/// member, flag field (empty for a string value).
///
/// Optionally (one server) KEYS[4] the client's tombstone and KEYS[5] its grant set, with
/// ARGV[5] the grant: a tombstoned client is refused (-1) and a stored token's grant joins
/// the set ([`JOIN_CLIENT`]'s work, in the same script).
pub(super) const PUT_TOKEN: &str = r#"
if KEYS[3] and redis.call('EXISTS', KEYS[3]) == 1 then return -1 end
if KEYS[4] and redis.call('EXISTS', KEYS[4]) == 1 then return -1 end
local exp = tonumber(ARGV[2])
local now = tonumber(redis.call('TIME')[1])
redis.call('DEL', KEYS[1])
if exp <= now then return 0 end
if KEYS[5] then
  local s = redis.call('ZSCORE', KEYS[5], ARGV[5])
  if not s or tonumber(s) < exp then redis.call('ZADD', KEYS[5], exp, ARGV[5]) end
  redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', now)
  local ttl = redis.call('TTL', KEYS[5])
  if ttl < 0 or now + ttl < exp then redis.call('EXPIREAT', KEYS[5], exp) end
end
if ARGV[4] == '' then
  redis.call('SET', KEYS[1], ARGV[1], 'EXAT', exp)
else
  redis.call('HSET', KEYS[1], 'rec', ARGV[1], ARGV[4], '0')
  redis.call('EXPIREAT', KEYS[1], exp)
end
if KEYS[2] ~= KEYS[1] then
  redis.call('SADD', KEYS[2], ARGV[3])
  local ttl = redis.call('TTL', KEYS[2])
  if ttl < 0 or now + ttl < exp then redis.call('EXPIREAT', KEYS[2], exp) end
end
return 1
"#;

/// Marks a code used. Returns `{0, ''}` unknown, `{1, rec}` taken, `{2, rec}` replayed.
pub(super) const TAKE_CODE: &str = r#"
local r = redis.call('HMGET', KEYS[1], 'rec', 'used')
if not r[1] then return {0, ''} end
if r[2] == '1' then return {2, r[1]} end
redis.call('HSET', KEYS[1], 'used', '1')
return {1, r[1]}
"#;

/// Marks a code unused again, if it still exists (never creates a key without TTL).
pub(super) const RELEASE_CODE: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HSET', KEYS[1], 'used', '0') end
return 1
"#;

/// Rotates a refresh token. KEYS: old, new, index, family tombstone, and optionally (one
/// server) the client's tombstone and grant set. ARGV: new record, expires_at, new member,
/// grant, and with a reuse interval the rotation time and the earliest rotation time inside
/// the window. Returns 0 unknown, 1 rotated, 2 already rotated (outside the window), 3
/// rotated out inside the window (the new token is stored, the old one left as it was), -1
/// the family or the client is tombstoned (nothing changed). A rotated-out token's hash
/// keeps its rotation time in `rat` (absent when a strict rotation rotated it).
pub(super) const ROTATE: &str = r#"
if redis.call('EXISTS', KEYS[4]) == 1 then return -1 end
if KEYS[5] and redis.call('EXISTS', KEYS[5]) == 1 then return -1 end
local st = redis.call('HGET', KEYS[1], 'rot')
if not st then return 0 end
local outcome = 1
if st == '1' then
  if not ARGV[6] then return 2 end
  local at = tonumber(redis.call('HGET', KEYS[1], 'rat'))
  if not at or at < tonumber(ARGV[6]) then return 2 end
  outcome = 3
elseif ARGV[5] then
  redis.call('HSET', KEYS[1], 'rot', '1', 'rat', ARGV[5])
else
  redis.call('HSET', KEYS[1], 'rot', '1')
end
local exp = tonumber(ARGV[2])
local now = tonumber(redis.call('TIME')[1])
redis.call('DEL', KEYS[2])
if exp > now then
  redis.call('HSET', KEYS[2], 'rec', ARGV[1], 'rot', '0')
  redis.call('EXPIREAT', KEYS[2], exp)
  redis.call('SADD', KEYS[3], ARGV[3])
  local ttl = redis.call('TTL', KEYS[3])
  if ttl < 0 or now + ttl < exp then redis.call('EXPIREAT', KEYS[3], exp) end
  if KEYS[6] then
    local s = redis.call('ZSCORE', KEYS[6], ARGV[4])
    if not s or tonumber(s) < exp then redis.call('ZADD', KEYS[6], exp, ARGV[4]) end
    local cttl = redis.call('TTL', KEYS[6])
    if cttl < 0 or now + cttl < exp then redis.call('EXPIREAT', KEYS[6], exp) end
  end
end
return outcome
"#;

/// A token of a client is about to be written (cluster layout, in the client's slot):
/// refuses a tombstoned client (-1), else adds the grant to the client's grant set with the
/// token's expiry (keeping a later one) and returns 1. KEYS: client tombstone, grant set.
/// ARGV: grant, expires_at.
pub(super) const JOIN_CLIENT: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end
local exp = tonumber(ARGV[2])
local now = tonumber(redis.call('TIME')[1])
if exp <= now then return 1 end
local s = redis.call('ZSCORE', KEYS[2], ARGV[1])
if not s or tonumber(s) < exp then redis.call('ZADD', KEYS[2], exp, ARGV[1]) end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
local ttl = redis.call('TTL', KEYS[2])
if ttl < 0 or now + ttl < exp then redis.call('EXPIREAT', KEYS[2], exp) end
return 1
"#;

/// Tombstones a client until ARGV[1] (keeping a later expiry; not at all if that time has
/// passed) and returns the grants of its grant set whose tokens may still live. KEYS:
/// client tombstone, grant set.
pub(super) const MARK_CLIENT: &str = r#"
local untl = tonumber(ARGV[1])
local now = tonumber(redis.call('TIME')[1])
if untl > now then
  local ttl = redis.call('TTL', KEYS[1])
  if ttl < 0 or now + ttl < untl then redis.call('SET', KEYS[1], '1', 'EXAT', untl) end
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
return redis.call('ZRANGE', KEYS[2], 0, -1)
"#;

/// Tombstones a grant until ARGV[1] (keeping a later expiry; not at all if that time has
/// passed), then deletes the tokens the caller listed and the index, unless the index
/// holds a member the caller did not list (a token written since it read the index): then
/// it deletes nothing and returns -1, and the caller lists the index again. KEYS: index,
/// tombstone, then the listed tokens' keys. ARGV: until, then the listed index members in
/// the order of their keys. Returns how many of the listed tokens existed.
pub(super) const REVOKE_GRANT: &str = r#"
local untl = tonumber(ARGV[1])
local now = tonumber(redis.call('TIME')[1])
if untl > now then
  local ttl = redis.call('TTL', KEYS[2])
  if ttl < 0 or now + ttl < untl then redis.call('SET', KEYS[2], '1', 'EXAT', untl) end
end
local listed = {}
for i = 2, #ARGV do listed[ARGV[i]] = true end
for _, m in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if not listed[m] then return -1 end
end
local n = 0
for i = 3, #KEYS do n = n + redis.call('DEL', KEYS[i]) end
redis.call('DEL', KEYS[1])
return n
"#;

/// Deletes a flagged hash, returning its record (nil if there was none). KEYS: the hash.
pub(super) const REVOKE_ONE: &str = r#"
local r = redis.call('HGET', KEYS[1], 'rec')
if r then redis.call('DEL', KEYS[1]) end
return r
"#;

/// The name of a client's grant set (see the [module docs](self)).
pub(super) const CLIENT_GRANTS: &str = "clg";

/// How many times a grant revocation lists the grant's index and runs [`REVOKE_GRANT`]
/// before giving up. Once its tombstone is laid (the first run) no token joins the index,
/// so the second run succeeds unless the tombstone's time had already passed.
pub(super) const REVOKE_ATTEMPTS: usize = 8;

pub(super) struct Scripts {
    pub(super) put_token: Script,
    pub(super) take_code: Script,
    pub(super) release_code: Script,
    pub(super) rotate: Script,
    pub(super) revoke_grant: Script,
    pub(super) revoke_one: Script,
    pub(super) join_client: Script,
    pub(super) mark_client: Script,
    pub(super) put_device: Script,
    pub(super) cas_device: Script,
    pub(super) create_key: Script,
    pub(super) purge_keys: Script,
    pub(super) revoke_jti: Script,
    pub(super) unrevoke_expired_jti: Script,
}

impl Scripts {
    pub(super) fn new() -> Arc<Self> {
        Arc::new(Scripts {
            put_token: Script::new(PUT_TOKEN),
            take_code: Script::new(TAKE_CODE),
            release_code: Script::new(RELEASE_CODE),
            rotate: Script::new(ROTATE),
            revoke_grant: Script::new(REVOKE_GRANT),
            revoke_one: Script::new(REVOKE_ONE),
            join_client: Script::new(JOIN_CLIENT),
            mark_client: Script::new(MARK_CLIENT),
            put_device: Script::new(device::PUT_DEVICE),
            cas_device: Script::new(device::CAS_DEVICE),
            create_key: Script::new(keys::CREATE_KEY),
            purge_keys: Script::new(keys::PURGE_KEYS),
            revoke_jti: Script::new(keys::REVOKE_JTI),
            unrevoke_expired_jti: Script::new(keys::UNREVOKE_EXPIRED_JTI),
        })
    }
}
