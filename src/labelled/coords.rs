//! Coordinates: the labels along a dim (xarray's index coordinates), the extra labels that ride
//! along a dim (a stack's item `id`), scalar labels left by a selection, and the labels a user
//! selects with.

use std::fmt;

use chrono::{DateTime, Datelike, Duration, NaiveDate, TimeZone, Utc};

use super::LabelError;

/// The values of one coordinate.
#[derive(Debug, Clone, PartialEq)]
pub enum CoordValues {
    /// numbers (x, y in CRS units)
    F64(Vec<f64>),
    /// instants (time)
    Time(Vec<DateTime<Utc>>),
    /// names (band, item id)
    Str(Vec<String>),
}

impl CoordValues {
    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            CoordValues::F64(v) => v.len(),
            CoordValues::Time(v) => v.len(),
            CoordValues::Str(v) => v.len(),
        }
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values at `indices`, in that order.
    pub fn take(&self, indices: &[usize]) -> CoordValues {
        match self {
            CoordValues::F64(v) => CoordValues::F64(indices.iter().map(|&i| v[i]).collect()),
            CoordValues::Time(v) => CoordValues::Time(indices.iter().map(|&i| v[i]).collect()),
            CoordValues::Str(v) => CoordValues::Str(indices.iter().map(|&i| v[i].clone()).collect()),
        }
    }

    /// The values in a few words: their count, first and last (for error messages). O(1).
    pub fn brief(&self) -> String {
        match self.len() {
            0 => "no labels".into(),
            1 => format!("1 label, {}", self.label(0)),
            n => format!("{n} labels, {} .. {}", self.label(0), self.label(n - 1)),
        }
    }

    /// The value at `i` as a [`Label`].
    pub fn label(&self, i: usize) -> Label {
        match self {
            CoordValues::F64(v) => Label::F64(v[i]),
            CoordValues::Time(v) => Label::Time(v[i]),
            CoordValues::Str(v) => Label::Str(v[i].clone()),
        }
    }

    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            CoordValues::F64(_) => "f64",
            CoordValues::Time(_) => "datetime",
            CoordValues::Str(_) => "str",
        }
    }

    /// The first `head` and last `tail` values, as xarray abbreviates a coordinate.
    fn summary(&self, width: usize) -> String {
        let show = |i: usize| -> String {
            match self {
                CoordValues::F64(v) => numpy_float(v[i]),
                CoordValues::Time(v) => v[i].format("%Y-%m-%dT%H:%M:%S").to_string(),
                CoordValues::Str(v) => format!("{:?}", v[i]),
            }
        };
        let n = self.len();
        let all: Vec<String> = (0..n).map(show).collect();
        let joined = all.join(" ");
        if joined.len() <= width || n <= 2 {
            return joined;
        }
        // Alternate from both ends while the line has room, keeping at least one of each.
        let (mut head, mut tail): (Vec<&str>, Vec<&str>) = (vec![], vec![]);
        let (mut i, mut j, mut used) = (0, n - 1, 4);
        while i < j {
            let from_head = head.len() <= tail.len();
            let s = if from_head { &all[i] } else { &all[j] };
            if used + s.len() + 1 > width && !head.is_empty() && !tail.is_empty() {
                break;
            }
            used += s.len() + 1;
            if from_head {
                head.push(s);
                i += 1;
            } else {
                tail.insert(0, s);
                j -= 1;
            }
        }
        if i >= j {
            return joined;
        }
        format!("{} ... {}", head.join(" "), tail.join(" "))
    }
}

/// A number as numpy prints it in a summary: 4 significant digits, `4.187e+06`.
fn numpy_float(v: f64) -> String {
    if v == 0.0 || !v.is_finite() || (1e-4..1e4).contains(&v.abs()) {
        return format!("{v:.4}")
            .trim_end_matches('0')
            .trim_end_matches('.')
            .to_string();
    }
    let s = format!("{v:.3e}");
    match s.split_once('e') {
        Some((m, e)) => {
            let e: i32 = e.parse().unwrap_or(0);
            format!("{m}e{}{:02}", if e < 0 { '-' } else { '+' }, e.abs())
        }
        None => s,
    }
}

/// One coordinate: a name, the dim it runs along (`None` for a scalar left by a selection,
/// such as `band` after `sel(band = "red")`), and its values.
#[derive(Debug, Clone, PartialEq)]
pub struct Coord {
    /// the coordinate's name (equal to its dim for an index coordinate)
    pub name: String,
    /// the dim it labels, or `None` for a scalar
    pub dim: Option<String>,
    /// its values (one for a scalar)
    pub values: CoordValues,
}

impl Coord {
    /// An index coordinate: the labels of dim `name`.
    pub fn index(name: &str, values: CoordValues) -> Coord {
        Coord::along(name, name, values)
    }

    /// A coordinate riding along dim `dim` (a stack's item `id` along `time`).
    pub fn along(name: &str, dim: &str, values: CoordValues) -> Coord {
        Coord {
            name: name.to_string(),
            dim: Some(dim.to_string()),
            values,
        }
    }

    /// A scalar coordinate (what a scalar selection leaves).
    pub fn scalar(name: &str, values: CoordValues) -> Coord {
        Coord {
            name: name.to_string(),
            dim: None,
            values,
        }
    }

    /// Whether this is the index coordinate of its dim.
    pub fn is_index(&self) -> bool {
        self.dim.as_deref() == Some(self.name.as_str())
    }

    /// One line of the repr, the name padded to `width`.
    pub(crate) fn fmt_row(&self, f: &mut fmt::Formatter<'_>, width: usize) -> fmt::Result {
        let marker = if self.is_index() { '*' } else { ' ' };
        let dim = self.dim.as_deref().map_or("()".to_string(), |d| format!("({d})"));
        let head = format!(
            "  {marker} {:<width$} {:<8} {:<8} ",
            self.name,
            dim,
            self.values.type_name()
        );
        let room = 100usize.saturating_sub(head.len());
        writeln!(f, "{head}{}", self.values.summary(room))
    }
}

/// A label to select with: a number, a name or an instant. Strings also select on time
/// coordinates: `"2020-03-01T00:00:00Z"` exactly, or a period (`"2020"`, `"2020-03"`,
/// `"2020-03-15"`) that a label slice covers whole, as pandas' partial-string indexing does.
#[derive(Debug, Clone, PartialEq)]
pub enum Label {
    /// a number
    F64(f64),
    /// a name, or a time as text
    Str(String),
    /// an instant
    Time(DateTime<Utc>),
}

impl From<f64> for Label {
    fn from(v: f64) -> Self {
        Label::F64(v)
    }
}

impl From<&str> for Label {
    fn from(v: &str) -> Self {
        Label::Str(v.to_string())
    }
}

impl From<String> for Label {
    fn from(v: String) -> Self {
        Label::Str(v)
    }
}

impl From<DateTime<Utc>> for Label {
    fn from(v: DateTime<Utc>) -> Self {
        Label::Time(v)
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Label::F64(v) => write!(f, "{v}"),
            Label::Str(s) => write!(f, "{s:?}"),
            Label::Time(t) => write!(f, "{}", t.to_rfc3339()),
        }
    }
}

/// A key comparable with the values of one coordinate, and the closed interval of instants a
/// time label stands for.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
pub(crate) enum Key {
    F64(f64),
    Str(String),
    Time(DateTime<Utc>, DateTime<Utc>),
}

impl Label {
    /// This label as a key into `values`, or why it cannot be one.
    pub(crate) fn key_for(&self, dim: &str, values: &CoordValues) -> Result<Key, LabelError> {
        let bad = || LabelError::LabelType {
            dim: dim.to_string(),
            label: self.to_string(),
            coord_type: values.type_name(),
        };
        Ok(match (self, values) {
            (Label::F64(v), CoordValues::F64(_)) => Key::F64(*v),
            (Label::Str(s), CoordValues::Str(_)) => Key::Str(s.clone()),
            (Label::Time(t), CoordValues::Time(_)) => Key::Time(*t, *t),
            (Label::Str(s), CoordValues::Time(_)) => {
                let (a, b) = parse_period(s).ok_or_else(bad)?;
                Key::Time(a, b)
            }
            _ => return Err(bad()),
        })
    }
}

/// A time string as the closed interval it names: an RFC 3339 instant (both ends), or a
/// year, month or day (its first and last nanosecond).
fn parse_period(s: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        let t = t.with_timezone(&Utc);
        return Some((t, t));
    }
    let day = |y: i32, m: u32, d: u32| NaiveDate::from_ymd_opt(y, m, d);
    let parts: Vec<&str> = s.split('-').collect();
    let num = |i: usize| parts.get(i).and_then(|p| p.parse::<u32>().ok());
    let (first, next) = match parts.len() {
        1 => {
            let y = parts[0].parse::<i32>().ok()?;
            (day(y, 1, 1)?, day(y + 1, 1, 1)?)
        }
        2 => {
            let (y, m) = (parts[0].parse::<i32>().ok()?, num(1)?);
            let start = day(y, m, 1)?;
            let next = if m == 12 { day(y + 1, 1, 1)? } else { day(y, m + 1, 1)? };
            (start, next)
        }
        3 => {
            let d = day(parts[0].parse::<i32>().ok()?, num(1)?, num(2)?)?;
            (d, d.succ_opt()?)
        }
        _ => return None,
    };
    let at = |d: NaiveDate| Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight"));
    Some((at(first), at(next) - Duration::nanoseconds(1)))
}

/// Months since year 0 of `t`'s calendar month.
pub(crate) fn month_number(t: &DateTime<Utc>) -> i64 {
    i64::from(t.year()) * 12 + i64::from(t.month0())
}

/// The start of month number `k` (see [`month_number`]).
pub(crate) fn month_from_number(k: i64) -> DateTime<Utc> {
    let (y, m) = (k.div_euclid(12) as i32, k.rem_euclid(12) as u32 + 1);
    let d = NaiveDate::from_ymd_opt(y, m, 1).expect("a month's first day");
    Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0).expect("midnight"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_cover_whole_units() {
        let (a, b) = parse_period("2020-02").unwrap();
        assert_eq!(a.to_rfc3339(), "2020-02-01T00:00:00+00:00");
        assert_eq!(
            b + Duration::nanoseconds(1),
            Utc.with_ymd_and_hms(2020, 3, 1, 0, 0, 0).unwrap()
        );
        let (a, b) = parse_period("2020-12-31").unwrap();
        assert_eq!(a, Utc.with_ymd_and_hms(2020, 12, 31, 0, 0, 0).unwrap());
        assert_eq!(
            b + Duration::nanoseconds(1),
            Utc.with_ymd_and_hms(2021, 1, 1, 0, 0, 0).unwrap()
        );
        let (a, b) = parse_period("2020").unwrap();
        assert_eq!((a.month(), b.month(), b.day()), (1, 12, 31));
        let (a, b) = parse_period("2020-02-06T18:51:55Z").unwrap();
        assert_eq!(a, b);
        assert!(parse_period("2020-13").is_none() && parse_period("soon").is_none());
    }

    #[test]
    fn months_count_across_years() {
        let t = Utc.with_ymd_and_hms(2020, 12, 27, 18, 50, 0).unwrap();
        let k = month_number(&t);
        assert_eq!(
            month_from_number(k),
            Utc.with_ymd_and_hms(2020, 12, 1, 0, 0, 0).unwrap()
        );
        assert_eq!(
            month_from_number(k + 1),
            Utc.with_ymd_and_hms(2021, 1, 1, 0, 0, 0).unwrap()
        );
    }

    #[test]
    fn long_coordinates_are_abbreviated() {
        let v = CoordValues::F64((0..1000).map(|i| 544_100.0 + 30.0 * i as f64).collect());
        let s = v.summary(60);
        assert!(
            s.starts_with("5.441e+05") && s.contains(" ... ") && s.ends_with("5.741e+05"),
            "{s}"
        );
        assert!(s.len() <= 70, "{s}");
        assert_eq!(numpy_float(4.52), "4.52");
        assert_eq!(numpy_float(0.0), "0");
        assert_eq!(numpy_float(-2.5e-7), "-2.500e-07");
        let names = CoordValues::Str(vec!["red".into(), "green".into()]);
        assert_eq!(names.summary(60), "\"red\" \"green\"");
    }
}
