//! Files people edit, decoded as UTF-8; a bad byte is reported by its place, never its value
//! (the file may hold secrets).

use std::fmt;

/// Where the first byte that is not UTF-8 is: 1-based line and column (in bytes), and offset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BadByte {
    pub line: usize,
    pub column: usize,
    pub offset: usize,
}

impl fmt::Display for BadByte {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid byte at line {}, column {} (byte offset {})",
            self.line, self.column, self.offset
        )
    }
}

/// `bytes` as text, or the place of the first byte that is not UTF-8.
pub fn utf8(bytes: &[u8]) -> Result<&str, BadByte> {
    std::str::from_utf8(bytes).map_err(|e| {
        let offset = e.valid_up_to();
        let before = &bytes[..offset];
        BadByte {
            line: before.iter().filter(|b| **b == b'\n').count() + 1,
            column: before.iter().rev().take_while(|b| **b != b'\n').count() + 1,
            offset,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_byte_is_placed_by_line_and_column() {
        let err = utf8(b"# a\n[base]\nkey = caf\xe9\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid byte at line 3, column 10 (byte offset 20)"
        );
        assert_eq!(
            utf8(b"\xff").unwrap_err().to_string(),
            "invalid byte at line 1, column 1 (byte offset 0)"
        );
        assert_eq!(utf8("ok é".as_bytes()), Ok("ok é"));
    }
}
