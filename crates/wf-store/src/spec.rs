//! Where a store is, as a user writes it: `WF_STORE`, the inspector's `--store`.
//!
//! One parser for every place that takes a store in text, so the app, the inspector and the
//! examples accept the same forms and say the same things about a wrong one:
//!
//! | text | store |
//! |---|---|
//! | `memory` | [`StoreSpec::Memory`]: in-process, lost when the process exits |
//! | `file:<dir>` | [`StoreSpec::File`]: the file store in `<dir>` |
//! | a directory path: absolute, or starting with `.` or `~`, or containing a path separator (`./wf-data`, `/var/lib/app/wf`, `data/wf`) | [`StoreSpec::File`] |
//! | `redis://…`, `rediss://…`, `redis+cluster://…`, `rediss+cluster://…` | [`StoreSpec::Redis`]: recognised here; a build without the `redis` feature says so when it opens it |
//!
//! A bare word such as `wf-data` is refused rather than taken as a directory, so that a typo of
//! `memory` does not quietly create a directory: write `./wf-data` or `file:wf-data`.

use std::fmt;
use std::path::PathBuf;

/// A store named in text. Parse it with [`StoreSpec::parse`] (or `str::parse`).
///
/// ```
/// use wf_store::StoreSpec;
///
/// assert_eq!("memory".parse::<StoreSpec>()?, StoreSpec::Memory);
/// assert_eq!("file:wf-data".parse::<StoreSpec>()?, StoreSpec::File("wf-data".into()));
/// assert_eq!("./wf-data".parse::<StoreSpec>()?, StoreSpec::File("./wf-data".into()));
/// assert!("wf-data".parse::<StoreSpec>().is_err()); // a bare word: `./wf-data` or `file:wf-data`
/// # Ok::<(), wf_store::StoreSpecError>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreSpec {
    /// The in-process memory store.
    Memory,
    /// The file store in this directory.
    File(PathBuf),
    /// A Redis server or cluster at this URL (`redis://`, `rediss://`, `redis+cluster://`,
    /// `rediss+cluster://`). It may hold a password: `Display` and `Debug` print `***` instead.
    Redis(String),
}

/// Why a store text was refused. The message quotes the text and lists the accepted forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StoreSpecError {
    /// Nothing was given.
    #[error("the store is empty: {FORMS}")]
    Empty,
    /// `file:` without a directory.
    #[error("{text:?} names no directory: write file:<dir>, e.g. file:./wf-data")]
    MissingDirectory {
        /// The text given.
        text: String,
    },
    /// A URL of a kind no backend has.
    #[error("{text:?}: no store kind `{scheme}`; {FORMS}")]
    UnknownScheme {
        /// The text given.
        text: String,
        /// The part before `://`.
        scheme: String,
    },
    /// A bare word: neither `memory` nor recognisably a path.
    #[error(
        "{text:?} is not a store: {FORMS}; for a directory of that name write ./{text} or file:{text}"
    )]
    Ambiguous {
        /// The text given.
        text: String,
    },
}

/// The accepted forms, for messages.
const FORMS: &str =
    "use `memory`, `file:<dir>`, a directory path such as ./wf-data, or a redis:// URL";

impl StoreSpec {
    /// Parses a store text (surrounding whitespace ignored).
    ///
    /// # Errors
    ///
    /// [`StoreSpecError`] when the text is empty, `file:` has no directory, the URL scheme is
    /// unknown, or a bare word is neither `memory` nor a path.
    pub fn parse(text: &str) -> Result<Self, StoreSpecError> {
        let t = text.trim();
        if t.is_empty() {
            return Err(StoreSpecError::Empty);
        }
        if t == "memory" {
            return Ok(Self::Memory);
        }
        if let Some(dir) = t.strip_prefix("file:") {
            let dir = dir.strip_prefix("//").unwrap_or(dir);
            if dir.is_empty() {
                return Err(StoreSpecError::MissingDirectory { text: t.to_owned() });
            }
            return Ok(Self::File(PathBuf::from(dir)));
        }
        if let Some((scheme, _)) = t.split_once("://") {
            return match scheme {
                "redis" | "rediss" | "redis+cluster" | "rediss+cluster" => {
                    Ok(Self::Redis(t.to_owned()))
                }
                _ => Err(StoreSpecError::UnknownScheme {
                    text: crate::redact_url(t),
                    scheme: scheme.to_owned(),
                }),
            };
        }
        let looks_like_path = t.starts_with('.')
            || t.starts_with('~')
            || t.chars().any(std::path::is_separator)
            || std::path::Path::new(t).is_absolute();
        if looks_like_path {
            return Ok(Self::File(PathBuf::from(t)));
        }
        Err(StoreSpecError::Ambiguous { text: t.to_owned() })
    }

    /// The backend's short name: `"memory"`, `"file"`, `"redis"`.
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::File(_) => "file",
            Self::Redis(_) => "redis",
        }
    }
}

impl std::str::FromStr for StoreSpec {
    type Err = StoreSpecError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for StoreSpec {
    /// The canonical text: `memory`, `file:<dir>`, the Redis URL with its password shown as
    /// `***`. Parses back to the same spec when the URL has no password.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory => f.write_str("memory"),
            Self::File(dir) => write!(f, "file:{}", dir.display()),
            Self::Redis(url) => f.write_str(&crate::redact_url(url)),
        }
    }
}

impl fmt::Debug for StoreSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Memory => f.write_str("Memory"),
            Self::File(dir) => f.debug_tuple("File").field(dir).finish(),
            Self::Redis(url) => f
                .debug_tuple("Redis")
                .field(&crate::redact_url(url))
                .finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_forms_parse() {
        assert_eq!(StoreSpec::parse(" memory "), Ok(StoreSpec::Memory));
        assert_eq!(
            StoreSpec::parse("file:./a"),
            Ok(StoreSpec::File("./a".into()))
        );
        assert_eq!(
            StoreSpec::parse("file:///var/x"),
            Ok(StoreSpec::File("/var/x".into()))
        );
        assert_eq!(StoreSpec::parse("/x/y"), Ok(StoreSpec::File("/x/y".into())));
        assert_eq!(
            StoreSpec::parse("data/wf"),
            Ok(StoreSpec::File("data/wf".into()))
        );
        assert_eq!(StoreSpec::parse("./wf"), Ok(StoreSpec::File("./wf".into())));
        assert_eq!(
            StoreSpec::parse("redis://127.0.0.1:6379"),
            Ok(StoreSpec::Redis("redis://127.0.0.1:6379".into()))
        );
    }

    #[test]
    fn wrong_forms_say_what_is_accepted() {
        for (text, needle) in [
            ("", "empty"),
            ("file:", "file:<dir>"),
            ("s3://bucket", "no store kind `s3`"),
            ("memroy", "./memroy"),
            ("wf-data", "file:wf-data"),
        ] {
            let e = StoreSpec::parse(text).unwrap_err().to_string();
            assert!(e.contains(needle), "{text}: {e}");
        }
    }

    #[test]
    fn a_redis_password_never_prints() {
        for text in [
            "redis://u:hunter2@h:1/0",
            "rediss+cluster://u:hunter2@a:1,b:2",
            "ftp://u:hunter2@h",
        ] {
            let shown = match StoreSpec::parse(text) {
                Ok(spec) => format!("{spec} {spec:?}"),
                Err(e) => format!("{e} {e:?}"),
            };
            assert!(!shown.contains("hunter2"), "{shown}");
        }
    }

    #[test]
    fn display_parses_back() {
        for spec in [
            StoreSpec::Memory,
            StoreSpec::File("./a b".into()),
            StoreSpec::File("/abs".into()),
            StoreSpec::Redis("redis://h:1/0".into()),
        ] {
            assert_eq!(StoreSpec::parse(&spec.to_string()), Ok(spec));
        }
    }
}
