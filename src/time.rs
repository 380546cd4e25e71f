//! Times as users write them (SPEC.md: RFC 3339, a local date-time without
//! offset, or Unix seconds) and as Vigil keeps them (90 kHz units since the
//! Unix epoch). Civil-date arithmetic is done here rather than with a date
//! crate: it is a few lines, and the binary stays small.

/// 90 kHz ticks per second.
pub const TICKS: i64 = 90_000;

/// The process's wall clock now, in 90 kHz units since the Unix epoch:
/// the clock of the index (frames' arrival times, recordings' starts,
/// opens). Before the epoch (a board whose clock is not set yet): 0.
pub fn now_90k() -> i64 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs())
            .unwrap_or(i64::MAX / TICKS)
            .saturating_mul(TICKS)
            .saturating_add(i64::from(d.subsec_nanos()) * 9 / 100_000),
        Err(_) => 0,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (inverse of `days_from_civil`).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `2026-11-21T10:00:00.040Z` for a time in 90 kHz units.
pub fn format_90k(t: i64) -> String {
    let secs = t.div_euclid(TICKS);
    let millis = t.rem_euclid(TICKS) / 90;
    let (y, mo, d) = civil_from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        s / 3600,
        s % 3600 / 60,
        s % 60
    )
}

/// Parses a time as SPEC.md allows, into 90 kHz units since the epoch.
pub fn parse_90k(s: &str) -> Result<i64, String> {
    let s = s.trim();
    let bad = || {
        format!(
            "{s:?} is not a time: use RFC 3339 (2026-11-21T10:00:00Z), a local \
             date-time (2026-11-21T10:00:00) or Unix seconds"
        )
    };
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let secs: i64 = s.parse().map_err(|_| bad())?;
        return secs.checked_mul(TICKS).ok_or_else(bad);
    }
    let b = s.as_bytes();
    if b.len() < 19
        || b[4] != b'-'
        || b[7] != b'-'
        || !(b[10] == b'T' || b[10] == b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad());
    }
    let num = |r: std::ops::Range<usize>| -> Result<i64, String> {
        let part = s.get(r).ok_or_else(bad)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        part.parse::<i64>().map_err(|_| bad())
    };
    let (y, mo, d, h, mi, sec) = (
        num(0..4)?,
        num(5..7)?,
        num(8..10)?,
        num(11..13)?,
        num(14..16)?,
        num(17..19)?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return Err(bad());
    }
    let mut rest = &s[19..];
    let mut frac_90k = 0;
    if let Some(r) = rest.strip_prefix('.') {
        let digits = r.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return Err(bad());
        }
        let mut scaled: i64 = 0;
        let mut scale: i64 = 1;
        for c in r[..digits.min(9)].bytes() {
            scaled = scaled * 10 + i64::from(c - b'0');
            scale *= 10;
        }
        frac_90k = scaled * TICKS / scale;
        rest = &r[digits..];
    }
    let day = days_from_civil(y, mo, d);
    let local = (day * 86_400 + h * 3600 + mi * 60 + sec) * TICKS + frac_90k;
    let offset_secs = match rest {
        "Z" | "z" => 0,
        "" => {
            return local_to_utc(y, mo, d, h, mi, sec)
                .map(|t| t * TICKS + frac_90k)
                .ok_or_else(bad)
        }
        _ => {
            let (sign, hm) = match rest.as_bytes().first() {
                Some(b'+') => (1, &rest[1..]),
                Some(b'-') => (-1, &rest[1..]),
                _ => return Err(bad()),
            };
            let (oh, om) = hm.split_once(':').ok_or_else(bad)?;
            let oh: i64 = oh.parse().map_err(|_| bad())?;
            let om: i64 = om.parse().map_err(|_| bad())?;
            if oh > 23 || om > 59 {
                return Err(bad());
            }
            sign * (oh * 3600 + om * 60)
        }
    };
    Ok(local - offset_secs * TICKS)
}

/// A local date-time in the server's time zone, as Unix seconds.
fn local_to_utc(y: i64, mo: i64, d: i64, h: i64, mi: i64, s: i64) -> Option<i64> {
    // SAFETY: mktime reads and normalises a tm we own, zeroed first.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    tm.tm_year = i32::try_from(y - 1900).ok()?;
    tm.tm_mon = i32::try_from(mo - 1).ok()?;
    tm.tm_mday = i32::try_from(d).ok()?;
    tm.tm_hour = i32::try_from(h).ok()?;
    tm.tm_min = i32::try_from(mi).ok()?;
    tm.tm_sec = i32::try_from(s).ok()?;
    tm.tm_isdst = -1;
    // SAFETY: as above.
    let t = unsafe { libc::mktime(&mut tm) };
    // time_t is 32 bits on some 32-bit targets (glibc armv7).
    #[allow(clippy::useless_conversion)]
    (t != -1).then_some(i64::from(t))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_round_trips() {
        let t = parse_90k("2026-11-21T10:00:00Z").unwrap();
        assert_eq!(t, 1_795_255_200 * TICKS);
        assert_eq!(format_90k(t), "2026-11-21T10:00:00.000Z");
        assert_eq!(parse_90k("2026-11-21T11:00:00+01:00").unwrap(), t);
        assert_eq!(parse_90k("2026-11-21T09:30:00-00:30").unwrap(), t);
        assert_eq!(parse_90k("2026-11-21T10:00:00.5Z").unwrap(), t + TICKS / 2);
        assert_eq!(parse_90k("1795255200").unwrap(), t);
        assert_eq!(format_90k(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_90k(parse_90k("2000-02-29T23:59:59Z").unwrap()),
            "2000-02-29T23:59:59.000Z"
        );
    }

    #[test]
    fn local_time_uses_the_zone() {
        // Whatever the zone, a local time is within a day of the UTC one.
        let utc = parse_90k("2026-11-21T10:00:00Z").unwrap();
        let local = parse_90k("2026-11-21T10:00:00").unwrap();
        assert!((utc - local).abs() <= 26 * 3600 * TICKS);
    }

    #[test]
    fn garbage_is_an_error() {
        for s in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-11-21T10:00",
            "2026-11-21T10:00:00+1",
            "2026-11-21T10:00:00.Z",
            "-5",
        ] {
            assert!(parse_90k(s).is_err(), "{s}");
        }
    }
}
