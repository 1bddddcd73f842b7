//! [`CodeStore`] on SQL.

use super::*;

#[async_trait]
impl CodeStore for SqlStore {
    async fn put_code(&self, code: &TokenDigest, record: &CodeRecord) -> Result<(), StorageError> {
        let json = encode(record)?;
        self.timed(async {
            exec!(
                self,
                "INSERT INTO oauth2_codes (digest, grant_id, record, used, expires_at) \
                 VALUES ($1, $2, $3, FALSE, $4) ON CONFLICT (digest) DO UPDATE SET \
                 grant_id = excluded.grant_id, record = excluded.record, used = FALSE, \
                 expires_at = excluded.expires_at",
                &code.0[..],
                &grant_bytes(record.grant_id)[..],
                json.as_str(),
                record.expires_at,
            )
        })
        .await?;
        Ok(())
    }

    async fn take_code(&self, code: &TokenDigest) -> Result<CodeTake, StorageError> {
        // A release between the conditional update and the read makes the code unused
        // again; then try again (bounded).
        for _ in 0..4 {
            let taken = self
                .fetch_record(async {
                    opt_text!(
                        self,
                        "UPDATE oauth2_codes SET used = TRUE WHERE digest = $1 AND used = FALSE \
                         RETURNING record",
                        &code.0[..],
                    )
                })
                .await?;
            if let Some(record) = taken {
                return Ok(CodeTake::Taken(record));
            }
            let row = self
                .fetch_decoded(async {
                    opt_text_flag!(
                        self,
                        "SELECT record, used FROM oauth2_codes WHERE digest = $1",
                        &code.0[..]
                    )
                })
                .await?;
            match row {
                None => return Ok(CodeTake::Unknown),
                Some((record, true)) => return Ok(CodeTake::Replayed(record)),
                Some((_, false)) => continue,
            }
        }
        Err(StorageError::unavailable(std::io::Error::other(
            "authorization code contended; retry",
        )))
    }

    async fn release_code(&self, code: &TokenDigest) -> Result<(), StorageError> {
        self.timed(async {
            exec!(
                self,
                "UPDATE oauth2_codes SET used = FALSE WHERE digest = $1",
                &code.0[..]
            )
        })
        .await?;
        Ok(())
    }
}
