//! A small disk for disk-full tests: a tmpfs of a given size mounted on a temp dir,
//! unmounted and deleted when dropped. Mounting needs root (CI runs as root); elsewhere
//! [`SmallDisk::mount`] returns an error for [`crate::or_skip`] to judge.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::TestkitError;

/// A mounted tmpfs of a fixed size; see the module documentation.
#[derive(Debug)]
pub struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts a tmpfs of `bytes` bytes on a new temp dir.
    pub fn mount(bytes: u64) -> Result<Self, TestkitError> {
        let dir = tempfile::Builder::new()
            .prefix("wrangle-small-disk-")
            .tempdir()
            .map_err(TestkitError::io("creating a mount point"))?;
        let mount = format!(
            "mount -t tmpfs -o size={bytes},mode=0700 tmpfs {}",
            dir.path().display()
        );
        let output = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={bytes},mode=0700"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output()
            .map_err(TestkitError::io("running mount"))?;
        if !output.status.success() {
            return Err(TestkitError::Command {
                command: mount,
                detail: format!(
                    "{}: {}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
            });
        }
        Ok(SmallDisk { dir })
    }

    /// The mounted directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the disk with one file until writing fails for lack of space; returns the
    /// file (delete it to give the space back).
    pub fn fill(&self) -> Result<PathBuf, TestkitError> {
        use std::io::Write;
        let path = self.path().join("filler");
        let mut file =
            std::fs::File::create(&path).map_err(TestkitError::io("creating the filler"))?;
        let chunk = vec![0u8; 4096];
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(err) if err.raw_os_error() == Some(28) => break, // ENOSPC
                Err(err) => return Err(TestkitError::io("filling the disk")(err)),
            }
        }
        Ok(path)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazy: a process still holding a file there must not keep the mount forever.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}
