//! INTERIM: replaced by the database writer.
use crate::store::Closure;
#[derive(Debug, thiserror::Error)]
#[error("bad")]
pub struct NixDbError;
pub const SCHEMA_FILE_CONTENTS: &str = "10";
pub fn render_sqlite_db(_c: &Closure, _t: i64) -> Result<Vec<u8>, NixDbError> {
    Ok(Vec::new())
}
pub fn render_registration(_c: &Closure) -> String {
    String::new()
}
