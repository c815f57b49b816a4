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
    // Padded by hand: `format!("{c:w$}")` panics on widths over 65,535
    // (a long snapshot stderr line in a cell).
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let padded: Vec<String> = cells
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w.saturating_sub(c.chars().count()))))
            .collect();
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

    #[test]
    fn a_cell_wider_than_any_format_width_does_not_panic() {
        let long = "x".repeat(70_000);
        let out = super::render(&["A", "B"], &[vec![long.clone(), "b".into()]]);
        assert_eq!(out.lines().nth(1).unwrap(), format!("{long}  b"));
    }
}
