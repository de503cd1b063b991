//! Kubernetes-style duration strings ("5ms", "200ms", "1s", "2m", "1h", "1m30s").
//!
//! Owns the one parser and formatter for durations in the API, the JSON schema
//! (a string with a pattern) that lets the API server reject malformed values before
//! they reach us, and the one rounding of a duration up to whole seconds (for the
//! fields of Kubernetes and the kernel that count in seconds). Every duration field
//! of the custom resources is a [`KubeDuration`], so a duration is parsed once, when
//! the object is deserialized, and a malformed one fails that object alone. It must
//! never accept a value it cannot round-trip, and it does no IO.
//!
//! Only the units `h`, `m`, `s` and `ms` are accepted: they cover everything from a
//! 5 ms heartbeat to a quarantine of hours, and the same strings are valid Go
//! durations, so CEL's `duration()` understands them too.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The regular expression the CRD schema uses for every duration field.
pub const DURATION_PATTERN: &str = "^([0-9]+(ms|s|m|h))+$";

/// Longest duration string the schema accepts.
pub const MAX_DURATION_LEN: usize = 32;

/// Why a duration string was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// The string was empty.
    #[error("empty duration; expected e.g. \"200ms\", \"1s\", \"1m30s\"")]
    Empty,
    /// A character where a number or unit should be (a sign, a fraction, a space, a
    /// unit without a number).
    #[error(
        "invalid duration {input:?}: unexpected {found:?} at byte {at}; write whole numbers with units, e.g. \"1500ms\", \"1m30s\""
    )]
    Unexpected {
        /// The whole input.
        input: String,
        /// Byte offset of the offending character.
        at: usize,
        /// The offending character.
        found: char,
    },
    /// A number was not followed by a unit.
    #[error("invalid duration {input:?}: missing unit after {number}; units are h, m, s, ms")]
    MissingUnit {
        /// The whole input.
        input: String,
        /// The number without a unit.
        number: String,
    },
    /// A unit other than h, m, s, ms.
    #[error("invalid duration {input:?}: unknown unit {unit:?}; units are h, m, s, ms")]
    UnknownUnit {
        /// The whole input.
        input: String,
        /// The unit found.
        unit: String,
    },
    /// Longer than the schema allows.
    #[error("invalid duration: longer than {MAX_DURATION_LEN} characters")]
    TooLong,
    /// The value does not fit into a `std::time::Duration`.
    #[error("invalid duration {input:?}: too large")]
    Overflow {
        /// The whole input.
        input: String,
    },
}

/// A non-negative duration written the Kubernetes way ("200ms", "1m30s").
///
/// It serializes to its canonical form (largest units first, zero parts left out,
/// `"0s"` for zero), which parses back to the same value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct KubeDuration(pub Duration);

impl KubeDuration {
    /// No time at all (`"0s"`).
    pub const ZERO: Self = Self(Duration::ZERO);

    /// A duration of whole milliseconds.
    pub const fn from_millis(millis: u64) -> Self {
        Self(Duration::from_millis(millis))
    }

    /// A duration of whole seconds.
    pub const fn from_secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }

    /// The wrapped standard duration.
    pub const fn get(self) -> Duration {
        self.0
    }
}

/// `duration` in whole seconds, rounded up, and at least one: Lease durations,
/// termination grace periods and kernel address lifetimes count in whole seconds,
/// and none of them may be shorter than the duration they stand for (nor zero,
/// which means "no time" or "forever" there). Saturates at `u64::MAX`.
pub fn whole_seconds_up(duration: Duration) -> u64 {
    let secs = duration
        .as_secs()
        .saturating_add(u64::from(duration.subsec_nanos() > 0));
    secs.max(1)
}

/// [`whole_seconds_up`] for the `int32` second fields of the Kubernetes API
/// (`leaseDurationSeconds`, `terminationGracePeriodSeconds`), saturating.
pub fn whole_seconds_up_i32(duration: Duration) -> i32 {
    i32::try_from(whole_seconds_up(duration)).unwrap_or(i32::MAX)
}

impl From<Duration> for KubeDuration {
    fn from(d: Duration) -> Self {
        Self(d)
    }
}

impl From<KubeDuration> for Duration {
    fn from(d: KubeDuration) -> Self {
        d.0
    }
}

impl FromStr for KubeDuration {
    type Err = DurationError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        if input.is_empty() {
            return Err(DurationError::Empty);
        }
        if input.len() > MAX_DURATION_LEN {
            return Err(DurationError::TooLong);
        }
        let overflow = || DurationError::Overflow {
            input: input.to_owned(),
        };
        let bytes = input.as_bytes();
        let mut total = Duration::ZERO;
        let mut i = 0;
        while i < bytes.len() {
            let start = i;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            let unexpected = |at: usize| DurationError::Unexpected {
                input: input.to_owned(),
                at,
                found: input[at..].chars().next().unwrap_or_default(),
            };
            if i == start {
                return Err(unexpected(start));
            }
            let number = &input[start..i];
            let unit_start = i;
            while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                i += 1;
            }
            let unit = &input[unit_start..i];
            if unit.is_empty() && i < bytes.len() {
                return Err(unexpected(i));
            }
            if unit.is_empty() {
                return Err(DurationError::MissingUnit {
                    input: input.to_owned(),
                    number: number.to_owned(),
                });
            }
            let value: u64 = number.parse().map_err(|_| overflow())?;
            let millis_per_unit: u64 = match unit {
                "ms" => 1,
                "s" => 1_000,
                "m" => 60_000,
                "h" => 3_600_000,
                other => {
                    return Err(DurationError::UnknownUnit {
                        input: input.to_owned(),
                        unit: other.to_owned(),
                    });
                }
            };
            let millis = value.checked_mul(millis_per_unit).ok_or_else(overflow)?;
            total = total
                .checked_add(Duration::from_millis(millis))
                .ok_or_else(overflow)?;
        }
        Ok(Self(total))
    }
}

impl fmt::Display for KubeDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Sub-millisecond parts cannot be written in this format; they are dropped
        // rather than rounded up so a formatted value never exceeds the real one.
        let mut millis = self.0.as_millis();
        if millis == 0 {
            return f.write_str("0s");
        }
        for (unit, size) in [("h", 3_600_000u128), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
            let count = millis / size;
            if count > 0 {
                write!(f, "{count}{unit}")?;
                millis %= size;
            }
        }
        Ok(())
    }
}

impl Serialize for KubeDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for KubeDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<'de, str>::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for KubeDuration {
    fn schema_name() -> Cow<'static, str> {
        "KubeDuration".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "type": "string",
            "pattern": DURATION_PATTERN,
            // A bound lets the API server estimate the cost of CEL rules that call
            // duration() on the field.
            "maxLength": MAX_DURATION_LEN,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn parse_duration(input: &str) -> Result<Duration, DurationError> {
        input.parse::<KubeDuration>().map(KubeDuration::get)
    }

    #[test]
    fn parses_kubernetes_style_strings() {
        for (text, want) in [
            ("5ms", ms(5)),
            ("200ms", ms(200)),
            ("1s", ms(1_000)),
            ("2m", ms(120_000)),
            ("1h", ms(3_600_000)),
            ("1m30s", ms(90_000)),
            ("1h2m3s4ms", ms(3_723_004)),
            ("0s", ms(0)),
            ("1500ms", ms(1_500)),
        ] {
            assert_eq!(parse_duration(text), Ok(want), "{text}");
        }
    }

    #[test]
    fn formats_canonically_and_round_trips() {
        for (value, text) in [
            (ms(0), "0s"),
            (ms(5), "5ms"),
            (ms(1_500), "1s500ms"),
            (ms(90_000), "1m30s"),
            (ms(3_600_000), "1h"),
        ] {
            let d = KubeDuration(value);
            assert_eq!(d.to_string(), text);
            assert_eq!(text.parse::<KubeDuration>(), Ok(d));
        }
    }

    #[test]
    fn rejects_malformed_input_with_a_reason() {
        assert_eq!(parse_duration(""), Err(DurationError::Empty));
        assert!(matches!(
            parse_duration("10"),
            Err(DurationError::MissingUnit { number, .. }) if number == "10"
        ));
        assert!(matches!(
            parse_duration("3d"),
            Err(DurationError::UnknownUnit { unit, .. }) if unit == "d"
        ));
        assert!(matches!(
            parse_duration("-1s"),
            Err(DurationError::Unexpected {
                at: 0,
                found: '-',
                ..
            })
        ));
        assert!(matches!(
            parse_duration("1.5s"),
            Err(DurationError::Unexpected {
                at: 1,
                found: '.',
                ..
            })
        ));
        assert_eq!(
            parse_duration(&"1s".repeat(20)),
            Err(DurationError::TooLong)
        );
        assert!(matches!(
            parse_duration("99999999999999999999h"),
            Err(DurationError::Overflow { .. })
        ));
        let message = parse_duration("3d").unwrap_err().to_string();
        assert!(message.contains("\"3d\"") && message.contains("h, m, s, ms"));
    }

    #[test]
    fn rounds_up_to_whole_seconds_at_least_one() {
        for (value, secs) in [
            (Duration::ZERO, 1),
            (ms(1), 1),
            (ms(1_000), 1),
            (ms(1_001), 2),
            (ms(1_500), 2),
            (Duration::new(2, 1), 3),
            (ms(3_000), 3),
        ] {
            assert_eq!(whole_seconds_up(value), secs, "{value:?}");
        }
        assert_eq!(whole_seconds_up_i32(ms(2_500)), 3);
        assert_eq!(whole_seconds_up(Duration::MAX), u64::MAX);
        assert_eq!(whole_seconds_up_i32(Duration::MAX), i32::MAX);
    }

    #[test]
    fn serde_uses_the_string_form() {
        let d: KubeDuration = serde_json::from_str("\"1m30s\"").unwrap();
        assert_eq!(d.get(), ms(90_000));
        assert_eq!(serde_json::to_string(&d).unwrap(), "\"1m30s\"");
        assert!(serde_json::from_str::<KubeDuration>("\"soon\"").is_err());
    }

    #[test]
    fn schema_is_a_string_with_the_pattern() {
        let schema = schemars::schema_for!(KubeDuration);
        let value = serde_json::to_value(&schema).unwrap();
        assert_eq!(value["type"], "string");
        assert_eq!(value["pattern"], DURATION_PATTERN);
    }
}
