//! `X-Amz-Date` (`YYYYMMDDTHHMMSSZ`) and the clock check. Pure.

use super::SigV4Error;

/// How far `X-Amz-Date` may be from veil's clock, in seconds (AWS allows 15 minutes).
pub const MAX_CLOCK_SKEW_SECS: u64 = 900;

/// A checked `X-Amz-Date`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AmzDate {
    text: String,
    unix: u64,
}

impl AmzDate {
    /// Parses `YYYYMMDDTHHMMSSZ` (UTC).
    pub fn parse(text: &[u8]) -> Result<Self, SigV4Error> {
        let bad = SigV4Error::MalformedDate;
        if text.len() != 16 || text[8] != b'T' || text[15] != b'Z' {
            return Err(bad);
        }
        let number = |range: std::ops::Range<usize>| -> Result<u64, SigV4Error> {
            let digits = &text[range];
            if !digits.iter().all(u8::is_ascii_digit) {
                return Err(bad.clone());
            }
            Ok(digits.iter().fold(0, |n, d| n * 10 + u64::from(d - b'0')))
        };
        let (year, month, day) = (number(0..4)?, number(4..6)?, number(6..8)?);
        let (hour, minute, second) = (number(9..11)?, number(11..13)?, number(13..15)?);
        if !(1970..=9999).contains(&year)
            || !(1..=12).contains(&month)
            || !(1..=days_in_month(year, month)).contains(&day)
            || hour > 23
            || minute > 59
            || second > 60
        {
            return Err(bad);
        }
        let days = days_from_civil(year, month, day);
        Ok(Self {
            // The bytes were checked to be ASCII digits, `T` and `Z` above.
            text: String::from_utf8_lossy(text).into_owned(),
            unix: days * 86_400 + hour * 3600 + minute * 60 + second,
        })
    }

    /// The text, `YYYYMMDDTHHMMSSZ`.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The `YYYYMMDD` day.
    pub fn day(&self) -> &str {
        &self.text[..8]
    }

    /// Refuses a date more than [`MAX_CLOCK_SKEW_SECS`] before `now` (seconds since the Unix
    /// epoch) or more than `MAX_CLOCK_SKEW_SECS + valid_for` after it.
    pub fn check(&self, now: u64, valid_for: u64) -> Result<(), SigV4Error> {
        if self.unix > now + MAX_CLOCK_SKEW_SECS {
            return Err(SigV4Error::ClockSkew(self.unix - now));
        }
        let oldest = self.unix + valid_for.max(MAX_CLOCK_SKEW_SECS);
        if now > oldest {
            return Err(SigV4Error::ClockSkew(now - self.unix));
        }
        Ok(())
    }
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm), for years
/// from 1970 on.
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year / 400;
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}
