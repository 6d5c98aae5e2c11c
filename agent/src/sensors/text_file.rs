//! A text file a sensor reads every sample, kept open: `/proc` and `/sys`
//! files are generated afresh by a read from their start, so a sample
//! costs one `pread` at offset 0 into a buffer kept between samples,
//! instead of an open, a stat, a read into a new `String` and a close.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::SensorError;

/// Bytes the buffer grows by when a file does not fit.
const GROW: usize = 4096;
/// No kernel text file a sensor reads comes near this; a file that does is
/// an error, not an allocation without end.
const MAX_BYTES: usize = 4 << 20;

#[derive(Debug)]
pub(crate) struct TextFile {
    path: PathBuf,
    file: Option<File>,
    buf: Vec<u8>,
}

impl TextFile {
    pub(crate) fn new(path: PathBuf) -> TextFile {
        TextFile {
            path,
            file: None,
            buf: Vec::new(),
        }
    }

    /// The file's whole text as it is now. After a failure the file is
    /// opened again at the next read (it may have gone and come back).
    pub(crate) fn read(&mut self) -> Result<&str, SensorError> {
        let io_err = |path: &Path, source| SensorError::Io {
            path: path.to_owned(),
            source,
        };
        if self.file.is_none() {
            self.file = Some(File::open(&self.path).map_err(|e| io_err(&self.path, e))?);
        }
        let file = self.file.as_ref().expect("opened above");
        match read_from_start(file, &mut self.buf) {
            Ok(len) => std::str::from_utf8(&self.buf[..len])
                .map_err(|e| io_err(&self.path, io::Error::new(io::ErrorKind::InvalidData, e))),
            Err(e) => {
                self.file = None;
                Err(io_err(&self.path, e))
            }
        }
    }
}

/// Reads `file` from offset 0 to its end into `buf` (whose length is its
/// usable room, kept between reads); returns the bytes read.
fn read_from_start(file: &File, buf: &mut Vec<u8>) -> io::Result<usize> {
    let mut len = 0;
    loop {
        if len == buf.len() {
            if buf.len() >= MAX_BYTES {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("longer than {MAX_BYTES} bytes"),
                ));
            }
            buf.resize(buf.len() + GROW, 0);
        }
        match file.read_at(&mut buf[len..], len as u64) {
            Ok(0) => return Ok(len),
            Ok(n) => len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_file_as_it_is_now_each_time_and_recovers_when_it_comes_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stat");
        let long = "x".repeat(3 * GROW + 17);
        std::fs::write(&path, &long).unwrap();
        let mut f = TextFile::new(path.clone());
        assert_eq!(f.read().unwrap(), long);
        // Shorter now: the old tail is not read again.
        std::fs::write(&path, "cpu 1 2 3\n").unwrap();
        assert_eq!(f.read().unwrap(), "cpu 1 2 3\n");
        // Gone: an error naming the file (the open handle still reads the
        // unlinked inode on a regular file, so replace it to see the new).
        std::fs::remove_file(&path).unwrap();
        let mut gone = TextFile::new(path.clone());
        let e = gone.read().unwrap_err().to_string();
        assert!(e.contains("stat"), "{e}");
        std::fs::write(&path, "back\n").unwrap();
        assert_eq!(gone.read().unwrap(), "back\n");
    }

    #[test]
    fn reads_a_real_proc_file_again_from_its_start() {
        let mut f = TextFile::new(PathBuf::from("/proc/self/stat"));
        let first = f.read().unwrap().to_owned();
        let second = f.read().unwrap().to_owned();
        assert!(
            first.starts_with(&format!("{} ", std::process::id())),
            "{first}"
        );
        assert!(
            second.starts_with(&format!("{} ", std::process::id())),
            "{second}"
        );
    }
}
