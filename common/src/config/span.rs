//! Where a parse error is: the dotted field and the line.
//!
//! `toml` reports a byte span. An operator wants `gateway.cores (line 3,
//! column 9)`, so [`parse_error`] parses the text again without types (which
//! recovers from most errors) and walks the tables to the innermost key or
//! array element whose span covers the error.

use super::ConfigError;

/// Turns toml's error into one naming the dotted field and the line.
pub(super) fn parse_error(text: &str, err: &toml::de::Error) -> ConfigError {
    let start = err.span().map_or(0, |s| s.start);
    let (line, column) = line_column(text, start);
    let (root, _) = toml::de::DeTable::parse_recoverable(text);
    let mut field = String::new();
    for segment in table_path(root.get_ref(), start) {
        match segment {
            PathSegment::Key(key) if field.is_empty() => field = key,
            PathSegment::Key(key) => {
                field.push('.');
                field.push_str(&key);
            }
            PathSegment::Index(i) => field.push_str(&format!("[{i}]")),
        }
    }
    ConfigError::Parse {
        field,
        line,
        column,
        message: err.message().trim_end().to_owned(),
    }
}

/// 1-based line and character column of byte offset `at`.
fn line_column(text: &str, at: usize) -> (usize, usize) {
    let mut at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

enum PathSegment {
    Key(String),
    Index(usize),
}

fn covers(span: std::ops::Range<usize>, at: usize) -> bool {
    span.contains(&at) || span.start == at
}

/// The keys leading to the innermost entry of `table` whose key or value
/// covers byte offset `at`; empty if none does.
fn table_path(table: &toml::de::DeTable<'_>, at: usize) -> Vec<PathSegment> {
    let hit = table
        .iter()
        .find(|(key, value)| covers(key.span(), at) || covers(value.span(), at));
    if let Some((key, value)) = hit {
        let mut path = vec![PathSegment::Key(key.get_ref().to_string())];
        path.extend(value_path(value.get_ref(), at));
        return path;
    }
    // Under `[section]` and `[[array.of.tables]]` headers a table's span
    // covers only its header, not its body: look inside each one.
    for (key, value) in table {
        let inner = value_path(value.get_ref(), at);
        if !inner.is_empty() {
            let mut path = vec![PathSegment::Key(key.get_ref().to_string())];
            path.extend(inner);
            return path;
        }
    }
    Vec::new()
}

fn value_path(value: &toml::de::DeValue<'_>, at: usize) -> Vec<PathSegment> {
    let items = match value {
        toml::de::DeValue::Table(table) => return table_path(table, at),
        toml::de::DeValue::Array(items) => items,
        _ => return Vec::new(),
    };
    let hit = items.iter().position(|item| covers(item.span(), at));
    let found = hit
        .map(|i| (i, value_path(items[i].get_ref(), at)))
        .or_else(|| {
            items.iter().enumerate().find_map(|(i, item)| {
                let inner = value_path(item.get_ref(), at);
                (!inner.is_empty()).then_some((i, inner))
            })
        });
    match found {
        Some((i, inner)) => {
            let mut path = vec![PathSegment::Index(i)];
            path.extend(inner);
            path
        }
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_column_counts_characters() {
        assert_eq!(line_column("a = 1\nbé = x", 10), (2, 4));
        assert_eq!(line_column("", 3), (1, 1));
    }
}
