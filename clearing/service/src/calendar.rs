//! Clearing days. A window is one calendar day in Asia/Shanghai (UTC+8, no daylight saving), so a
//! fixed offset is exact and needs no time-zone database.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, Utc};

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

/// A calendar month (`YYYYMM` on the wire and in stored keys): supervision's indicators, the monthly
/// statement, the account credits. Parsed once, where it arrives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    year: i32,
    month: u32,
}

impl Month {
    /// `YYYYMM`, month 01–12.
    pub fn parse(s: &str) -> Option<Month> {
        if s.len() != 6 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let (year, month) = (s[..4].parse().ok()?, s[4..].parse().ok()?);
        NaiveDate::from_ymd_opt(year, month, 1).map(|_| Month { year, month })
    }
    /// The month of a day.
    pub fn of(d: NaiveDate) -> Month {
        Month { year: d.year(), month: d.month() }
    }
    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).expect("checked when made")
    }
    pub fn last_day(self) -> NaiveDate {
        self.next().first_day().pred_opt().expect("a day before")
    }
    pub fn previous(self) -> Month {
        Month::of(self.first_day().pred_opt().expect("a day before"))
    }
    pub fn next(self) -> Month {
        if self.month == 12 { Month { year: self.year + 1, month: 1 } } else { Month { year: self.year, month: self.month + 1 } }
    }
    pub fn contains(self, d: NaiveDate) -> bool {
        Month::of(d) == self
    }
    pub fn year(self) -> i32 {
        self.year
    }
}

impl std::fmt::Display for Month {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}{:02}", self.year, self.month)
    }
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

    #[test]
    fn months_parse_once_and_step() {
        let m = Month::parse("202403").unwrap();
        assert_eq!((m.first_day().to_string(), m.last_day().to_string()), ("2024-03-01".into(), "2024-03-31".into()));
        assert_eq!((m.previous().to_string(), Month::parse("202312").unwrap().next().to_string()), ("202402".into(), "202401".into()));
        for bad in ["2024-03", "202413", "202400", "20243", "abcdef"] {
            assert_eq!(Month::parse(bad), None, "{bad}");
        }
    }
}
