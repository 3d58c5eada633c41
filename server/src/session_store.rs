//! tower-sessions' store over the portal's database. Rows are keyed by a SHA-256 of the
//! session id, so a copy of the database does not hand out live session cookies.

use async_trait::async_trait;
use domain::{clock::to_millis, sessions, Portal};
use tower_sessions::{
    cookie::time::OffsetDateTime,
    session::{Id, Record},
    session_store::{Error, Result},
    SessionStore,
};

#[derive(Clone)]
pub struct DbSessionStore {
    portal: Portal,
    /// Idle time after which a session ends (extended by activity, see `http::sessions::touch`).
    idle_ms: i64,
    /// The absolute lifetime of a signed-in session.
    absolute_ms: i64,
}

impl std::fmt::Debug for DbSessionStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DbSessionStore")
    }
}

impl DbSessionStore {
    pub fn new(portal: Portal, idle_minutes: i64, absolute_hours: i64) -> Self {
        Self {
            portal,
            idle_ms: idle_minutes * 60_000,
            absolute_ms: absolute_hours * 3_600_000,
        }
    }

    /// Expiry follows the portal's clock (tests move it), not the record's wall-clock date.
    fn expires_at(&self) -> i64 {
        self.portal.clock.now_ms() + self.idle_ms
    }
}

/// The database key of a session id.
pub fn storage_key(id: &Id) -> String {
    sessions::storage_key(&id.to_string())
}

fn backend(e: sqlx::Error) -> Error {
    Error::Backend(e.to_string())
}

/// Who is signed in, from the session's data (see [`sessions::AuthState`]).
fn owner(record: &Record) -> Option<sessions::SessionOwner> {
    record
        .data
        .get(sessions::AUTH_KEY)
        .and_then(|v| serde_json::from_value::<sessions::AuthState>(v.clone()).ok())
        .map(|auth| auth.owner())
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
                self.expires_at(),
                owner(record),
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
        // A revoked session is not brought back by a request that was still running.
        sessions::save(
            &self.portal.db,
            &storage_key(&record.id),
            &data,
            self.expires_at(),
            owner(record),
        )
        .await
        .map(|_| ())
        .map_err(backend)
    }

    async fn load(&self, id: &Id) -> Result<Option<Record>> {
        let now = self.portal.clock.now();
        let now_ms = to_millis(now);
        let Some(row) = sessions::load(
            &self.portal.db,
            &storage_key(id),
            now_ms,
            now_ms - self.absolute_ms,
        )
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
