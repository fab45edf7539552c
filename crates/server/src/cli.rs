//! Command-line conventions shared by the `kvraft` and `kvraft-bench` binaries: the syntax of
//! duration flags, and where `kvraft dev`'s cluster listens by default (the endpoints the
//! client commands and the bench use when told nothing else).

use std::time::Duration;

/// The dev cluster's endpoints (`kvraft dev` with its defaults: 3 nodes from port 7001).
pub const DEV_ENDPOINTS: &str = "127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003";

/// Parses a duration: a whole number of seconds (`10`), or a number with a unit `ms`, `s` or
/// `m` (`500ms`, `10s`, `2m`). Zero is refused.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let bad = || format!("{text:?} is not a duration (e.g. 10, 10s, 500ms, 2m)");
    let n: u64 = number.parse().map_err(|_| bad())?;
    let d = match unit.trim() {
        "" | "s" => Duration::from_secs(n),
        "ms" => Duration::from_millis(n),
        "m" => Duration::from_secs(n.checked_mul(60).ok_or_else(bad)?),
        _ => return Err(bad()),
    };
    if d.is_zero() {
        return Err("the duration must be positive".into());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration(" 3 s "), Ok(Duration::from_secs(3)));
        for bad in ["", "s", "1.5s", "10h", "-1", "ms500", "0", "0ms"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }
}
