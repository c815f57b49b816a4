//! Timestamps as the logs write them: `date`'s `Wed Jan  4 16:30:35 EST 2017`
//! (the hooks since 0.2 add the offset: `Wed Jan  4 16:30:35 EST -0500 2017`)
//! and Caché/IRIS's zone-less local `08/11/2021 05:49:43`. Returned as
//! milliseconds since the epoch: a numeric offset wins, else a known zone
//! abbreviation, else UTC; a LogFile time is shifted by the offset its
//! caller knows (the hook's line before ExternalFreeze).

use jiff::civil::DateTime;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Hours east of UTC for the abbreviations `date` commonly prints.
fn zone_offset(abbreviation: &str) -> Option<i64> {
    Some(match abbreviation {
        "UTC" | "GMT" | "Z" | "WET" => 0,
        "BST" | "CET" | "WEST" => 1,
        "CEST" | "EET" => 2,
        "EEST" | "MSK" => 3,
        "EST" | "CDT" => -5,
        "EDT" => -4,
        "CST" | "MDT" => -6,
        "MST" => -7,
        "PDT" => -7,
        "PST" => -8,
        "JST" => 9,
        "AEST" => 10,
        "AEDT" => 11,
        _ => return None,
    })
}

fn to_ms(dt: DateTime, offset_minutes: i64) -> Option<u64> {
    let utc = jiff::tz::TimeZone::UTC
        .to_timestamp(dt)
        .ok()?
        .as_millisecond()
        - offset_minutes * 60_000;
    u64::try_from(utc).ok()
}

fn hms(text: &str) -> Option<(i8, i8, i8)> {
    let mut parts = text.split(':');
    let h = parts.next()?.parse().ok()?;
    let m = parts.next()?.parse().ok()?;
    let s = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((h, m, s))
}

/// The longest date prefix looked for (`date` writes about 30 bytes).
const DATE_PREFIX_MAX: usize = 80;

/// `Wed Jan  4 16:30:35 EST 2017: message` → (ms, message). The zone may be
/// missing (`Wed Jan 4 16:30:35 2017: …`).
pub fn split_date_line(line: &str) -> Option<(u64, &str)> {
    split_dated(line).map(|(ms, _, message)| (ms, message))
}

/// Like `split_date_line`, with the UTC offset in minutes the line states
/// (numeric, or a known abbreviation), if it states one.
pub fn split_dated(line: &str) -> Option<(u64, Option<i64>, &str)> {
    // The date ends at the first ": " after a four-digit year, within the
    // first DATE_PREFIX_MAX bytes: a date is short, and looking further made
    // long lines (a 480 KB stderr line) quadratic.
    let mut window = line.len().min(DATE_PREFIX_MAX);
    while !line.is_char_boundary(window) {
        window -= 1;
    }
    let head_window = &line[..window];
    let mut search = 0;
    while let Some(found) = head_window[search..].find(": ") {
        let end = search + found;
        let head = &line[..end];
        let tokens: Vec<&str> = head.split_whitespace().collect();
        if tokens.len() >= 5
            && tokens
                .last()
                .is_some_and(|y| y.len() == 4 && y.bytes().all(|b| b.is_ascii_digit()))
            && let Some((ms, offset)) = parse_date_tokens(&tokens)
        {
            return Some((ms, offset, &line[end + 2..]));
        }
        search = end + 2;
        if search >= head_window.len() {
            break;
        }
    }
    None
}

fn parse_date_tokens(tokens: &[&str]) -> Option<(u64, Option<i64>)> {
    let (month, day, time, zones, year) = match tokens {
        [_, month, day, time, zone, numeric, year] => {
            (month, day, time, vec![*numeric, *zone], year)
        }
        [_, month, day, time, zone, year] => (month, day, time, vec![*zone], year),
        [_, month, day, time, year] => (month, day, time, Vec::new(), year),
        _ => return None,
    };
    let month = MONTHS.iter().position(|m| m == month)? as i8 + 1;
    let day: i8 = day.parse().ok()?;
    let year: i16 = year.parse().ok()?;
    let (h, m, s) = hms(time)?;
    let dt = DateTime::new(year, month, day, h, m, s, 0).ok()?;
    // The numeric offset first: abbreviations are ambiguous (CST) or unknown.
    let offset = zones
        .iter()
        .find_map(|z| numeric_offset(z).or_else(|| zone_offset(z).map(|h| h * 60)));
    Some((to_ms(dt, offset.unwrap_or(0))?, offset))
}

/// `-0500` / `+0530` → minutes east of UTC.
fn numeric_offset(text: &str) -> Option<i64> {
    let (sign, digits) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let hours: i64 = digits[..2].parse().ok()?;
    let minutes: i64 = digits[2..].parse().ok()?;
    (hours <= 14 && minutes < 60).then_some(sign * (hours * 60 + minutes))
}

/// `08/11/2021 05:49:43: message` (Caché/IRIS, zone-less local time, read
/// as UTC: shift it by the VM's offset) → (ms, message).
pub fn split_cache_line(line: &str) -> Option<(u64, &str)> {
    let date = line.get(..10)?;
    let time = line.get(11..19)?;
    let rest = line.get(19..)?.strip_prefix(": ")?;
    if line.as_bytes().get(10) != Some(&b' ') {
        return None;
    }
    let mut parts = date.split('/');
    let month: i8 = parts.next()?.parse().ok()?;
    let day: i8 = parts.next()?.parse().ok()?;
    let year: i16 = parts.next()?.parse().ok()?;
    let (h, m, s) = hms(time)?;
    let dt = DateTime::new(year, month, day, h, m, s, 0).ok()?;
    Some((to_ms(dt, 0)?, rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_line_is_read_in_linear_time() {
        // 8 MiB of ": " after a date: each used to re-read everything before it.
        let line = format!(
            "Wed Jan 4 16:30:35 EST 2017: {}",
            ": x".repeat((8 << 20) / 3)
        );
        let started = std::time::Instant::now();
        assert!(split_date_line(&line).is_some());
        let junk = ": y".repeat((8 << 20) / 3);
        assert!(split_date_line(&junk).is_none());
        // Not a timed assertion (benchmarks own speed); docs/benchmarks.md
        // keeps the figure. Quadratic, this test took minutes.
        eprintln!("two 8 MiB lines read in {:?}", started.elapsed());
    }

    #[test]
    fn reads_both_date_styles() {
        let (a, msg) =
            split_date_line("Wed Jan 4 16:30:35 EST 2017: Attempting to freeze H20152").unwrap();
        assert_eq!(msg, "Attempting to freeze H20152");
        let (b, _) = split_date_line("Wed Jan  4 21:30:35 UTC 2017: x").unwrap();
        assert_eq!(a, b, "EST is UTC-5");
        let (c, msg) = split_cache_line(
            "08/11/2021 05:49:43: Backup.General.ExternalFreeze: Suspending system",
        )
        .unwrap();
        assert_eq!(msg, "Backup.General.ExternalFreeze: Suspending system");
        let (d, _) = split_cache_line("08/11/2021 05:49:54: x").unwrap();
        assert_eq!(d - c, 11_000);
        assert!(split_date_line("Journal file switched to:").is_none());
        // The hooks' own form: zone and offset; the offset wins.
        let (e, offset, msg) =
            split_dated("Wed Jan  4 16:30:35 EST -0500 2017: Attempting to freeze X").unwrap();
        assert_eq!((e, offset, msg), (a, Some(-300), "Attempting to freeze X"));
        let (f, offset, _) = split_dated("Wed Jan  4 22:00:35 IST +0530 2017: x").unwrap();
        // 22:00:35 +0530 is 16:30:35 UTC, five hours before 16:30:35 EST.
        assert_eq!((f + 5 * 3_600_000, offset), (a, Some(330)));
        assert!(split_cache_line("offset 262272 of /iris/journal1/20210811.003").is_none());
    }

    proptest::proptest! {
        #[test]
        fn never_panic(line in "\\PC{0,80}") {
            let _ = split_date_line(&line);
            let _ = split_cache_line(&line);
        }

        #[test]
        fn never_panic_on_datelike_text(line in "[A-Za-z]{3} [A-Za-z]{3} {1,2}[0-9]{1,2} [0-9:]{1,9} [A-Z]{0,4} ?[0-9]{1,5}: .{0,10}") {
            let _ = split_date_line(&line);
        }
    }
}
