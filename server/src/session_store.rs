//! tower-sessions' store over the portal's database. Rows are keyed by a SHA-256 of the
//! session id, so a copy of the database does not hand out live session cookies.

use async_trait::async_trait;
use domain::{clock::to_millis, sessions, Portal};
use sha2::{Digest, Sha256};
use tower_sessions::{
    cookie::time::OffsetDateTime,
    session::{Id, Record},
    session_store::{Error, Result},
    SessionStore,
};

#[derive(Clone)]
pub struct DbSessionStore {
    portal: Portal,
}

impl std::fmt::Debug for DbSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DbSessionStore")
    }
}

impl DbSessionStore {
    pub fn new(portal: Portal) -> Self {
        Self { portal }
    }
}

/// The database key of a session id.
pub fn storage_key(id: &Id) -> String {
    hex::encode(Sha256::digest(id.to_string().as_bytes()))
}

fn backend(e: sqlx::Error) -> Error {
    Error::Backend(e.to_string())
}

fn expiry_ms(record: &Record) -> i64 {
    (record.expiry_date.unix_timestamp_nanos() / 1_000_000) as i64
}

#[async_trait]
impl SessionStore for DbSessionStore {
    async fn create(&self, record: &mut Record) -> Result<()> {
        let now = self.portal.clock.now_ms();
        loop {
            let data =
                serde_json::to_vec(&record.data).map_err(|e| Error::Encode(e.to_string()))?;
            let created = sessions::create(
                &self.portal.db,
                &storage_key(&record.id),
                &data,
                expiry_ms(record),
                now,
            )
            .await
            .map_err(backend)?;
            if created {
                return Ok(());
            }
            record.id = Id::default();
        }
    }

    async fn save(&self, record: &Record) -> Result<()> {
        let data = serde_json::to_vec(&record.data).map_err(|e| Error::Encode(e.to_string()))?;
        sessions::save(
            &self.portal.db,
            &storage_key(&record.id),
            &data,
            expiry_ms(record),
            self.portal.clock.now_ms(),
        )
        .await
        .map_err(backend)
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let now = self.portal.clock.now();
        let Some(row) = sessions::load(&self.portal.db, &storage_key(id), to_millis(now))
            .await
            .map_err(backend)?
        else {
            return Ok(None);
        };
        let data = serde_json::from_slice(&row.data).map_err(|e| Error::Decode(e.to_string()))?;
        let expiry_date =
            OffsetDateTime::from_unix_timestamp_nanos(row.expires_at as i128 * 1_000_000)
                .map_err(|e| Error::Decode(e.to_string()))?;
        Ok(Some(Record {
            id: *id,
            data,
            expiry_date,
        }))
    }

    async fn delete(&self, id: &Id) -> Result<()> {
        sessions::delete(&self.portal.db, &storage_key(id))
            .await
            .map_err(backend)
    }
}
