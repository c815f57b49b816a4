//! Plain-text tables for the terminal: columns padded to their widest cell,
//! two spaces apart, no trailing blanks.

/// `header` and `rows` as aligned lines, each ending in a newline.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let padded: Vec<String> = cells.zip(&widths).map(|(c, w)| format!("{c:w$}")).collect();
        padded.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(&mut header.iter().copied());
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn pads_columns_and_trims_lines() {
        let rows = vec![
            vec!["a".to_string(), "long cell".to_string(), "".to_string()],
            vec!["bbb".to_string(), "x".to_string(), "end".to_string()],
        ];
        assert_eq!(
            super::render(&["H1", "H2", "H3"], &rows),
            "H1   H2         H3\na    long cell\nbbb  x          end\n"
        );
    }
}
