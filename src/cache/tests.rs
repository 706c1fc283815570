//! The segment cache's tests.

use super::file::HEADER_LEN;
use super::*;

fn segment(members: &[u8]) -> CompressedSegment {
    CompressedSegment {
        members: members.to_vec(),
        crc: 0xdead_beef,
        input_len: 1024,
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn stores_and_loads_metadata_and_members_and_reports_damage() {
    let dir = tempfile::tempdir().unwrap();
    let cache = SegmentCache::open(&dir.path().join("cache"), DEFAULT_LIMIT_BYTES).unwrap();
    let key = SegmentKey::new("/nix/store/x-a", "sha256-AAAA", "mtime=1");
    assert_eq!(cache.load(&key), Ok(None));
    let cached = CachedSegment {
        metadata: b"tar stats and findings".to_vec(),
        segment: segment(&[1, 2, 3]),
    };
    cache
        .store(&key, &cached.metadata, &cached.segment)
        .unwrap();
    assert_eq!(cache.load(&key), Ok(Some(cached.clone())));
    let good = fs::read(cache.file(&key)).unwrap();
    assert_eq!(good.len(), HEADER_LEN + cached.metadata.len() + 3);
    let metadata_at = HEADER_LEN;
    for (at, why) in [
        (good.len() - 1, "checksum mismatch"),
        (9, "checksum mismatch"),
        (17, "checksum mismatch"),
        (40, "checksum mismatch"),
        (metadata_at, "checksum mismatch"),
        (metadata_at + 5, "checksum mismatch"),
        (0, "not a segment file"),
    ] {
        let mut bad = good.clone();
        bad[at] ^= 1;
        fs::write(cache.file(&key), &bad).unwrap();
        let damaged = cache.load(&key).unwrap_err();
        assert_eq!(damaged.why, why, "byte {at}");
        assert_eq!(damaged.file, cache.file(&key));
        assert!(damaged.to_string().contains(".seg is damaged"), "{damaged}");
    }
    // A metadata length that shifts the boundary, or points past the end.
    for (len, why) in [
        (cached.metadata.len() as u64 - 1, "checksum mismatch"),
        (
            cached.metadata.len() as u64 + 4,
            "metadata length beyond the end",
        ),
        (u64::MAX, "metadata length beyond the end"),
    ] {
        let mut bad = good.clone();
        bad[24..32].copy_from_slice(&len.to_le_bytes());
        fs::write(cache.file(&key), &bad).unwrap();
        assert_eq!(cache.load(&key).unwrap_err().why, why, "length {len}");
    }
    fs::write(cache.file(&key), &good[..HEADER_LEN - 1]).unwrap();
    assert_eq!(cache.load(&key).unwrap_err().why, "truncated");
    fs::write(cache.file(&key), &good[..good.len() - 1]).unwrap();
    assert_eq!(cache.load(&key).unwrap_err().why, "checksum mismatch");

    // Empty metadata (write.rs stores none yet) round-trips too.
    cache.store(&key, &[], &cached.segment).unwrap();
    assert_eq!(
        cache.load(&key),
        Ok(Some(CachedSegment {
            metadata: Vec::new(),
            segment: cached.segment.clone()
        }))
    );
    // The probe and every store left nothing but the one entry.
    assert_eq!(names(&dir.path().join("cache")), [format!("{}.seg", key.0)]);
    assert_ne!(
        key,
        SegmentKey::new("/nix/store/x-a", "sha256-AAAA", "mtime=2")
    );
}

#[test]
fn the_key_depends_on_the_tool_version() {
    assert!(FORMAT_VERSION.contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn eviction_removes_the_least_recently_used_first() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cache");
    // Each segment file is HEADER_LEN + 100 bytes.
    let size = (HEADER_LEN + 100) as u64;
    let open = |limit| SegmentCache::open(&root, limit).unwrap();
    let cache = open(u64::MAX);
    let keys: Vec<SegmentKey> = (0..4)
        .map(|i| SegmentKey::new(&format!("/nix/store/x-{i}"), "sha256-AAAA", ""))
        .collect();
    for key in &keys {
        cache.store(key, &[], &segment(&[7; 100])).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // Not segments: another file, a temporary of a run in flight, a
    // directory named like a segment.
    fs::write(root.join("notes.txt"), vec![0; 10_000]).unwrap();
    fs::write(
        root.join(format!(".{}.seg.1234.tmp", keys[0].0)),
        vec![0; 10_000],
    )
    .unwrap();
    fs::create_dir(root.join("dir.seg")).unwrap();
    assert_eq!(
        cache.evict().unwrap(),
        Eviction {
            removed: 0,
            removed_bytes: 0,
            kept_bytes: 4 * size
        }
    );
    // Used in the order 0, 1, 2, 3; loading 0 and then 2 makes it 1, 3, 0, 2.
    for i in [0, 2] {
        assert!(cache.load(&keys[i]).unwrap().is_some());
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let file = |i: usize| format!("{}.seg", keys[i].0);
    assert_eq!(
        open(2 * size + 1).evict().unwrap(),
        Eviction {
            removed: 2,
            removed_bytes: 2 * size,
            kept_bytes: 2 * size
        }
    );
    let mut expected = vec![
        format!(".{}.seg.1234.tmp", keys[0].0),
        "dir.seg".to_owned(),
        file(0),
        file(2),
        "notes.txt".to_owned(),
    ];
    expected.sort();
    assert_eq!(names(&root), expected);
    // At the limit exactly, nothing goes; below it, the oldest.
    assert_eq!(open(2 * size).evict().unwrap().removed, 0);
    assert_eq!(open(2 * size - 1).evict().unwrap().removed, 1);
    assert!(!root.join(file(0)).exists());
    assert!(root.join(file(2)).exists());
    assert_eq!(
        open(0).evict().unwrap(),
        Eviction {
            removed: 1,
            removed_bytes: size,
            kept_bytes: 0
        }
    );
    assert_eq!(names(&root).len(), 3, "{:?}", names(&root));
}

#[test]
fn eviction_skips_a_segment_removed_meanwhile() {
    let dir = tempfile::tempdir().unwrap();
    let cache = SegmentCache::open(dir.path(), 0).unwrap();
    let key = SegmentKey::new("/nix/store/x-a", "sha256-AAAA", "");
    cache.store(&key, &[], &segment(&[1])).unwrap();
    fs::remove_file(cache.file(&key)).unwrap();
    assert_eq!(
        cache.evict().unwrap(),
        Eviction {
            removed: 0,
            removed_bytes: 0,
            kept_bytes: 0
        }
    );
}

#[test]
fn sizes_are_bytes_or_powers_of_1024() {
    for (text, bytes) in [
        ("0", 0),
        ("4096", 4096),
        ("1K", 1024),
        ("1k", 1024),
        ("500M", 500 << 20),
        ("10G", 10 << 30),
        ("2T", 2 << 40),
        ("16777215T", 16_777_215 << 40),
    ] {
        assert_eq!(parse_size(text), Ok(bytes), "{text}");
    }
    for text in ["", "G", "1.5G", "-1", "10 G", "10GB", "10X", "ten", " 1"] {
        assert_eq!(parse_size(text), Err(BadSize::NotASize), "{text:?}");
    }
    for text in ["16777216T", "18446744073709551616"] {
        assert_eq!(parse_size(text), Err(BadSize::TooLarge), "{text}");
    }
}

#[test]
fn only_gzip_and_a_directory_are_usable() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    fs::write(&file, b"").unwrap();
    assert!(SegmentCache::check_usable(dir.path(), Compression::Gzip).is_ok());
    assert!(SegmentCache::check_usable(&dir.path().join("new"), Compression::Gzip).is_ok());
    assert_eq!(
        SegmentCache::check_usable(&file, Compression::Gzip)
            .unwrap_err()
            .to_string(),
        format!("cache directory {} is not a directory", file.display())
    );
    for compression in [Compression::Xz, Compression::Zstd, Compression::None] {
        let err = SegmentCache::check_usable(dir.path(), compression).unwrap_err();
        assert!(err.to_string().ends_with(compression.name()), "{err}");
    }
    // open creates the directory, and fails naming it when it cannot.
    assert!(SegmentCache::open(&dir.path().join("a/b"), 0).is_ok());
    let under_file = file.join("cache");
    let err = SegmentCache::open(&under_file, 0).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!("cache directory {}: ", under_file.display())),
        "{err}"
    );
    assert_eq!(
        SegmentCache::open(&file, 0).unwrap_err().to_string(),
        format!(
            "cache directory {}: Not a directory (os error 20)",
            file.display()
        )
    );
}
