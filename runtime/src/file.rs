//! Reading a small file named by a user (a config, a certificate, a
//! passwords or peers file) as the hostile input it may be.
//!
//! The size is bounded by the bytes actually read, not by what `stat`
//! says: a device (`/dev/zero`) or a FIFO reports size 0 and never ends.
//! Anything but a regular file is refused, and opening never blocks: a FIFO
//! with no writer would otherwise hang the program before it starts.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::path::Path;

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// It could not be opened or read.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// It is a directory, a device, a FIFO or a socket.
    #[error("not a regular file (a {0})")]
    NotRegular(&'static str),
    /// It holds more than the limit.
    #[error("over the {0}-byte limit")]
    TooLarge(u64),
    /// It is not UTF-8 text.
    #[error("not UTF-8 text")]
    NotText,
}

/// The text of the regular file at `path`, refused if it holds more than
/// `limit` bytes.
pub fn read_text(path: &Path, limit: u64) -> Result<String, FileError> {
    let bytes = read_bytes(path, limit)?;
    String::from_utf8(bytes).map_err(|_| FileError::NotText)
}

/// The bytes of the regular file at `path`, refused if it holds more than
/// `limit` bytes.
pub fn read_bytes(path: &Path, limit: u64) -> Result<Vec<u8>, FileError> {
    let file = open_without_blocking(path)?;
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        return Err(FileError::NotRegular(kind_name(&kind)));
    }
    let mut bytes = Vec::new();
    // One byte past the limit tells a file at the limit from a larger one.
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(FileError::TooLarge(limit));
    }
    Ok(bytes)
}

#[cfg(unix)]
fn open_without_blocking(path: &Path) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    // O_NONBLOCK: opening a FIFO for reading waits for a writer otherwise.
    // Regular files ignore it. The file type is checked once it is open, on
    // the descriptor itself, so swapping the path meanwhile gains nothing.
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
}

#[cfg(not(unix))]
fn open_without_blocking(path: &Path) -> std::io::Result<File> {
    File::open(path)
}

fn kind_name(kind: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "FIFO";
        }
        if kind.is_char_device() || kind.is_block_device() {
            return "device";
        }
        if kind.is_socket() {
            return "socket";
        }
    }
    if kind.is_dir() {
        "directory"
    } else {
        "special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_regular_file_is_read_whole() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("f");
        std::fs::write(&path, "abc").expect("write");
        assert_eq!(read_text(&path, 3).expect("read"), "abc");
    }

    #[test]
    fn a_file_over_the_limit_is_refused_after_reading_one_byte_past_it() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("f");
        std::fs::write(&path, "abcd").expect("write");
        assert!(matches!(read_text(&path, 3), Err(FileError::TooLarge(3))));
    }

    #[test]
    fn devices_are_refused_without_reading_them() {
        for device in ["/dev/zero", "/dev/urandom", "/dev/null"] {
            let e = read_bytes(Path::new(device), 1 << 20).expect_err(device);
            assert_eq!(e.to_string(), "not a regular file (a device)", "{device}");
        }
    }

    #[test]
    fn a_symlink_to_a_device_is_refused_too() {
        let dir = tempfile::tempdir().expect("dir");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink("/dev/zero", &link).expect("symlink");
        assert!(matches!(
            read_bytes(&link, 1 << 20),
            Err(FileError::NotRegular("device"))
        ));
    }

    #[test]
    fn a_fifo_with_no_writer_is_refused_at_once() {
        let dir = tempfile::tempdir().expect("dir");
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(made.success());
        let start = std::time::Instant::now();
        let e = read_bytes(&fifo, 1 << 20).expect_err("a FIFO");
        assert_eq!(e.to_string(), "not a regular file (a FIFO)");
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn a_directory_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        assert!(matches!(
            read_bytes(dir.path(), 1 << 20),
            Err(FileError::NotRegular("directory"))
        ));
    }

    #[test]
    fn a_missing_file_is_the_system_error() {
        let e = read_bytes(Path::new("/nonexistent/zproto"), 10).expect_err("missing");
        assert!(e.to_string().contains("No such file"), "{e}");
    }

    #[test]
    fn binary_content_is_not_text() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("f");
        std::fs::write(&path, [0xff, 0xfe]).expect("write");
        assert!(matches!(read_text(&path, 10), Err(FileError::NotText)));
    }
}
