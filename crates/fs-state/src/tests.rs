//! Atomic replacement, modes, and what a failed write leaves behind.

use super::*;

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn the_file_gets_the_content_and_exactly_the_mode_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    for mode in [0o600, 0o644, 0o755, 0o400] {
        let path = dir.path().join(format!("sub/{mode:o}"));
        write_atomic(&path, b"content", mode).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"content");
        assert_eq!(mode_of(&path), mode, "{mode:o}");
    }
    // Replacing a file gives the new file the new mode.
    let path = dir.path().join("sub/600");
    write_atomic(&path, b"wider", 0o644).unwrap();
    assert_eq!(
        (fs::read(&path).unwrap(), mode_of(&path)),
        (b"wider".to_vec(), 0o644)
    );
}

#[test]
fn writes_once_then_reports_no_change_and_narrows_a_widened_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("secret");
    assert!(write_if_changed(&path, b"a", 0o600).unwrap());
    assert!(!write_if_changed(&path, b"a", 0o600).unwrap());
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&fs::metadata(p).unwrap());
    let before = inode(&path);
    assert!(!write_if_changed(&path, b"a", 0o600).unwrap());
    assert_eq!(mode_of(&path), 0o600);
    assert_eq!(inode(&path), before, "an unchanged file is not rewritten");
    assert!(write_if_changed(&path, b"b", 0o600).unwrap());
    assert_eq!(fs::read(&path).unwrap(), b"b");
}

#[test]
fn a_write_that_cannot_create_its_file_leaves_the_old_content() {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let ro = dir.path().join("ro");
    fs::create_dir(&ro).unwrap();
    let path = ro.join("state.json");
    write_atomic(&path, b"old", 0o644).unwrap();
    fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();

    // Root writes anywhere; in a thread of its own whose file-system uid is `nobody`,
    // the kernel drops that power for this thread only.
    let target = path.clone();
    let result = std::thread::spawn(move || {
        if nix::unistd::geteuid().is_root() {
            nix::unistd::setfsuid(nix::unistd::Uid::from_raw(65534));
        }
        write_atomic(&target, b"new", 0o644).map_err(|e| e.to_string())
    })
    .join()
    .unwrap();

    let err = result.unwrap_err();
    assert!(err.contains("creating a temporary file in"), "{err}");
    assert_eq!(fs::read(&path).unwrap(), b"old");
    assert_eq!(mode_of(&path), 0o644);
    assert_eq!(names(&ro), ["state.json"]);
}

#[test]
fn a_write_whose_rename_fails_leaves_the_old_entry_and_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    // A directory that is not empty cannot be replaced by a file.
    let path = dir.path().join("taken");
    fs::create_dir_all(path.join("inside")).unwrap();
    let err = write_atomic(&path, b"new", 0o600).unwrap_err();
    assert_eq!(err.action, "replacing", "{err}");
    assert!(path.join("inside").is_dir());
    assert_eq!(names(dir.path()), ["taken"]);
}

#[test]
fn an_unfinished_stream_leaves_the_old_file_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.tar.gz");
    write_atomic(&path, b"old", 0o600).unwrap();
    let mut partial = AtomicFile::create(&path, 0o600).unwrap();
    partial.write_all(b"half of the n").unwrap();
    assert_eq!(
        fs::read(&path).unwrap(),
        b"old",
        "not visible before commit"
    );
    drop(partial);
    assert_eq!(fs::read(&path).unwrap(), b"old");
    assert_eq!(names(dir.path()), ["app.tar.gz"]);

    let mut whole = AtomicFile::create(&path, 0o600).unwrap();
    whole.write_all(b"new").unwrap();
    whole.commit().unwrap();
    assert_eq!(fs::read(&path).unwrap(), b"new");
    assert_eq!(names(dir.path()), ["app.tar.gz"]);
}

#[test]
fn a_private_dir_is_made_0700_even_when_it_exists() {
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join("a/b");
    ensure_private_dir(&private).unwrap();
    assert_eq!(mode_of(&private), 0o700);
    fs::set_permissions(&private, fs::Permissions::from_mode(0o755)).unwrap();
    ensure_private_dir(&private).unwrap();
    assert_eq!(mode_of(&private), 0o700);
}

#[test]
fn errors_name_the_action_and_the_path() {
    let err = ensure_mode(Path::new("/nonexistent/ghr-file"), 0o600).unwrap_err();
    assert_eq!(
        err.to_string(),
        "reading /nonexistent/ghr-file: No such file or directory (os error 2)"
    );
}
