//! Reading NAB's files: `timestamp,value` CSVs with
//! `YYYY-MM-DD HH:MM:SS` times (UTC), and `combined_windows.json`, which
//! maps `<category>/<name>.csv` to its anomaly windows.

use std::collections::BTreeMap;

use anyhow::{Context, bail};

/// One series: times (Unix seconds) and values, row by row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Series {
    /// Each row's time, as written (`YYYY-MM-DD HH:MM:SS`).
    pub stamps: Vec<String>,
    /// Each row's time, Unix seconds.
    pub times: Vec<i64>,
    /// Each row's value.
    pub values: Vec<f64>,
}

/// Parses a NAB CSV (header `timestamp,value`).
pub fn parse_csv(text: &str) -> anyhow::Result<Series> {
    let mut s = Series::default();
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default().trim();
    if header != "timestamp,value" {
        bail!("header is {header:?}, not \"timestamp,value\"");
    }
    for (n, line) in lines.enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let (stamp, value) = line
            .split_once(',')
            .with_context(|| format!("row {}: no comma", n + 2))?;
        let t = parse_time(stamp).with_context(|| format!("row {}: {stamp:?}", n + 2))?;
        let v: f64 = value
            .trim()
            .parse()
            .with_context(|| format!("row {}: value {value:?}", n + 2))?;
        s.stamps.push(stamp.to_owned());
        s.times.push(t);
        s.values.push(v);
    }
    Ok(s)
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]` (UTC) as Unix seconds; fractions are
/// dropped.
pub fn parse_time(text: &str) -> anyhow::Result<i64> {
    let (date, time) = text.trim().split_once(' ').context("no space")?;
    let d: Vec<i64> = date
        .split('-')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .context("date")?;
    let time = time.split('.').next().unwrap_or_default();
    let c: Vec<i64> = time
        .split(':')
        .map(str::parse)
        .collect::<Result<_, _>>()
        .context("time")?;
    let (&[y, m, day], &[hh, mm, ss]) = (&d[..], &c[..]) else {
        bail!("not YYYY-MM-DD HH:MM:SS");
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        bail!("out of range");
    }
    Ok(days_from_civil(y, m, day) * 86_400 + hh * 3_600 + mm * 60 + ss)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The labels: `<category>/<name>.csv` to its windows (Unix seconds,
/// inclusive).
pub type Labels = BTreeMap<String, Vec<(i64, i64)>>;

/// Parses `combined_windows.json`.
pub fn parse_labels(text: &str) -> anyhow::Result<Labels> {
    let raw: BTreeMap<String, Vec<[String; 2]>> =
        serde_json::from_str(text).context("combined_windows.json")?;
    raw.into_iter()
        .map(|(name, windows)| {
            let w = windows
                .iter()
                .map(|[a, b]| Ok((parse_time(a)?, parse_time(b)?)))
                .collect::<anyhow::Result<Vec<_>>>()
                .with_context(|| name.clone())?;
            Ok((name, w))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_unix_seconds() {
        assert_eq!(parse_time("1970-01-01 00:00:00").unwrap(), 0);
        assert_eq!(
            parse_time("2014-04-10 07:15:00.000000").unwrap(),
            1_397_114_100
        );
        assert_eq!(parse_time("2000-03-01 00:00:01").unwrap(), 951_868_801);
        assert!(parse_time("2014-13-01 00:00:00").is_err());
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn csv_and_labels_parse() {
        let s =
            parse_csv("timestamp,value\n2014-04-01 00:00:00,1.5\n2014-04-01 00:05:00,2\n").unwrap();
        assert_eq!(s.times, vec![1_396_310_400, 1_396_310_700]);
        assert_eq!(s.values, vec![1.5, 2.0]);
        assert!(parse_csv("a,b\n").is_err());
        let l = parse_labels(
            r#"{"a/x.csv": [], "b/y.csv": [["2014-04-01 00:00:00.000000", "2014-04-01 00:05:00.000000"]]}"#,
        )
        .unwrap();
        assert_eq!(l["a/x.csv"], vec![]);
        assert_eq!(l["b/y.csv"], vec![(1_396_310_400, 1_396_310_700)]);
    }
}
