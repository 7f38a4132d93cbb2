//! One error type for the whole engine, with the source kept, mapped to a C status in one place
//! (`src/ffi/status.rs`).

use std::path::Path;

/// What went wrong, by the kind a caller acts on. Each kind maps to one `pw_status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    InvalidArgument,
    InvalidJson,
    /// Malformed input that is not JSON (a CSV warm file).
    InvalidInput,
    Io,
    Storage,
    Unsupported,
    Crypto,
}

/// An engine error. Messages never contain credentials or the encryption key: URLs are redacted
/// before they are put into a message (see [`crate::redact`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    InvalidJson(String),
    /// Malformed input that is not JSON: a CSV warm file with no `proxy_url` column or a header
    /// the CSV reader rejects.
    #[error("{0}")]
    InvalidInput(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{context}: {source}")]
    Sqlite {
        context: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("{0}")]
    Storage(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Crypto(String),
}

impl Error {
    /// The same error, its message prefixed with `item <index>: ` (the 0-based position of the
    /// input it is about in a batch). Kinds whose message carries a context are unchanged.
    pub fn in_item(self, index: usize) -> Error {
        let prefix = |m: String| format!("item {index}: {m}");
        match self {
            Error::NotFound(m) => Error::NotFound(prefix(m)),
            Error::InvalidArgument(m) => Error::InvalidArgument(prefix(m)),
            Error::InvalidJson(m) => Error::InvalidJson(prefix(m)),
            Error::InvalidInput(m) => Error::InvalidInput(prefix(m)),
            Error::Storage(m) => Error::Storage(prefix(m)),
            Error::Unsupported(m) => Error::Unsupported(prefix(m)),
            Error::Crypto(m) => Error::Crypto(prefix(m)),
            other @ (Error::Io { .. } | Error::Sqlite { .. }) => other,
        }
    }

    /// The same error for another caller who waited on the same work (a group of puts): the
    /// kind and the message; a source error is kept as text.
    pub fn for_another_caller(&self) -> Error {
        match self {
            Error::NotFound(m) => Error::NotFound(m.clone()),
            Error::InvalidArgument(m) => Error::InvalidArgument(m.clone()),
            Error::InvalidJson(m) => Error::InvalidJson(m.clone()),
            Error::InvalidInput(m) => Error::InvalidInput(m.clone()),
            Error::Io { context, source } => Error::Io {
                context: context.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            Error::Sqlite { context, source } => Error::Storage(format!("{context}: {source}")),
            Error::Storage(m) => Error::Storage(m.clone()),
            Error::Unsupported(m) => Error::Unsupported(m.clone()),
            Error::Crypto(m) => Error::Crypto(m.clone()),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::NotFound(_) => ErrorKind::NotFound,
            Error::InvalidArgument(_) => ErrorKind::InvalidArgument,
            Error::InvalidJson(_) => ErrorKind::InvalidJson,
            Error::InvalidInput(_) => ErrorKind::InvalidInput,
            Error::Io { .. } => ErrorKind::Io,
            Error::Sqlite { .. } | Error::Storage(_) => ErrorKind::Storage,
            Error::Unsupported(_) => ErrorKind::Unsupported,
            Error::Crypto(_) => ErrorKind::Crypto,
        }
    }

    /// An I/O error about `path`, with what was being done.
    pub fn io(what: &str, path: &Path, source: std::io::Error) -> Self {
        Error::Io {
            context: format!("{what} {}", path.display()),
            source,
        }
    }

    pub fn sqlite(context: impl Into<String>, source: rusqlite::Error) -> Self {
        Error::Sqlite {
            context: context.into(),
            source,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
