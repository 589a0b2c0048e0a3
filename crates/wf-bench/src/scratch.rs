//! Fresh, self-removing directories under the scratch dir, one per measurement.

use std::path::{Path, PathBuf};

/// A directory created empty for one measurement and removed (with its contents) on drop, also
/// when the measurement fails half-way.
pub(crate) struct ScratchDir(PathBuf);

impl ScratchDir {
    /// Creates `<parent>/<name>-<pid>`, removing what an earlier, interrupted run left there.
    pub(crate) fn new(parent: &Path, name: &str) -> Result<Self, String> {
        let path = parent.join(format!("{name}-{}", std::process::id()));
        if path.exists() {
            std::fs::remove_dir_all(&path)
                .map_err(|e| format!("cannot clear {}: {e}", path.display()))?;
        }
        std::fs::create_dir_all(&path)
            .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        Ok(Self(path))
    }

    /// The directory.
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            eprintln!("wf-bench: cannot remove {}: {e}", self.0.display());
        }
    }
}
