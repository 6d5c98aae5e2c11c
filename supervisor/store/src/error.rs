//! What can go wrong in the store, whatever the database behind it.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("creating data directory {path}: {source}")]
    Dir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("sqlite ({context}): {source}")]
    Sqlite {
        context: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    /// The transaction a write was part of did not commit.
    #[error("commit failed: {0}")]
    Commit(String),
    /// Fire-and-forget writes whose commit failed since the last barrier.
    #[error("{weight} queued item(s) were not committed: {error}")]
    Lost { weight: u64, error: String },
    #[error("stored record is unreadable: {0}")]
    Corrupt(String),
    #[error("the store writer has stopped")]
    Closed,
    /// A write the data refuses (a spent join token).
    #[error("{0}")]
    Refused(String),
}

pub(crate) fn sql(context: &'static str) -> impl FnOnce(rusqlite::Error) -> StoreError {
    move |source| StoreError::Sqlite { context, source }
}

pub(crate) fn corrupt(what: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string())
}
