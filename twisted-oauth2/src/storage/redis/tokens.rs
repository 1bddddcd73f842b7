//! What the access and refresh token stores share on Redis: pointers (cluster layout),
//! guarded puts with their index, grant and client revocations.

use super::*;

impl RedisStore {
    /// The record key of a stored token: on a cluster through its pointer (`None`: no
    /// pointer, so no such token).
    pub(super) async fn record_key(
        &self,
        kind: &Kind,
        token: &TokenDigest,
    ) -> Result<Option<String>, StorageError> {
        match self.keys.layout {
            Layout::Single => Ok(Some(self.keys.key(kind.rec, token))),
            Layout::Cluster => Ok(self
                .pointed_grant(kind, token)
                .await?
                .map(|g| self.keys.token_key(kind, g, token))),
        }
    }

    /// The grant a cluster pointer names, if there is one.
    pub(super) async fn pointed_grant(
        &self,
        kind: &Kind,
        token: &TokenDigest,
    ) -> Result<Option<GrantId>, StorageError> {
        let key = self.keys.pointer_key(kind, token);
        let v: Option<String> = self
            .run(|mut c| async move { ::redis::cmd("GET").arg(&key).query_async(&mut c).await })
            .await?;
        v.map(|s| parse_grant(&s)).transpose()
    }

    /// Points a token's digest at its grant until `expires_at` (an expiry already passed
    /// deletes the pointer).
    pub(super) async fn set_pointer(
        &self,
        kind: &Kind,
        token: &TokenDigest,
        grant: GrantId,
        expires_at: i64,
    ) -> Result<(), StorageError> {
        let key = self.keys.pointer_key(kind, token);
        let value = format!("{:032x}", grant.0);
        self.run(|mut c| async move {
            ::redis::cmd("SET")
                .arg(&key)
                .arg(&value)
                .arg("EXAT")
                .arg(expires_at.max(1))
                .query_async::<()>(&mut c)
                .await
        })
        .await
    }

    /// Deletes a cluster pointer whose token is gone or was never stored. A failure is
    /// ignored: a pointer without its record grants nothing and expires with the token.
    pub(super) async fn drop_pointer(&self, kind: &Kind, token: &TokenDigest) {
        if self.keys.layout != Layout::Cluster {
            return;
        }
        let key = self.keys.pointer_key(kind, token);
        let r = self
            .run(|mut c| async move {
                ::redis::cmd("DEL")
                    .arg(&key)
                    .query_async::<i64>(&mut c)
                    .await
            })
            .await;
        if r.is_err() {
            log::debug!("twisted-oauth2: a Redis token pointer was left to expire");
        }
    }

    /// Stores a token with its index entry, unless the grant has a tombstone
    /// ([`StorageError::GrantRevoked`]). On a cluster the pointer is written first, so a
    /// stored token is always reachable; a refused write's pointer is deleted again.
    pub(super) async fn put_token(
        &self,
        kind: &Kind,
        token: &TokenDigest,
        record: &TokenRecord,
    ) -> Result<(), StorageError> {
        let json = encode(record)?;
        let grant = record.grant_id;
        let key = self.keys.token_key(kind, grant, token);
        let idx = self.keys.grant_key(kind.index, grant);
        let tomb = self.keys.grant_key(kind.tomb, grant);
        let ctomb = self
            .keys
            .client_grant_key(kind.client_tomb, &record.client_id);
        let cset = self.keys.client_grant_key(CLIENT_GRANTS, &record.client_id);
        let grant_hex = format!("{:032x}", grant.0);
        let member = token.to_hex();
        let single = self.keys.layout == Layout::Single;
        if !single {
            // The client's slot first: a revocation of the client that lists its grants
            // after this either sees this grant or was seen here.
            self.join_client(&ctomb, &cset, &grant_hex, record.expires_at)
                .await?;
            self.set_pointer(kind, token, grant, record.expires_at)
                .await?;
        }
        let scripts = self.scripts.clone();
        let flag = kind.flag;
        let n = self
            .run(|mut c| async move {
                let mut inv = scripts.put_token.key(&key);
                inv.key(&idx).key(&tomb);
                if single {
                    inv.key(&ctomb).key(&cset);
                }
                inv.arg(&json)
                    .arg(record.expires_at)
                    .arg(&member)
                    .arg(flag)
                    .arg(&grant_hex)
                    .invoke_async::<i64>(&mut c)
                    .await
            })
            .await?;
        if n < 0 {
            self.drop_pointer(kind, token).await;
            return Err(StorageError::GrantRevoked);
        }
        Ok(())
    }

    /// [`JOIN_CLIENT`] (cluster layout): [`StorageError::GrantRevoked`] if the client is
    /// tombstoned.
    pub(super) async fn join_client(
        &self,
        ctomb: &str,
        cset: &str,
        grant_hex: &str,
        expires_at: i64,
    ) -> Result<(), StorageError> {
        let scripts = self.scripts.clone();
        let n = self
            .run(|mut c| async move {
                scripts
                    .join_client
                    .key(ctomb)
                    .key(cset)
                    .arg(grant_hex)
                    .arg(expires_at)
                    .invoke_async::<i64>(&mut c)
                    .await
            })
            .await?;
        if n < 0 {
            return Err(StorageError::GrantRevoked);
        }
        Ok(())
    }

    /// Tombstones `client` for `kind` and lists its grants ([`MARK_CLIENT`]), then revokes
    /// each of them for `kind` (see the [module docs](self)); returns how many tokens went.
    pub(super) async fn revoke_client(
        &self,
        kind: &Kind,
        client: &str,
        until: i64,
    ) -> Result<u64, StorageError> {
        let ctomb = self.keys.client_grant_key(kind.client_tomb, client);
        let cset = self.keys.client_grant_key(CLIENT_GRANTS, client);
        let scripts = self.scripts.clone();
        let grants: Vec<String> = {
            let (ctomb, cset) = (&ctomb, &cset);
            self.run(|mut c| async move {
                scripts
                    .mark_client
                    .key(ctomb)
                    .key(cset)
                    .arg(until)
                    .invoke_async(&mut c)
                    .await
            })
            .await?
        };
        let mut n = 0;
        for g in &grants {
            n += self.revoke_grant(kind, parse_grant(g)?, until).await?;
        }
        Ok(n)
    }

    /// Tombstones `grant` and deletes its tokens of `kind`: lists the grant's index, then
    /// runs [`REVOKE_GRANT`] with every listed token's key declared, again if a token
    /// joined the index in between.
    pub(super) async fn revoke_grant(
        &self,
        kind: &Kind,
        grant: GrantId,
        until: i64,
    ) -> Result<u64, StorageError> {
        let idx = self.keys.grant_key(kind.index, grant);
        let tomb = self.keys.grant_key(kind.tomb, grant);
        for _ in 0..REVOKE_ATTEMPTS {
            let members: Vec<String> = {
                let idx = idx.clone();
                self.run(|mut c| async move {
                    ::redis::cmd("SMEMBERS").arg(&idx).query_async(&mut c).await
                })
                .await?
            };
            let keys: Vec<String> = members
                .iter()
                .map(|m| self.keys.token_key_hex(kind, grant, m))
                .collect();
            let scripts = self.scripts.clone();
            let (idx, tomb) = (&idx, &tomb);
            let n = self
                .run(|mut c| async move {
                    scripts
                        .revoke_grant
                        .key(idx)
                        .key(tomb)
                        .key(&keys)
                        .arg(until)
                        .arg(&members)
                        .invoke_async::<i64>(&mut c)
                        .await
                })
                .await?;
            if n >= 0 {
                return Ok(n as u64);
            }
        }
        Err(StorageError::other(std::io::Error::other(
            "tokens kept joining the grant's index during its revocation",
        )))
    }
}
