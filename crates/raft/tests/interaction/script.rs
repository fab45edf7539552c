//! The script format of `testdata/` (see the harness docs in `main.rs`): parsing a file into
//! blocks, writing it back with the actual output (`REWRITE=1`), and the diff shown when a
//! block's output differs.

use std::fmt::Write as _;
use std::path::Path;

pub(crate) enum Item {
    /// A comment or blank line between blocks, kept verbatim.
    Verbatim(String),
    Block {
        line: usize,
        command: String,
        expected: Vec<String>,
    },
}

pub(crate) fn parse_script(path: &Path, text: &str) -> Vec<Item> {
    let lines: Vec<&str> = text.lines().collect();
    let mut items = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        if l.trim().is_empty() || l.starts_with('#') {
            items.push(Item::Verbatim(l.to_string()));
            i += 1;
            continue;
        }
        let line = i + 1;
        assert!(
            lines.get(i + 1) == Some(&"----"),
            "{}:{line}: command {l:?} must be followed by a line \"----\"",
            path.display()
        );
        i += 2;
        let mut expected = Vec::new();
        while i < lines.len() && !lines[i].trim().is_empty() {
            expected.push(lines[i].to_string());
            i += 1;
        }
        // The blank line that ends the block belongs to it.
        i += 1;
        items.push(Item::Block { line, command: l.to_string(), expected });
    }
    items
}

pub(crate) fn render_script(items: &[Item], actual: &[Vec<String>]) -> String {
    let mut s = String::new();
    let mut outputs = actual.iter();
    let last = items.len().saturating_sub(1);
    for (i, item) in items.iter().enumerate() {
        match item {
            Item::Verbatim(l) => {
                s.push_str(l);
                s.push('\n');
            }
            Item::Block { command, .. } => {
                s.push_str(command);
                s.push_str("\n----\n");
                for l in outputs.next().expect("an output per block") {
                    s.push_str(l);
                    s.push('\n');
                }
                if i != last {
                    s.push('\n');
                }
            }
        }
    }
    s
}

/// A line diff (longest common subsequence), `-` for expected only, `+` for actual only.
pub(crate) fn diff(expected: &[String], actual: &[String]) -> String {
    let (n, m) = (expected.len(), actual.len());
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if expected[i] == actual[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut s) = (0, 0, String::new());
    while i < n || j < m {
        if i < n && j < m && expected[i] == actual[j] {
            writeln!(s, "   {}", expected[i]).unwrap();
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            writeln!(s, " - {}", expected[i]).unwrap();
            i += 1;
        } else {
            writeln!(s, " + {}", actual[j]).unwrap();
            j += 1;
        }
    }
    s
}
