//! A `.tar` or `.tar.gz` uploaded on `/runs/new`, read as a tree: its
//! regular files (symlinks, hard links, devices and FIFOs are left out and
//! counted), their paths checked as a manifest's, within the project caps
//! while it is read (a gzip bomb stops at the cap). One folder holding
//! everything (`proj/...`, as `tar czf proj.tgz proj` makes) is the tree's
//! root and name.

use std::io::Read;

use sha2::{Digest, Sha256};

use super::manifest::{self, Entry, Manifest, MODE_EXECUTABLE, MODE_FILE};
use crate::{config::Caps, error::AppError};

/// A tree read from an archive: its manifest, each file's content (same
/// order), and how many entries were left out as not regular files.
pub struct Unpacked {
    pub manifest: Manifest,
    pub contents: Vec<Vec<u8>>,
    pub left_out: usize,
}

fn too_large(caps: Caps) -> AppError {
    AppError::TooLarge(format!(
        "the archive holds more than {:.1} MiB (PROJECT_CAP_BYTES)",
        caps.bytes as f64 / 1048576.0
    ))
}

/// Reads `bytes` (gzip or not) as a tar named `filename`.
pub fn unpack(bytes: &[u8], filename: &str, caps: Caps) -> Result<Unpacked, AppError> {
    let reader: Box<dyn Read + '_> = match bytes.starts_with(&[0x1f, 0x8b]) {
        true => Box::new(flate2::read::GzDecoder::new(bytes)),
        false => Box::new(bytes),
    };
    // the tar's own headers count too: a little room above the cap
    let mut archive = tar::Archive::new(reader.take(caps.bytes + 1024 * 1024));
    let unreadable = |e: std::io::Error| {
        AppError::Invalid(format!(
            "{filename:?} is not a .tar or .tar.gz archive: {e}"
        ))
    };
    let (mut files, mut contents, mut left_out, mut total) = (Vec::new(), Vec::new(), 0, 0u64);
    for entry in archive.entries().map_err(unreadable)? {
        let mut entry = entry.map_err(unreadable)?;
        let kind = entry.header().entry_type();
        if kind.is_dir() || kind.is_pax_global_extensions() {
            continue;
        }
        if !(kind.is_file() || kind.is_contiguous()) {
            left_out += 1;
            continue;
        }
        let path = String::from_utf8(entry.path_bytes().into_owned())
            .map_err(|_| AppError::Invalid("an archive path is not UTF-8".into()))?;
        let path = path.trim_start_matches("./").to_owned();
        manifest::check_path(&path)?;
        if files.len() >= caps.files {
            return Err(AppError::TooLarge(format!(
                "the archive holds more than {} files (PROJECT_CAP_FILES)",
                caps.files
            )));
        }
        let mut content = Vec::new();
        entry.read_to_end(&mut content).map_err(unreadable)?;
        total += content.len() as u64;
        if total > caps.bytes {
            return Err(too_large(caps));
        }
        let executable = entry.header().mode().unwrap_or(0) & 0o111 != 0;
        files.push(Entry {
            path,
            mode: if executable {
                MODE_EXECUTABLE
            } else {
                MODE_FILE
            },
            sha256: manifest::hex(&Sha256::digest(&content)),
            size: content.len() as u64,
        });
        contents.push(content);
    }
    let name = strip_top_folder(&mut files).unwrap_or_else(|| name_of(filename));
    Ok(Unpacked {
        manifest: Manifest { name, files },
        contents,
        left_out,
    })
}

/// When every path starts with one folder, drops it and returns its name.
fn strip_top_folder(files: &mut [Entry]) -> Option<String> {
    let top = files.first()?.path.split_once('/')?.0.to_owned();
    let prefix = format!("{top}/");
    if !files.iter().all(|f| f.path.starts_with(&prefix)) {
        return None;
    }
    for f in files.iter_mut() {
        f.path = f.path[prefix.len()..].to_owned();
    }
    Some(clean_name(&top))
}

/// `proj.tar.gz` → `proj`.
fn name_of(filename: &str) -> String {
    let base = filename.rsplit(['/', '\\']).next().unwrap_or(filename);
    let stem = [".tar.gz", ".tgz", ".tar"]
        .iter()
        .find_map(|ext| base.strip_suffix(ext))
        .unwrap_or(base);
    clean_name(stem)
}

fn clean_name(raw: &str) -> String {
    let clean: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    match clean.trim_start_matches(['.', '-']) {
        "" => "upload".to_owned(),
        name => name.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_of(entries: &[(&str, tar::EntryType, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, kind, content) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(*kind);
            header.set_size(content.len() as u64);
            header.set_mode(0o644);
            if kind.is_symlink() {
                header.set_link_name("/etc/passwd").unwrap();
            }
            builder.append_data(&mut header, path, *content).unwrap();
        }
        builder.into_inner().unwrap()
    }

    #[test]
    fn regular_files_are_taken_links_and_fifos_left_out_and_the_top_folder_named() {
        let bytes = tar_of(&[
            (
                "proj/tests/test_a.py",
                tar::EntryType::Regular,
                b"def test(): pass\n",
            ),
            ("proj/passwd.py", tar::EntryType::Symlink, b""),
            ("proj/pipe", tar::EntryType::Fifo, b""),
        ]);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &bytes).unwrap();
        let gz = gz.finish().unwrap();
        for archive in [bytes, gz] {
            let tree = unpack(&archive, "x.tar.gz", Caps::default()).unwrap();
            assert_eq!(tree.manifest.name, "proj");
            assert_eq!(tree.manifest.files.len(), 1);
            assert_eq!(tree.manifest.files[0].path, "tests/test_a.py");
            assert_eq!(tree.left_out, 2);
        }
    }

    #[test]
    fn a_bomb_stops_at_the_cap_and_garbage_is_refused() {
        let big = vec![0u8; 4096];
        let bytes = tar_of(&[("a.py", tar::EntryType::Regular, &big)]);
        let caps = Caps {
            bytes: 1000,
            files: 10,
        };
        assert!(matches!(
            unpack(&bytes, "a.tar", caps),
            Err(AppError::TooLarge(_))
        ));
        assert!(matches!(
            unpack(b"not a tar at all", "a.tar", caps),
            Err(AppError::Invalid(_))
        ));
    }
}
