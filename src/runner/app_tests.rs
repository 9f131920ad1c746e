use std::cell::RefCell;

use super::*;

/// Serves tarballs from memory and counts what it was asked.
struct Source {
    files: Vec<(AppDownload, Vec<u8>)>,
    calls: RefCell<Vec<String>>,
}

impl AppSource for Source {
    fn downloads(&self) -> Result<Vec<AppDownload>, GithubError> {
        self.calls.borrow_mut().push("list".into());
        Ok(self.files.iter().map(|(d, _)| d.clone()).collect())
    }
    fn fetch(&self, download: &AppDownload, dest: &Path) -> Result<(), GithubError> {
        let url = &download.download_url;
        self.calls.borrow_mut().push(format!("fetch {url}"));
        let (_, body) = self
            .files
            .iter()
            .find(|(d, _)| &d.download_url == url)
            .ok_or_else(|| GithubError::Unexpected {
                status: 404,
                message: "Not Found".into(),
            })?;
        fs::write(dest, body).map_err(|source| GithubError::Io {
            path: dest.to_path_buf(),
            source,
        })
    }
}

fn tarball(marker: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("run.sh"), marker).unwrap();
    let out = std::process::Command::new("tar")
        .args(["-czf", "-", "-C"])
        .arg(dir.path())
        .arg("run.sh")
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

fn entry(version: &str, body: &[u8], sha: Option<String>) -> (AppDownload, Vec<u8>) {
    let filename = format!(
        "actions-runner-linux-{}-{version}.tar.gz",
        host_architecture()
    );
    let d = AppDownload {
        os: "linux".into(),
        architecture: host_architecture().into(),
        download_url: format!("http://sim/{filename}"),
        filename,
        sha256: sha.or_else(|| Some(hex::encode(Sha256::digest(body)))),
    };
    (d, body.to_vec())
}

fn source(files: Vec<(AppDownload, Vec<u8>)>) -> Source {
    let mut all = files;
    all.push((
        AppDownload {
            os: "osx".into(),
            architecture: "x64".into(),
            download_url: "http://sim/mac".into(),
            filename: "mac.tar.gz".into(),
            sha256: None,
        },
        vec![],
    ));
    Source {
        files: all,
        calls: RefCell::new(vec![]),
    }
}

#[test]
fn downloads_once_then_checks_hourly() {
    let dir = tempfile::tempdir().unwrap();
    let cache = AppCache::new(dir.path());
    let body = tarball("v1");
    let src = source(vec![entry("2.1.0", &body, None)]);
    let up = cache.ensure(&src, 1000, false).unwrap();
    assert!(matches!(up, AppUpdate::Updated { old: None, .. }));
    assert_eq!(fs::read(cache.tarball().unwrap()).unwrap(), body);
    assert_eq!(
        cache.ensure(&src, 1000 + 60, false).unwrap(),
        AppUpdate::Unchanged
    );
    assert_eq!(
        src.calls.borrow().len(),
        2,
        "no request within the hour: {:?}",
        src.calls.borrow()
    );
    assert_eq!(
        cache.ensure(&src, 1000 + 3600, false).unwrap(),
        AppUpdate::Unchanged
    );
    assert_eq!(
        src.calls.borrow().len(),
        3,
        "one listing, no download of the same file"
    );
}

#[test]
fn a_new_version_replaces_the_old_one() {
    let dir = tempfile::tempdir().unwrap();
    let cache = AppCache::new(dir.path());
    cache
        .ensure(
            &source(vec![entry("2.1.0", &tarball("v1"), None)]),
            0,
            false,
        )
        .unwrap();
    let up = cache
        .ensure(
            &source(vec![entry("2.2.0", &tarball("v2"), None)]),
            10,
            true,
        )
        .unwrap();
    match up {
        AppUpdate::Updated {
            old: Some(old),
            new,
        } => {
            assert!(old.contains("2.1.0") && new.contains("2.2.0"));
        }
        other => panic!("{other:?}"),
    }
    assert!(cache.tarball().unwrap().to_string_lossy().contains("2.2.0"));
    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names.len(),
        2,
        "only the new tarball and current.json: {names:?}"
    );
}

#[test]
fn a_bad_download_keeps_the_old_copy() {
    let dir = tempfile::tempdir().unwrap();
    let cache = AppCache::new(dir.path());
    cache
        .ensure(
            &source(vec![entry("2.1.0", &tarball("v1"), None)]),
            0,
            false,
        )
        .unwrap();
    let wrong_sum = entry("2.2.0", &tarball("v2"), Some("00".repeat(32)));
    let err = cache
        .ensure(&source(vec![wrong_sum]), 10, true)
        .unwrap_err();
    assert!(err.to_string().contains("sha256"), "{err}");
    let not_tar = entry("2.3.0", b"<html>proxy error</html>", None);
    let err = cache.ensure(&source(vec![not_tar]), 10, true).unwrap_err();
    assert!(err.to_string().contains("not a gzip"), "{err}");
    // Compressed, but not a tar archive inside.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &[b'x'; 1024]).unwrap();
    let gzip_only = entry("2.4.0", &gz.finish().unwrap(), None);
    let err = cache
        .ensure(&source(vec![gzip_only]), 10, true)
        .unwrap_err();
    assert!(err.to_string().contains("rejected"), "{err}");
    assert!(cache.tarball().unwrap().to_string_lossy().contains("2.1.0"));
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "no half file is left behind");
}

#[test]
fn no_entry_for_this_machine_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = AppCache::new(dir.path())
        .ensure(&source(vec![]), 0, false)
        .unwrap_err();
    assert!(matches!(err, AppError::NoMatch(_)));
}
