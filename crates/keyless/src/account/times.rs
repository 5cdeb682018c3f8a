//! Dates as the token commands print them: az's local `expiresOn`, dates with their
//! zone, and "expires in 59 min" / "expired 3 min ago".

/// Unix seconds now.
pub fn now_unix() -> i64 {
    jiff::Timestamp::now().as_second()
}

/// az's `expiresOn`: local time, `YYYY-MM-DD HH:MM:SS.ffffff` (the fraction is always
/// zero: tokens expire on whole seconds). The zone is the system's (`TZ`, else
/// `/etc/localtime`, else UTC).
pub fn az_local(unix: i64) -> String {
    match jiff::Timestamp::from_second(unix) {
        Ok(ts) => ts
            .to_zoned_datetime(jiff::tz::TimeZone::system())
            .strftime("%Y-%m-%d %H:%M:%S.000000")
            .to_string(),
        Err(_) => unix.to_string(),
    }
}

/// A date for people: local time with its zone, e.g. `2025-01-01 13:00:00 CET`.
pub fn local(unix: i64) -> String {
    match jiff::Timestamp::from_second(unix) {
        Ok(ts) => ts
            .to_zoned_datetime(jiff::tz::TimeZone::system())
            .strftime("%Y-%m-%d %H:%M:%S %Z")
            .to_string(),
        Err(_) => format!("{unix} (out of range)"),
    }
}

/// The same in UTC, ISO 8601 (`2025-01-01T12:00:00Z`).
pub fn utc(unix: i64) -> String {
    match jiff::Timestamp::from_second(unix) {
        Ok(ts) => ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
        Err(_) => format!("{unix} (out of range)"),
    }
}

/// A duration in its largest unit and the next one: `2 d 3 h`, `59 min 12 s`, `1 h`
/// (a zero second unit is left out), `8 s`.
pub fn span(seconds: i64) -> String {
    const UNITS: [(u64, &str); 4] = [(86_400, "d"), (3600, "h"), (60, "min"), (1, "s")];
    let s = seconds.unsigned_abs();
    let major = UNITS
        .iter()
        .position(|(size, _)| s >= *size)
        .unwrap_or(UNITS.len() - 1);
    let Some((size, name)) = UNITS.get(major) else {
        return format!("{s} s");
    };
    let mut out = format!("{} {name}", s / size);
    if let Some((next, next_name)) = UNITS.get(major + 1) {
        let minor = (s % size) / next;
        if minor > 0 {
            out.push_str(&format!(" {minor} {next_name}"));
        }
    }
    out
}

/// How `exp` relates to `now`: `expires in 59 min 12 s` or `expired 3 min ago`.
pub fn expiry(exp: i64, now: i64) -> String {
    if exp > now {
        format!("expires in {}", span(exp - now))
    } else {
        format!("expired {} ago", span(now - exp))
    }
}

/// How another time relates to `now`: `12 s ago`, `in 5 min`, `now`.
pub fn relative(t: i64, now: i64) -> String {
    match t.cmp(&now) {
        std::cmp::Ordering::Less => format!("{} ago", span(now - t)),
        std::cmp::Ordering::Greater => format!("in {}", span(t - now)),
        std::cmp::Ordering::Equal => "now".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_use_two_units() {
        assert_eq!(span(0), "0 s");
        assert_eq!(span(8), "8 s");
        assert_eq!(span(60), "1 min");
        assert_eq!(span(3552), "59 min 12 s");
        assert_eq!(span(3600), "1 h");
        assert_eq!(span(3661), "1 h 1 min");
        assert_eq!(span(2 * 86_400 + 3 * 3600 + 59), "2 d 3 h");
        assert_eq!(span(3601), "1 h");
        assert_eq!(span(86_400 + 59), "1 d");
        assert_eq!(span(-90), "1 min 30 s");
        assert!(!span(i64::MIN).is_empty());
    }

    #[test]
    fn expiry_and_relative_text() {
        assert_eq!(expiry(1000 + 3552, 1000), "expires in 59 min 12 s");
        assert_eq!(expiry(1000 - 180, 1000), "expired 3 min ago");
        assert_eq!(expiry(1000, 1000), "expired 0 s ago");
        assert_eq!(relative(990, 1000), "10 s ago");
        assert_eq!(relative(1300, 1000), "in 5 min");
        assert_eq!(relative(5, 5), "now");
    }

    #[test]
    fn dates_format_in_utc_and_out_of_range_values_do_not_panic() {
        assert_eq!(utc(1_735_732_800), "2025-01-01T12:00:00Z");
        assert!(az_local(1_735_732_800).ends_with(".000000"));
        assert_eq!(az_local(1_735_732_800).len(), 26);
        assert!(local(i64::MAX).contains("out of range"));
        assert_eq!(az_local(i64::MAX), i64::MAX.to_string());
    }
}
