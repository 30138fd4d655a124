//! What a run's container receives on stdin: a tar holding `.te/meta.json`
//! (run id, environment, the record token, the files to run) and the files
//! themselves. No host path is ever mounted into a sandbox.

use anyhow::{Context, Result};
use serde::Serialize;

use crate::catalog::FileContent;

#[derive(Serialize)]
pub struct Meta<'a> {
    pub run_id: i64,
    pub environment_id: i32,
    pub token: &'a str,
    pub files: &'a [String],
}

pub fn build(meta: &Meta, contents: &[FileContent]) -> Result<Vec<u8>> {
    let mut tar = tar::Builder::new(Vec::new());
    let meta_json = serde_json::to_vec(meta)?;
    append(&mut tar, ".te/meta.json", &meta_json)?;
    for file in contents {
        append(&mut tar, &file.path, &file.bytes)?;
    }
    tar.into_inner().context("finishing the payload tar")
}

fn append(tar: &mut tar::Builder<Vec<u8>>, path: &str, bytes: &[u8]) -> Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    header.set_uid(1000);
    header.set_gid(1000);
    header.set_mtime(0);
    header.set_entry_type(tar::EntryType::Regular);
    tar.append_data(&mut header, path, bytes)
        .with_context(|| format!("adding {path} to the payload"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_comes_first_then_the_files() {
        let files = vec!["a/test_x.py".to_string()];
        let meta = Meta {
            run_id: 7,
            environment_id: 3,
            token: "t",
            files: &files,
        };
        let contents = vec![FileContent {
            path: "a/test_x.py".into(),
            bytes: b"def test(): pass\n".to_vec(),
        }];
        let bytes = build(&meta, &contents).unwrap();
        let mut archive = tar::Archive::new(bytes.as_slice());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, [".te/meta.json", "a/test_x.py"]);
    }
}
