//! [`CodeStore`] on Redis.

use super::*;

#[async_trait]
impl CodeStore for RedisStore {
    async fn put_code(&self, code: &TokenDigest, record: &CodeRecord) -> Result<(), StorageError> {
        let json = encode(record)?;
        let key = self.keys.key("code", code);
        let scripts = self.scripts.clone();
        // No index: the script sees KEYS[2] == KEYS[1] and skips it.
        self.run(|mut c| async move {
            scripts
                .put_token
                .key(&key)
                .key(&key)
                .arg(&json)
                .arg(record.expires_at)
                .arg("")
                .arg("used")
                .invoke_async::<i64>(&mut c)
                .await
        })
        .await?;
        Ok(())
    }

    async fn take_code(&self, code: &TokenDigest) -> Result<CodeTake, StorageError> {
        let key = self.keys.key("code", code);
        let scripts = self.scripts.clone();
        let (state, json) = self
            .run(|mut c| async move {
                scripts
                    .take_code
                    .key(&key)
                    .invoke_async::<(i64, String)>(&mut c)
                    .await
            })
            .await?;
        Ok(match state {
            1 => CodeTake::Taken(decode(&json)?),
            2 => CodeTake::Replayed(decode(&json)?),
            _ => CodeTake::Unknown,
        })
    }

    async fn release_code(&self, code: &TokenDigest) -> Result<(), StorageError> {
        let key = self.keys.key("code", code);
        let scripts = self.scripts.clone();
        self.run(|mut c| async move {
            scripts
                .release_code
                .key(&key)
                .invoke_async::<i64>(&mut c)
                .await
        })
        .await?;
        Ok(())
    }
}
