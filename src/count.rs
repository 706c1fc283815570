//! Counts in messages, in the right number: "1 store path", "2 store
//! paths", "0 failures", "3 directories". Every count the tool prints in
//! words goes through [`count`]; JSON keeps bare numbers.

/// `n` and `noun`, the noun in the plural unless `n` is 1.
pub fn count(n: impl TryInto<u64>, noun: &str) -> String {
    let n: u64 = n.try_into().unwrap_or(u64::MAX);
    if n == 1 {
        return format!("1 {noun}");
    }
    format!("{n} {}", plural(noun))
}

/// The English plural of a regular noun (the last word of `noun`).
fn plural(noun: &str) -> String {
    let consonant_y =
        noun.ends_with('y') && !noun[..noun.len() - 1].ends_with(['a', 'e', 'i', 'o', 'u']);
    if consonant_y {
        format!("{}ies", &noun[..noun.len() - 1])
    } else if noun.ends_with(['s', 'x']) || noun.ends_with("ch") || noun.ends_with("sh") {
        format!("{noun}es")
    } else {
        format!("{noun}s")
    }
}

#[cfg(test)]
mod tests {
    use super::count;

    #[test]
    fn one_is_singular_and_the_rest_plural() {
        assert_eq!(count(1u64, "store path"), "1 store path");
        assert_eq!(count(0u64, "store path"), "0 store paths");
        assert_eq!(count(2u32, "failure"), "2 failures");
        assert_eq!(count(3u64, "directory"), "3 directories");
        assert_eq!(count(4u64, "key"), "4 keys");
        assert_eq!(count(5u64, "hard link"), "5 hard links");
        assert_eq!(count(6u64, "match"), "6 matches");
        assert_eq!(
            count(1u64, "error-severity finding"),
            "1 error-severity finding"
        );
    }
}
