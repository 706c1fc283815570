//! A tar member's type flag: one type for the writer ([`super::append_header`])
//! and the reader (`crate::archive`), as tar-rs has one `EntryType` for both.

/// What a member is, by its tar type flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberKind {
    /// `0`; readers take the old `\0` and the contiguous file `7` as `0`.
    Regular,
    /// `1`: a hard link to an earlier member (its name is the link target).
    HardLink,
    /// `2`
    Symlink,
    /// `3`
    CharDevice,
    /// `4`
    BlockDevice,
    /// `5`
    Directory,
    /// `6`
    Fifo,
    /// `L`: a GNU `././@LongLink` member whose content is the next member's
    /// name.
    GnuLongName,
    /// `K`: a GNU `././@LongLink` member whose content is the next member's
    /// link target.
    GnuLongLink,
    /// `x`: pax records for the next member.
    PaxHeader,
    /// `g`: pax records for every member after it.
    PaxGlobal,
    /// Any other type flag. The reader refuses such members (GNU tar and
    /// bsdtar read them differently); `inspect`'s member table still
    /// stores the kind.
    Other(u8),
}

impl MemberKind {
    /// The kind a header's type flag byte names.
    pub fn from_flag(flag: u8) -> Self {
        match flag {
            b'0' | b'\0' | b'7' => MemberKind::Regular,
            b'1' => MemberKind::HardLink,
            b'2' => MemberKind::Symlink,
            b'3' => MemberKind::CharDevice,
            b'4' => MemberKind::BlockDevice,
            b'5' => MemberKind::Directory,
            b'6' => MemberKind::Fifo,
            b'L' => MemberKind::GnuLongName,
            b'K' => MemberKind::GnuLongLink,
            b'x' => MemberKind::PaxHeader,
            b'g' => MemberKind::PaxGlobal,
            other => MemberKind::Other(other),
        }
    }

    /// The type flag byte the writer puts in a header of this kind.
    pub fn flag(self) -> u8 {
        match self {
            MemberKind::Regular => b'0',
            MemberKind::HardLink => b'1',
            MemberKind::Symlink => b'2',
            MemberKind::CharDevice => b'3',
            MemberKind::BlockDevice => b'4',
            MemberKind::Directory => b'5',
            MemberKind::Fifo => b'6',
            MemberKind::GnuLongName => b'L',
            MemberKind::GnuLongLink => b'K',
            MemberKind::PaxHeader => b'x',
            MemberKind::PaxGlobal => b'g',
            MemberKind::Other(flag) => flag,
        }
    }

    /// A word for messages.
    pub fn describe(&self) -> String {
        match self {
            MemberKind::Regular => "file".into(),
            MemberKind::Directory => "directory".into(),
            MemberKind::Symlink => "symlink".into(),
            MemberKind::HardLink => "hard link".into(),
            MemberKind::CharDevice => "character device".into(),
            MemberKind::BlockDevice => "block device".into(),
            MemberKind::Fifo => "fifo".into(),
            MemberKind::GnuLongName => "GNU long name".into(),
            MemberKind::GnuLongLink => "GNU long link name".into(),
            MemberKind::PaxHeader => "pax header".into(),
            MemberKind::PaxGlobal => "pax global header".into(),
            MemberKind::Other(flag) => format!("type '{}'", char::from(*flag)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_flag_reads_back_as_the_kind_that_writes_it() {
        for flag in 0..=u8::MAX {
            let kind = MemberKind::from_flag(flag);
            match flag {
                // Readers take these as regular files; the writer writes `0`.
                b'\0' | b'7' => assert_eq!(kind.flag(), b'0'),
                _ => assert_eq!(kind.flag(), flag, "flag {flag}"),
            }
        }
    }
}
