//! Reading closure files (placeholder until the reader lands).
use super::{Closure, ClosureError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClosureFormat {}

pub fn read_closure(
    _bytes: &[u8],
    _source_name: &str,
    _store_dir: &str,
) -> Result<(Closure, ClosureFormat), ClosureError> {
    unimplemented!()
}
impl std::fmt::Display for ClosureFormat {
    fn fmt(&self, _f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {}
    }
}
