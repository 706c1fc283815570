//! How two members compare: their header fields, and their contents,
//! streamed in step from both sides or as kept for pairing, down to the
//! first differing byte (or 64 KiB block), with a unified diff of small
//! text files.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::side::{self, Content, SideStream};
use super::{FieldChange, MAX_TEXT_DIFF_BYTES};
use crate::archive::{header_field_at, Member};
use crate::archive::{ArchiveError, ReadError};
use crate::inspect::walk::ArchiveWalkError;
use crate::inspect::InspectError;
use crate::tar::MemberKind;

/// Of the fields given as `(name, A's text, B's text)`, those that differ.
pub(super) fn changed_fields<const N: usize>(
    fields: [(&str, String, String); N],
) -> Vec<FieldChange> {
    fields
        .into_iter()
        .filter(|(_, x, y)| x != y)
        .map(|(field, a, b)| FieldChange {
            field: field.to_owned(),
            a,
            b,
        })
        .collect()
}

/// The header fields that differ between two members of the same name:
/// the decoded fields, else the first raw header byte that differs (the
/// checksum aside), else the name's spelling.
pub(super) fn header_changes(a: &Member, b: &Member) -> Vec<FieldChange> {
    // The common case, cheaply: the same header and the same overrides.
    if a.header_block == b.header_block
        && a.raw_name == b.raw_name
        && a.link_target == b.link_target
        && (a.size, a.uid, a.gid, a.mtime) == (b.size, b.uid, b.gid, b.mtime)
    {
        return Vec::new();
    }
    // Quoted but not escaped: the JSON keeps the exact text, the text
    // report escapes it.
    let text = |bytes: &[u8]| format!("\"{}\"", String::from_utf8_lossy(bytes));
    let fields: [(&str, String, String); 9] = [
        ("typeflag", a.kind.describe(), b.kind.describe()),
        ("mode", format!("{:04o}", a.mode), format!("{:04o}", b.mode)),
        ("uid", a.uid.to_string(), b.uid.to_string()),
        ("gid", a.gid.to_string(), b.gid.to_string()),
        ("size", a.size.to_string(), b.size.to_string()),
        ("mtime", a.mtime.to_string(), b.mtime.to_string()),
        ("linkname", text(&a.link_target), text(&b.link_target)),
        ("uname", text(&a.user_name), text(&b.user_name)),
        ("gname", text(&a.group_name), text(&b.group_name)),
    ];
    let changes = changed_fields(fields);
    if !changes.is_empty() {
        return changes;
    }
    let raw_difference = (0..a.header_block.len())
        .filter(|&i| !(148..156).contains(&i))
        .find(|&i| a.header_block[i] != b.header_block[i]);
    if let Some(offset) = raw_difference {
        return vec![FieldChange {
            field: header_field_at(offset).to_owned(),
            a: format!("byte {offset} 0x{:02x}", a.header_block[offset]),
            b: format!("byte {offset} 0x{:02x}", b.header_block[offset]),
        }];
    }
    if a.raw_name != b.raw_name {
        return vec![FieldChange {
            field: "name".to_owned(),
            a: text(&a.raw_name),
            b: text(&b.raw_name),
        }];
    }
    Vec::new()
}

/// How two members' contents compare.
pub(super) struct ContentComparison {
    pub detail: Option<String>,
    pub unified_diff: Option<String>,
}

/// Which of the two archives an error is in.
pub(super) enum Side {
    A,
    B,
}

/// Reads two members' contents in step and reports where they part, and
/// a unified diff when both are small text files.
pub(super) fn compare_streams(
    (side_a, a): (&mut SideStream, &Member),
    (side_b, b): (&mut SideStream, &Member),
) -> Result<ContentComparison, (Side, ArchiveWalkError)> {
    let keep_text = a.kind == MemberKind::Regular
        && b.kind == MemberKind::Regular
        && a.size <= MAX_TEXT_DIFF_BYTES
        && b.size <= MAX_TEXT_DIFF_BYTES;
    let (mut text_a, mut text_b) = (Vec::new(), Vec::new());
    // Bytes read but not yet compared, on one side at most.
    let (mut rest_a, mut rest_b): (Vec<u8>, Vec<u8>) = (Vec::new(), Vec::new());
    let (mut done_a, mut done_b) = (false, false);
    let mut position: u64 = 0;
    let mut detail = None;
    loop {
        let from_a = !done_a && (done_b || rest_a.len() <= rest_b.len());
        if from_a {
            match side_a.next_chunk().map_err(|e| (Side::A, e))? {
                Some(chunk) => {
                    if keep_text {
                        text_a.extend_from_slice(&chunk);
                    }
                    if detail.is_none() {
                        append(&mut rest_a, chunk);
                    }
                }
                None => done_a = true,
            }
        } else if !done_b {
            match side_b.next_chunk().map_err(|e| (Side::B, e))? {
                Some(chunk) => {
                    if keep_text {
                        text_b.extend_from_slice(&chunk);
                    }
                    if detail.is_none() {
                        append(&mut rest_b, chunk);
                    }
                }
                None => done_b = true,
            }
        } else {
            break;
        }
        if detail.is_some() {
            continue;
        }
        let common = rest_a.len().min(rest_b.len());
        if rest_a[..common] != rest_b[..common] {
            let i = (0..common)
                .find(|&i| rest_a[i] != rest_b[i])
                .expect("they differ");
            detail = Some(format!(
                "first differing byte at offset {} of {} (0x{:02x} in A, 0x{:02x} in B)",
                position + i as u64,
                a.size,
                rest_a[i],
                rest_b[i]
            ));
            rest_a = Vec::new();
            rest_b = Vec::new();
            continue;
        }
        position += common as u64;
        rest_a.drain(..common);
        rest_b.drain(..common);
    }
    if detail.is_none() && rest_a.len() != rest_b.len() {
        detail = Some(format!(
            "one is a prefix of the other: they part at offset {position} ({} bytes in A, {} in B)",
            a.size, b.size
        ));
    }
    let unified_diff = match (&detail, keep_text) {
        (Some(_), true) => unified_diff(&text_a, &text_b, &b.display_path()),
        _ => None,
    };
    Ok(ContentComparison {
        detail,
        unified_diff,
    })
}

/// Appends a chunk to bytes not yet compared (taking it when there are none).
fn append(rest: &mut Vec<u8>, chunk: Vec<u8>) {
    if rest.is_empty() {
        *rest = chunk;
    } else {
        rest.extend_from_slice(&chunk);
    }
}

/// Where two contents part, and a unified diff when both are small text
/// files. Equal block digests are equal contents.
pub(super) fn compare_content(
    (a, size_a): (&Content, u64),
    (b, size_b): (&Content, u64),
    regular: bool,
    name: &str,
) -> ContentComparison {
    let detail = match (a, b) {
        (Content::None, Content::None) => None,
        (Content::Bytes(x), Content::Bytes(y)) => bytes_detail(x, y, size_a, size_b),
        (x, y) => blocks_detail(
            &x.clone().into_blocks(),
            &y.clone().into_blocks(),
            size_a,
            size_b,
        ),
    };
    let unified_diff = match (&detail, a, b) {
        (Some(_), Content::Bytes(x), Content::Bytes(y)) if regular => unified_diff(x, y, name),
        _ => None,
    };
    ContentComparison {
        detail,
        unified_diff,
    }
}

/// Where two small contents part.
fn bytes_detail(a: &[u8], b: &[u8], size_a: u64, size_b: u64) -> Option<String> {
    if a == b {
        return None;
    }
    let common = a.len().min(b.len());
    match (0..common).find(|&i| a[i] != b[i]) {
        Some(i) => Some(format!(
            "first differing byte at offset {i} of {size_a} (0x{:02x} in A, 0x{:02x} in B)",
            a[i], b[i]
        )),
        None => Some(format!(
            "one is a prefix of the other: they part at offset {common} ({size_a} bytes in A, {size_b} in B)"
        )),
    }
}

/// Where two larger contents part, to the block.
fn blocks_detail(a: &Content, b: &Content, size_a: u64, size_b: u64) -> Option<String> {
    let (Content::Blocks(x), Content::Blocks(y)) = (a, b) else {
        return (a != b).then(|| "one has content, the other none".to_owned());
    };
    if x == y && size_a == size_b {
        return None;
    }
    let block = side::BLOCK as u64;
    Some(match x.iter().zip(y).position(|(p, q)| p != q) {
        Some(i) => format!(
            "they part in the 64 KiB block at offset {} of {size_a} (its SHA-256 differs; {size_a} bytes in A, {size_b} in B)",
            i as u64 * block
        ),
        None => format!(
            "one is a prefix of the other: they part at offset {} ({size_a} bytes in A, {size_b} in B)",
            size_a.min(size_b)
        ),
    })
}

/// A unified diff of two texts (UTF-8 without NUL bytes), or `None` for
/// binary content.
fn unified_diff(a: &[u8], b: &[u8], name: &str) -> Option<String> {
    let text = |bytes: &[u8]| {
        std::str::from_utf8(bytes)
            .ok()
            .filter(|text| !text.contains('\0'))
            .map(str::to_owned)
    };
    let (a, b) = (text(a)?, text(b)?);
    let diff = similar::TextDiff::from_lines(&a, &b);
    Some(
        diff.unified_diff()
            .context_radius(3)
            .header(&format!("A{name}"), &format!("B{name}"))
            .to_string(),
    )
}

/// Whether `a` and `b` are regular files of the same size, looked at
/// before they are opened (a FIFO is opened once, by its reader).
pub(super) fn same_size(a: &Path, b: &Path) -> bool {
    let size = |path: &Path| {
        std::fs::metadata(path)
            .ok()
            .filter(|m| m.is_file())
            .map(|m| m.len())
    };
    matches!((size(a), size(b)), (Some(x), Some(y)) if x == y)
}

/// Whether two files hold the same bytes (their sizes first; reading stops
/// where they part). Standard input, FIFOs and other streams are not
/// compared.
pub(super) fn same_bytes(a: &Path, b: &Path) -> Result<bool, InspectError> {
    let open = |path: &Path| {
        File::open(path).map_err(|source| {
            InspectError::Archive(ReadError::new(path, ArchiveError::Open { source }))
        })
    };
    if !same_size(a, b) {
        return Ok(false);
    }
    let (mut file_a, mut file_b) = (open(a)?, open(b)?);
    const CHUNK: usize = 1 << 20;
    let (mut chunk_a, mut chunk_b) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
    let mut read = 0u64;
    loop {
        let n = fill(&mut file_a, &mut chunk_a, a, read)?;
        let m = fill(&mut file_b, &mut chunk_b, b, read)?;
        if n != m || chunk_a[..n] != chunk_b[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
        read += n as u64;
    }
}

/// Reads until `buffer` is full or the file ends.
fn fill(
    file: &mut File,
    buffer: &mut [u8],
    path: &Path,
    offset: u64,
) -> Result<usize, InspectError> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(source) => {
                return Err(InspectError::Archive(ReadError::new(
                    path,
                    ArchiveError::Read {
                        offset: offset + filled as u64,
                        source,
                    },
                )))
            }
        }
    }
    Ok(filled)
}
