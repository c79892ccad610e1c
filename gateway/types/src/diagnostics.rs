//! Problems found in the config or in documents, each tied to a file and a line, so that
//! `penghubung check` and a failed reload can report *all* of them at once.

use std::fmt;
use std::ops::Range;

/// How bad a finding is: errors block a load, warnings are printed only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One finding: where it is and what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    /// File (or store key) the finding is in.
    pub file: String,
    /// 1-based line, 0 when the finding concerns the whole file.
    pub line: usize,
    /// 1-based column, 0 when unknown.
    pub column: usize,
    pub message: String,
}

impl Diagnostic {
    /// An error for the whole file.
    pub fn error(file: impl Into<String>, message: impl Into<String>) -> Self {
        Self { severity: Severity::Error, file: file.into(), line: 0, column: 0, message: message.into() }
    }

    /// An error at a byte offset of `text`.
    pub fn error_at(
        file: impl Into<String>,
        text: &str,
        span: Option<Range<usize>>,
        message: impl Into<String>,
    ) -> Self {
        let (line, column) = span.map(|s| line_column(text, s.start)).unwrap_or((0, 0));
        Self { severity: Severity::Error, file: file.into(), line, column, message: message.into() }
    }

    /// A warning for the whole file.
    pub fn warning(file: impl Into<String>, message: impl Into<String>) -> Self {
        Self { severity: Severity::Warning, ..Self::error(file, message) }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        match (self.line, self.column) {
            (0, _) => write!(f, "{}: {level}: {}", self.file, self.message),
            (line, 0) => write!(f, "{}:{line}: {level}: {}", self.file, self.message),
            (line, column) => write!(f, "{}:{line}:{column}: {level}: {}", self.file, self.message),
        }
    }
}

/// 1-based line and column of a byte offset.
pub fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
    let column = text[line_start..offset].chars().count() + 1;
    (line, column)
}

/// Whether any of the findings is an error.
pub fn has_errors(diagnostics: &[Diagnostic]) -> bool {
    diagnostics.iter().any(Diagnostic::is_error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_map_to_lines_and_columns() {
        let text = "a = 1\nbb = 2\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        assert_eq!(line_column(text, 8), (2, 3));
    }

    #[test]
    fn display_names_file_and_line() {
        let d = Diagnostic::error_at("x.toml", "a\nb", Some(2..3), "bad");
        assert_eq!(d.to_string(), "x.toml:2:1: error: bad");
    }
}
