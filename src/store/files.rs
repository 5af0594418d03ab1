//! Files people attach to messages, kept in the database in chunks of [`CHUNK`] bytes: every
//! instance of a deployment sees them with no set-up beyond the database URL, `migrate-data`
//! moves them with everything else, and no file is ever held whole in memory (an upload is
//! written chunk by chunk, a download read chunk by chunk).
//!
//! A file is uploaded first, then attached to messages of its owner. An upload never attached
//! expires after a day; a file goes when the last message that uses it goes.

use serde::{Deserialize, Serialize};

use super::{
    Store, StoreResult,
    db::{Db, FromRow, IdList, Row, Sql, Tx},
    read_apart, write,
};
use crate::clock::Timestamp;

/// Bytes per stored chunk.
pub const CHUNK: usize = 256 * 1024;
/// Most files one message carries.
pub const FILES_PER_MESSAGE: usize = 10;

/// A file as messages show it (the contract's file JSON).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FileJson {
    pub id: i64,
    pub name: String,
    /// As the upload declared it; served with it.
    pub content_type: String,
    /// Bytes.
    pub size: i64,
    /// Where the bytes are (`GET`, `Range` works).
    pub url: String,
    /// A JPEG at most 400 px on its longest side (images only).
    pub thumbnail_url: Option<String>,
    pub created: Timestamp,
}

/// A message's files, in the order attached.
pub type Files = super::json_list::JsonList<FileJson>;

/// A stored file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct File {
    pub id: i64,
    pub owner: i64,
    pub name: String,
    pub content_type: String,
    pub size: i64,
    pub created: Timestamp,
    pub complete: bool,
    pub attached: bool,
    pub has_thumbnail: bool,
}

impl FromRow for File {
    fn from_row(row: &impl Row) -> StoreResult<File> {
        Ok(File {
            id: row.get("id")?,
            owner: row.get("owner_id")?,
            name: row.get("name")?,
            content_type: row.get("content_type")?,
            size: row.get("size")?,
            created: row.get("created")?,
            complete: row.get("complete")?,
            attached: row.get("attached")?,
            has_thumbnail: row.get("has_thumbnail")?,
        })
    }
}

impl File {
    /// The file's JSON, its links starting with `base` (the public URL, or empty for links
    /// relative to the server's root).
    pub fn json(&self, base: &str) -> FileJson {
        let base = base.trim_end_matches('/');
        FileJson {
            id: self.id,
            name: self.name.clone(),
            content_type: self.content_type.clone(),
            size: self.size,
            url: format!("{base}/api/files/{}/content", self.id),
            thumbnail_url: self
                .has_thumbnail
                .then(|| format!("{base}/api/files/{}/thumbnail", self.id)),
            created: self.created,
        }
    }
}

macro_rules! file_columns {
    () => {
        "id, owner_id, name, content_type, size, created, complete, attached, \
         thumbnail IS NOT NULL AS has_thumbnail"
    };
}

static CREATE: Sql = Sql::new(
    "INSERT INTO files (owner_id, name, content_type, created) VALUES ($1, $2, $3, $4)
     RETURNING id",
);
static CHUNK_INSERT: Sql =
    Sql::new("INSERT INTO file_chunks (file_id, seq, data) VALUES ($1, $2, $3)");
static FINISH: Sql =
    Sql::new("UPDATE files SET size = $2, complete = TRUE, thumbnail = $3 WHERE id = $1");
static DELETE: Sql = Sql::new("DELETE FROM files WHERE id = $1");
static BY_ID: Sql = Sql::new(concat!(
    "SELECT ",
    file_columns!(),
    " FROM files WHERE id = $1"
));
/// The complete files among `$2` (JSON ids) that `$1` uploaded.
static OWNED: Sql = Sql::dialects(
    concat!(
        "SELECT ",
        file_columns!(),
        " FROM files WHERE owner_id = $1 AND complete
           AND id IN (SELECT value FROM json_each($2))"
    ),
    concat!(
        "SELECT ",
        file_columns!(),
        " FROM files WHERE owner_id = $1 AND complete
           AND id IN (SELECT CAST(value AS BIGINT)
                      FROM json_array_elements_text(CAST(CAST($2 AS TEXT) AS JSON)))"
    ),
);
static CHUNK_READ: Sql = Sql::new("SELECT data FROM file_chunks WHERE file_id = $1 AND seq = $2");
static THUMBNAIL: Sql = Sql::new("SELECT thumbnail FROM files WHERE id = $1");
/// Whether `$2` may read file `$1`: they uploaded it, or it is attached to a message of one of
/// their threads.
static READABLE: Sql = Sql::new(
    "SELECT EXISTS (SELECT 1 FROM files WHERE id = $1 AND owner_id = $2)
         OR EXISTS (SELECT 1 FROM message_files mf
                    JOIN messages m ON m.id = mf.message_id
                    JOIN thread_members tm ON tm.thread_id = m.thread_id
                    WHERE mf.file_id = $1 AND tm.user_id = $2)",
);
static ATTACH: Sql =
    Sql::new("INSERT INTO message_files (message_id, file_id, position) VALUES ($1, $2, $3)");
static MARK_ATTACHED: Sql = Sql::new("UPDATE files SET attached = TRUE WHERE id = $1");
pub(crate) static OF_MESSAGE: Sql =
    Sql::new("SELECT file_id FROM message_files WHERE message_id = $1");
pub(crate) static OF_THREAD: Sql = Sql::new(
    "SELECT mf.file_id FROM message_files mf JOIN messages m ON m.id = mf.message_id
     WHERE m.thread_id = $1",
);
pub(crate) static OF_USERS_THREADS: Sql = Sql::new(
    "SELECT mf.file_id FROM thread_members tm
     JOIN messages m ON m.thread_id = tm.thread_id
     JOIN message_files mf ON mf.message_id = m.id
     WHERE tm.user_id = $1",
);
static DELETE_IF_UNUSED: Sql = Sql::new(
    "DELETE FROM files WHERE id = $1 AND attached
       AND NOT EXISTS (SELECT 1 FROM message_files WHERE file_id = $1)",
);
static EXPIRED: Sql =
    Sql::new("SELECT id FROM files WHERE NOT attached AND created < $1 LIMIT 500");

/// Records, in a message's transaction, that it carries these files.
pub(crate) async fn attach(tx: &impl Tx, message: i64, files: &[FileJson]) -> StoreResult<()> {
    for (position, file) in files.iter().enumerate() {
        let position = position as i64;
        tx.execute(&ATTACH, &[&message, &file.id, &position])
            .await?;
        tx.execute(&MARK_ATTACHED, &[&file.id]).await?;
    }
    Ok(())
}

/// Deletes those of `files` that no message uses any more (after messages were deleted).
pub(crate) async fn delete_unused(tx: &impl Tx, files: &[i64]) -> StoreResult<()> {
    for file in files {
        tx.execute(&DELETE_IF_UNUSED, &[file]).await?;
    }
    Ok(())
}

impl Store {
    /// Starts an upload: the file's row, not yet complete.
    pub async fn create_file(
        &self,
        owner: i64,
        name: &str,
        content_type: &str,
    ) -> StoreResult<i64> {
        let (name, content_type) = (name.to_owned(), content_type.to_owned());
        write!(self, |tx| {
            let now = tx.now();
            tx.one(&CREATE, &[&owner, &name, &content_type, &now]).await
        })
    }

    /// Stores the `seq`th chunk of an upload.
    pub async fn append_file_chunk(&self, file: i64, seq: i64, data: Vec<u8>) -> StoreResult<()> {
        write!(self, |tx| {
            tx.execute(&CHUNK_INSERT, &[&file, &seq, &data]).await?;
            Ok(())
        })
    }

    /// Marks an upload complete, with its size and (images) its thumbnail.
    pub async fn finish_file(
        &self,
        file: i64,
        size: i64,
        thumbnail: Option<Vec<u8>>,
    ) -> StoreResult<()> {
        write!(self, |tx| {
            tx.execute(&FINISH, &[&file, &size, &thumbnail]).await?;
            Ok(())
        })
    }

    /// Deletes a file and its chunks (an upload that failed, or expired).
    pub async fn delete_file(&self, file: i64) -> StoreResult<()> {
        write!(self, |tx| {
            tx.execute(&DELETE, &[&file]).await?;
            Ok(())
        })
    }

    pub async fn file(&self, id: i64) -> StoreResult<Option<File>> {
        read_apart!(self, |db| db.row(&BY_ID, &[&id]).await)
    }

    /// The complete files among `ids` that `owner` uploaded.
    pub async fn owned_files(&self, owner: i64, ids: &[i64]) -> StoreResult<Vec<File>> {
        let ids = IdList::new(ids).0;
        read_apart!(self, |db| db.rows(&OWNED, &[&owner, &ids]).await)
    }

    /// The `seq`th chunk of a file.
    pub async fn file_chunk(&self, file: i64, seq: i64) -> StoreResult<Option<Vec<u8>>> {
        read_apart!(self, |db| {
            let chunk: Option<Chunk> = db.row(&CHUNK_READ, &[&file, &seq]).await?;
            Ok(chunk.map(|c| c.0))
        })
    }

    pub async fn file_thumbnail(&self, file: i64) -> StoreResult<Option<Vec<u8>>> {
        read_apart!(self, |db| {
            let thumbnail: Option<Thumbnail> = db.row(&THUMBNAIL, &[&file]).await?;
            Ok(thumbnail.and_then(|t| t.0))
        })
    }

    /// Whether `user` uploaded the file or takes part in a thread where it is attached.
    pub async fn may_read_file(&self, file: i64, user: i64) -> StoreResult<bool> {
        read_apart!(self, |db| db.one(&READABLE, &[&file, &user]).await)
    }

    /// Deletes uploads never attached that are older than `before`; returns how many went.
    pub async fn expire_unattached_files(&self, before: Timestamp) -> StoreResult<usize> {
        let mut total = 0;
        loop {
            let expired: Vec<i64> = read_apart!(self, |db| db.rows(&EXPIRED, &[&before]).await)?;
            if expired.is_empty() {
                return Ok(total);
            }
            total += expired.len();
            write!(self, |tx| {
                for id in &expired {
                    tx.execute(&DELETE, &[id]).await?;
                }
                Ok(())
            })?;
        }
    }
}

/// One chunk's bytes.
struct Chunk(Vec<u8>);

impl FromRow for Chunk {
    fn from_row(row: &impl Row) -> StoreResult<Chunk> {
        Ok(Chunk(row.get("data")?))
    }
}

struct Thumbnail(Option<Vec<u8>>);

impl FromRow for Thumbnail {
    fn from_row(row: &impl Row) -> StoreResult<Thumbnail> {
        Ok(Thumbnail(row.get("thumbnail")?))
    }
}
