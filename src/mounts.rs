//! A leaf: whether a file is a mount point of its own, read from `/proc/self/mountinfo` —
//! a single-file bind mount such as `docker run -v ~/.aws/credentials:/root/.aws/credentials`.
//! credfresh replaces the credentials file by renaming a new one over it; the kernel refuses
//! that rename onto a mount point (`EBUSY`), and a container that bind-mounted the single
//! file keeps the inode it saw, so it never sees a rotation. Mounting the directory works.

use std::path::{Path, PathBuf};

/// The mount points listed in `mountinfo` (the fifth field of each line, with the kernel's
/// octal escapes of space, tab, newline and backslash undone).
pub fn mount_points(mountinfo: &str) -> Vec<PathBuf> {
    mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|field| PathBuf::from(unescape(field)))
        .collect()
}

/// `\040` → space, `\011` → tab, `\012` → newline, `\134` → backslash (what
/// `show_mountinfo` escapes); anything else as it is.
fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut rest = field;
    while let Some(i) = rest.find('\\') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 4);
        match code.and_then(|c| u8::from_str_radix(c, 8).ok()) {
            Some(b) if code.is_some_and(|c| c.bytes().all(|d| (b'0'..=b'7').contains(&d))) => {
                out.push(char::from(b));
                rest = &rest[i + 4..];
            }
            _ => {
                out.push('\\');
                rest = &rest[i + 1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// When `path` (followed through symlinks, as credfresh writes it) is a regular file that is
/// a mount point of its own in this process's mount namespace: that file.
pub fn single_file_mount(path: &Path) -> Option<PathBuf> {
    let target = std::fs::canonicalize(path).ok()?;
    if !std::fs::metadata(&target).ok()?.is_file() {
        return None;
    }
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    mount_points(&mountinfo).contains(&target).then_some(target)
}

/// What to tell the user about a credentials file that is a single-file mount.
pub fn advice(file: &Path) -> String {
    format!(
        "{} is a single-file bind mount: credfresh replaces the file by renaming a new one over it, \
         which the kernel refuses on a mount point (EBUSY), and a container that mounted the file \
         keeps the copy it saw; mount its directory instead (docker run -v ~/.aws:/root/.aws:ro …) \
         or point `credentials_file` at a file in a mounted directory",
        file.display()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
25 22 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
612 22 8:1 /home/ada/.aws/credentials /root/.aws/credentials rw,relatime - ext4 /dev/sda1 rw
613 22 8:1 /home/ada/my\\040files /data/my\\040files ro,relatime - ext4 /dev/sda1 rw
614 22 8:1 /x /odd\\134name\\011tab rw - ext4 /dev/sda1 rw
";

    #[test]
    fn mount_points_are_the_fifth_field_unescaped() {
        let points = mount_points(SAMPLE);
        assert_eq!(
            points,
            [
                "/",
                "/proc",
                "/root/.aws/credentials",
                "/data/my files",
                "/odd\\name\ttab"
            ]
            .map(PathBuf::from)
        );
        assert_eq!(unescape("a\\0"), "a\\0");
        assert_eq!(unescape("a\\999b"), "a\\999b");
        assert!(mount_points("garbage\n\n").is_empty());
    }

    #[test]
    fn an_ordinary_file_is_no_mount_point() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("credentials");
        std::fs::write(&f, "").unwrap();
        assert_eq!(single_file_mount(&f), None);
        assert_eq!(single_file_mount(&dir.path().join("missing")), None);
        assert!(advice(&f).contains("mount its directory"));
    }
}
