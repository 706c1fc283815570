//! Finding anchors in a member's content as it streams by, chunk by chunk,
//! with results that do not depend on where the chunks break.
//!
//! Each [`Searcher`] is one Aho-Corasick automaton (leftmost-longest, so the
//! SIMD "Teddy" prefilter applies) over a set of anchors. The automaton only
//! says where the next anchor starts; every anchor that starts at that
//! position is then checked by a plain comparison, and the search resumes one
//! byte further on. So every occurrence of every anchor is a candidate,
//! overlapping ones included.
//!
//! A position is examined only once every anchor starting there is wholly
//! visible (or the member has ended); the bytes not yet examined, plus
//! [`LOOKBEHIND`] bytes before them and any candidate still waiting for
//! [`LOOKAHEAD`] bytes, are kept for the next chunk. That is the only state
//! carried across chunks, and it is bounded.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, Input, MatchKind};

use super::detect::{
    is_word_byte, validate, Around, Context, Detector, Family, Verdict, LOOKAHEAD, LOOKBEHIND,
};

/// What an anchor stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AnchorKind {
    Builtin(Family),
    /// A `--pattern` literal, matched exactly anywhere.
    Pattern,
    /// A `--identifier`, matched case-insensitively at word boundaries.
    Identifier,
    /// The value of the named sensitive environment variable, matched
    /// exactly anywhere; its excerpt names the variable, never the value.
    EnvironmentValue(std::sync::Arc<str>),
}

/// One automaton and the anchors it finds.
#[derive(Debug)]
pub struct Searcher {
    automaton: AhoCorasick,
    anchors: Vec<(Vec<u8>, AnchorKind)>,
    case_insensitive: bool,
    longest: usize,
}

impl Searcher {
    pub fn new(
        anchors: Vec<(Vec<u8>, AnchorKind)>,
        case_insensitive: bool,
    ) -> Result<Self, aho_corasick::BuildError> {
        let automaton = AhoCorasickBuilder::new()
            .match_kind(MatchKind::LeftmostLongest)
            .ascii_case_insensitive(case_insensitive)
            .build(anchors.iter().map(|(bytes, _)| bytes))?;
        let longest = anchors
            .iter()
            .map(|(bytes, _)| bytes.len())
            .max()
            .unwrap_or(1);
        Ok(Searcher {
            automaton,
            anchors,
            case_insensitive,
            longest,
        })
    }

    fn anchors_at<'s>(
        &'s self,
        haystack: &'s [u8],
    ) -> impl Iterator<Item = (usize, &'s (Vec<u8>, AnchorKind))> + 's {
        self.anchors
            .iter()
            .enumerate()
            .filter(move |(_, (bytes, _))| {
                haystack.len() >= bytes.len()
                    && if self.case_insensitive {
                        haystack[..bytes.len()].eq_ignore_ascii_case(bytes)
                    } else {
                        haystack.starts_with(bytes)
                    }
            })
    }
}

/// A validated match inside one member's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub offset: u64,
    pub len: u64,
    pub detector: Detector,
    /// The redacted text of the match.
    pub excerpt: String,
}

/// An anchor occurrence waiting for more bytes.
#[derive(Debug, Clone, Copy)]
struct Candidate {
    offset: u64,
    searcher: usize,
    anchor: usize,
}

/// The scan state of one member's byte stream.
#[derive(Debug, Default)]
pub struct Stream {
    /// Bytes kept from earlier chunks, starting at offset `kept_start`.
    kept: Vec<u8>,
    kept_start: u64,
    /// Per searcher: the first offset not examined yet.
    resume: Vec<u64>,
    pending: Vec<Candidate>,
}

impl Stream {
    pub fn new() -> Self {
        Stream::default()
    }

    /// Scans the next chunk of the member.
    pub fn feed(
        &mut self,
        searchers: &[Searcher],
        chunk: &[u8],
        context: Context,
        hits: &mut Vec<Hit>,
    ) {
        if self.resume.len() != searchers.len() {
            self.resume = vec![0; searchers.len()];
        }
        if self.kept.is_empty() {
            // The usual case (a member's first chunk): scan it in place.
            let start = self.kept_start;
            let keep_from = self.process(searchers, chunk, start, false, context, hits);
            let keep = (keep_from - start) as usize;
            self.kept.extend_from_slice(&chunk[keep..]);
            self.kept_start = keep_from;
        } else {
            let mut window = std::mem::take(&mut self.kept);
            window.extend_from_slice(chunk);
            let start = self.kept_start;
            let keep_from = self.process(searchers, &window, start, false, context, hits);
            window.drain(..(keep_from - start) as usize);
            self.kept = window;
            self.kept_start = keep_from;
        }
    }

    /// Scans what is left at the member's end and resets for the next one.
    pub fn finish(&mut self, searchers: &[Searcher], context: Context, hits: &mut Vec<Hit>) {
        if self.resume.len() != searchers.len() {
            self.resume = vec![0; searchers.len()];
        }
        let window = std::mem::take(&mut self.kept);
        self.process(searchers, &window, self.kept_start, true, context, hits);
        *self = Stream {
            kept: window,
            ..Stream::default()
        };
        self.kept.clear();
    }

    /// Scans a whole member (a name or a link target) at once.
    pub fn scan_all(searchers: &[Searcher], bytes: &[u8], context: Context, hits: &mut Vec<Hit>) {
        let mut stream = Stream::new();
        stream.resume = vec![0; searchers.len()];
        stream.process(searchers, bytes, 0, true, context, hits);
    }

    /// Examines `window` (the member's bytes from offset `start`) and
    /// returns the offset from which bytes must be kept.
    fn process(
        &mut self,
        searchers: &[Searcher],
        window: &[u8],
        start: u64,
        at_end: bool,
        context: Context,
        hits: &mut Vec<Hit>,
    ) -> u64 {
        let end = start + window.len() as u64;
        let waiting = std::mem::take(&mut self.pending);
        for candidate in waiting {
            self.examine(searchers, window, start, at_end, candidate, context, hits);
        }
        for (index, searcher) in searchers.iter().enumerate() {
            let limit = if at_end {
                end
            } else {
                end.saturating_sub(searcher.longest as u64 - 1)
            };
            let mut position = self.resume[index].max(start);
            while position < limit {
                let from = (position - start) as usize;
                let Some(found) = searcher
                    .automaton
                    .find(Input::new(window).span(from..window.len()))
                else {
                    break;
                };
                let offset = start + found.start() as u64;
                if offset >= limit {
                    break;
                }
                for (anchor, _) in searcher.anchors_at(&window[found.start()..]) {
                    let candidate = Candidate {
                        offset,
                        searcher: index,
                        anchor,
                    };
                    self.examine(searchers, window, start, at_end, candidate, context, hits);
                }
                position = offset + 1;
            }
            self.resume[index] = self.resume[index].max(limit);
        }
        let oldest = self
            .pending
            .iter()
            .map(|c| c.offset)
            .chain(self.resume.iter().copied())
            .min()
            .unwrap_or(end);
        oldest.saturating_sub(LOOKBEHIND as u64).clamp(start, end)
    }

    #[allow(clippy::too_many_arguments)]
    fn examine(
        &mut self,
        searchers: &[Searcher],
        window: &[u8],
        start: u64,
        at_end: bool,
        candidate: Candidate,
        context: Context,
        hits: &mut Vec<Hit>,
    ) {
        let at = (candidate.offset - start) as usize;
        let after_end = window.len().min(at + LOOKAHEAD);
        let around = Around {
            before: &window[at.saturating_sub(LOOKBEHIND)..at],
            after: &window[at..after_end],
            at_end: at_end && after_end == window.len(),
        };
        let (anchor, kind) = &searchers[candidate.searcher].anchors[candidate.anchor];
        let verdict = match kind {
            AnchorKind::Builtin(family) => validate(*family, anchor.len(), &around, context),
            AnchorKind::Pattern => Verdict::Found {
                detector: Detector::Pattern,
                len: anchor.len(),
            },
            AnchorKind::EnvironmentValue(_) => Verdict::Found {
                detector: Detector::Environment,
                len: anchor.len(),
            },
            AnchorKind::Identifier => {
                let starts_word = around.before.last().map_or(true, |&b| !is_word_byte(b));
                match around.after.get(anchor.len()) {
                    None if !around.at_end => Verdict::NeedMore,
                    next if starts_word && next.map_or(true, |&b| !is_word_byte(b)) => {
                        Verdict::Found {
                            detector: Detector::Identifier,
                            len: anchor.len(),
                        }
                    }
                    _ => Verdict::NotFound,
                }
            }
        };
        match verdict {
            Verdict::Found { detector, len } => hits.push(Hit {
                offset: candidate.offset,
                len: len as u64,
                detector,
                excerpt: match kind {
                    AnchorKind::EnvironmentValue(name) => super::report::environment_excerpt(name),
                    // A literal longer than the look-ahead is shown by its
                    // start; redaction hides all but a few bytes anyway.
                    _ => super::report::redact(
                        detector,
                        anchor.len(),
                        &around.after[..len.min(around.after.len())],
                    ),
                },
            }),
            Verdict::NotFound => {}
            Verdict::NeedMore => self.pending.push(candidate),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn searchers() -> Vec<Searcher> {
        let builtin = super::super::detect::BUILTIN_ANCHORS
            .iter()
            .map(|(a, f)| (a.as_bytes().to_vec(), AnchorKind::Builtin(*f)))
            .chain([(b"hunter2".to_vec(), AnchorKind::Pattern)])
            .collect();
        vec![
            Searcher::new(builtin, false).unwrap(),
            Searcher::new(vec![(b"tim".to_vec(), AnchorKind::Identifier)], true).unwrap(),
        ]
    }

    fn scan_in_chunks(data: &[u8], sizes: &[usize]) -> Vec<Hit> {
        let searchers = searchers();
        let context = Context {
            is_content: true,
            authorized_keys_file: false,
        };
        let mut stream = Stream::new();
        let mut hits = Vec::new();
        let mut rest = data;
        let mut i = 0;
        while !rest.is_empty() {
            let n = sizes[i % sizes.len()].min(rest.len());
            stream.feed(&searchers, &rest[..n], context, &mut hits);
            rest = &rest[n..];
            i += 1;
        }
        stream.finish(&searchers, context, &mut hits);
        hits
    }

    #[test]
    fn findings_do_not_depend_on_chunk_boundaries() {
        let mut data = Vec::new();
        data.extend_from_slice(b"Tim wrote this at time t; TIM. ");
        data.extend_from_slice(b"token=ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8\n");
        data.extend_from_slice(&vec![b'.'; 700]);
        data.extend_from_slice(b"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtz\n");
        data.extend_from_slice(b"AKIAZ7Q3MPLW2XKD4RT6 hunter2hunter2 tim");
        let mut whole = scan_in_chunks(&data, &[data.len()]);
        whole.sort_by_key(|h| (h.offset, h.detector));
        let detectors: Vec<_> = whole.iter().map(|h| h.detector.name()).collect();
        assert_eq!(
            detectors,
            [
                "identifier",
                "identifier",
                "github-token",
                "openssh-private-key",
                "aws-access-key-id",
                "pattern",
                "pattern",
                "identifier"
            ]
        );
        for sizes in [&[1][..], &[2, 3], &[7], &[64, 1], &[100, 13, 511]] {
            let mut hits = scan_in_chunks(&data, sizes);
            hits.sort_by_key(|h| (h.offset, h.detector));
            assert_eq!(hits, whole, "chunk sizes {sizes:?}");
        }
    }

    #[test]
    fn kept_bytes_stay_bounded() {
        let searchers = searchers();
        let context = Context::default();
        let mut stream = Stream::new();
        let mut hits = Vec::new();
        for _ in 0..100 {
            stream.feed(&searchers, &[b'x'; 4096], context, &mut hits);
            assert!(
                stream.kept.len() <= LOOKBEHIND + LOOKAHEAD + 64,
                "{}",
                stream.kept.len()
            );
        }
    }
}
