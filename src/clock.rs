//! Timestamps: stored as integer microseconds since the Unix epoch, shown as RFC 3339 UTC with
//! microseconds (`2026-11-24T09:30:00.123456Z`), as the contract requires.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::{OffsetDateTime, format_description::BorrowedFormatItem, macros::format_description};

const FORMAT: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

/// `2026-11-24T09:30:00.123456Z`.
const RFC3339_LEN: usize = 27;

/// A point in time, in microseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn now() -> Timestamp {
        let nanos = OffsetDateTime::now_utc().unix_timestamp_nanos();
        Timestamp((nanos / 1_000) as i64)
    }

    pub fn micros(self) -> i64 {
        self.0
    }

    pub fn rfc3339(self) -> String {
        let mut text = [0; RFC3339_LEN];
        match self.write_rfc3339(&mut text) {
            Some(text) => text.to_owned(),
            None => self.rfc3339_slowly(),
        }
    }

    /// [`rfc3339`](Self::rfc3339) into `out`, without allocating: a timestamp is written in
    /// every message and thread a list shows, and `time`'s general formatter was about 5 % of
    /// a thread list's time. `None` outside years 0 to 9999 (formatted the general way).
    fn write_rfc3339(self, out: &mut [u8; RFC3339_LEN]) -> Option<&str> {
        let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000).ok()?;
        let year = u32::try_from(t.year()).ok().filter(|&y| y <= 9999)?;
        let fields = [
            (0, 4, year),
            (5, 2, u32::from(u8::from(t.month()))),
            (8, 2, u32::from(t.day())),
            (11, 2, u32::from(t.hour())),
            (14, 2, u32::from(t.minute())),
            (17, 2, u32::from(t.second())),
            (20, 6, t.microsecond()),
        ];
        *out = *b"0000-00-00T00:00:00.000000Z";
        for (start, width, mut value) in fields {
            for digit in out[start..start + width].iter_mut().rev() {
                *digit = b'0' + (value % 10) as u8;
                value /= 10;
            }
        }
        std::str::from_utf8(out).ok()
    }

    fn rfc3339_slowly(self) -> String {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1_000)
            .ok()
            .and_then(|t| t.format(FORMAT).ok())
            .unwrap_or_else(|| "1970-01-01T00:00:00.000000Z".to_owned())
    }

    /// Parses the RFC 3339 forms Django stores (`2026-11-24 09:30:00.123456`, with or without
    /// fraction or offset) and the contract's own.
    pub fn parse(text: &str) -> Option<Timestamp> {
        let normalized = text.trim().replacen(' ', "T", 1);
        let with_zone = if normalized.ends_with('Z') || has_offset(&normalized) {
            normalized
        } else {
            format!("{normalized}Z")
        };
        let parsed =
            OffsetDateTime::parse(&with_zone, &time::format_description::well_known::Rfc3339)
                .ok()?;
        Some(Timestamp((parsed.unix_timestamp_nanos() / 1_000) as i64))
    }
}

fn has_offset(text: &str) -> bool {
    let time_part = text.split_once('T').map(|(_, t)| t).unwrap_or("");
    time_part.contains('+') || time_part.contains('-')
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut text = [0; RFC3339_LEN];
        match self.write_rfc3339(&mut text) {
            Some(text) => serializer.serialize_str(text),
            None => serializer.serialize_str(&self.rfc3339_slowly()),
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Timestamp, D::Error> {
        let text = String::deserialize(deserializer)?;
        Timestamp::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("not a timestamp: {text:?}")))
    }
}

impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .description(Some(
                "RFC 3339, UTC, microseconds: 2026-11-24T09:30:00.123456Z",
            ))
            .into()
    }
}

impl utoipa::ToSchema for Timestamp {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_microseconds_and_z() {
        let t = Timestamp(1_795_512_600_123_456);
        assert_eq!(t.rfc3339(), "2026-11-24T09:30:00.123456Z");
        assert_eq!(Timestamp(0).rfc3339(), "1970-01-01T00:00:00.000000Z");
    }

    proptest::proptest! {
        /// The fast path writes what `time`'s formatter writes, over years 0 to 9999.
        #[test]
        fn fast_formatting_agrees_with_the_general_formatter(
            micros in -62_167_219_200_000_000i64..253_402_300_800_000_000
        ) {
            let t = Timestamp(micros);
            proptest::prop_assert_eq!(t.rfc3339(), t.rfc3339_slowly());
        }
    }

    #[test]
    fn years_past_9999_take_the_general_formatter() {
        let t = Timestamp(253_402_300_800_000_000);
        assert_eq!(t.write_rfc3339(&mut [0; RFC3339_LEN]), None);
        assert_eq!(t.rfc3339(), t.rfc3339_slowly());
        let json = serde_json::to_string(&Timestamp(1_795_512_600_123_456)).unwrap();
        assert_eq!(json, "\"2026-11-24T09:30:00.123456Z\"");
    }

    #[test]
    fn parses_django_and_rfc3339_forms() {
        let expected = Some(Timestamp(1_795_512_600_123_456));
        assert_eq!(Timestamp::parse("2026-11-24 09:30:00.123456"), expected);
        assert_eq!(Timestamp::parse("2026-11-24T09:30:00.123456Z"), expected);
        assert_eq!(
            Timestamp::parse("2026-11-24 10:30:00.123456+01:00"),
            expected
        );
        assert_eq!(Timestamp::parse("not a date"), None);
    }
}
