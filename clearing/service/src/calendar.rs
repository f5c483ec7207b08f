//! Clearing days. A window is one calendar day in Asia/Shanghai (UTC+8, no daylight saving), so a
//! fixed offset is exact and needs no time-zone database.

use chrono::{DateTime, FixedOffset, NaiveDate, Utc};

/// Asia/Shanghai: UTC+8 all year.
pub fn shanghai() -> FixedOffset {
    FixedOffset::east_opt(8 * 3600).expect("valid offset")
}

/// The one clock of the service: milliseconds since 1970 (UTC), for expiries and ids.
pub fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

/// Today's clearing day.
pub fn today() -> NaiveDate {
    Utc::now().with_timezone(&shanghai()).date_naive()
}

/// The clearing day of an instant.
pub fn day_of(t: DateTime<FixedOffset>) -> NaiveDate {
    t.with_timezone(&shanghai()).date_naive()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn late_utc_evening_is_next_day_in_shanghai() {
        let t = DateTime::parse_from_rfc3339("2023-03-09T17:30:00Z").unwrap();
        assert_eq!(day_of(t).to_string(), "2023-03-10");
        let t = DateTime::parse_from_rfc3339("2023-03-10T23:59:59+08:00").unwrap();
        assert_eq!(day_of(t).to_string(), "2023-03-10");
    }
}
