//! strata's environment variables, read in one place. Each has a kind (a size in bytes, an
//! on/off flag, a count, one of a few words), and a value that does not parse is an error
//! naming the variable, the value and what it should be: a typo such as
//! `STRATA_MEMORY_BUDGET=4.5GB` or `STRATA_BACKEND=gpus` never quietly becomes the default.
//!
//! A run checks them all before anything runs ([`check`]); the readers below give the
//! parsed value, or `None` where the variable is unset or empty.

/// An environment variable strata reads, set to a value it cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the environment variable {variable}={value:?} is not {expected}")]
pub struct SettingError {
    /// the variable
    pub variable: &'static str,
    /// what it is set to
    pub value: String,
    /// what it should be
    pub expected: &'static str,
}

/// The kinds of value strata's variables take.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// a size in bytes: [`parse_bytes`]
    Bytes,
    /// on or off: `1`/`0`, `true`/`false`, `yes`/`no`, `on`/`off`
    Flag,
    /// a whole number
    Count,
    /// one of these words, any case
    Word(Words),
    /// any text (checked where it is used, such as the dashboard's address)
    Text,
}

impl Kind {
    /// What a value of this kind looks like, for errors.
    fn expected(self) -> &'static str {
        match self {
            Kind::Bytes => "a size in bytes, such as 512MiB or 2GB",
            Kind::Flag => "on or off (1/0, true/false, yes/no, on/off)",
            Kind::Count => "a whole number",
            Kind::Word(words) => words.expected,
            Kind::Text => "text",
        }
    }

    /// Whether `value` is one.
    fn accepts(self, value: &str) -> bool {
        match self {
            Kind::Bytes => parse_bytes(value).is_some(),
            Kind::Flag => parse_flag(value).is_some(),
            Kind::Count => value.parse::<u32>().is_ok(),
            Kind::Word(words) => parse_word(value, words.list).is_some(),
            Kind::Text => true,
        }
    }
}

/// The words a variable takes, and how an error lists them.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Words {
    /// the words, as they are returned
    pub(crate) list: &'static [&'static str],
    expected: &'static str,
}

/// `STRATA_BACKEND`'s words.
pub(crate) const BACKENDS: Words = Words {
    list: &["auto", "gpu", "cpu"],
    expected: "auto, gpu or cpu",
};

/// Every variable strata itself reads, with its kind (the cluster's own, such as
/// `SLURM_ARRAY_TASK_ID`, and the test suite's hooks are not listed).
const VARIABLES: &[(&str, Kind)] = &[
    ("STRATA_MEMORY_BUDGET", Kind::Bytes),
    ("STRATA_BACKEND", Kind::Word(BACKENDS)),
    ("STRATA_TIMELINE", Kind::Flag),
    ("STRATA_OPTIMIZE", Kind::Flag),
    ("STRATA_DASHBOARD", Kind::Text),
    ("STRATA_DASHBOARD_REMOTE", Kind::Flag),
    ("STRATA_DEVICE_BUDGET", Kind::Bytes),
    ("STRATA_GPU_MAX_BINDING", Kind::Bytes),
    ("STRATA_GPU_SELECT_ROUNDS", Kind::Count),
    ("STRATA_GPU_CHECKS", Kind::Flag),
    ("STRATA_GPU_PROFILE", Kind::Flag),
    ("STRATA_WORKER", Kind::Text),
];

/// Checks every strata variable that is set. Costs a few environment reads.
///
/// **Errors**: [`SettingError`] for the first that does not parse.
pub fn check() -> Result<(), SettingError> {
    for &(variable, kind) in VARIABLES {
        // free text (a path, an address) is checked where it is used, and may be any bytes
        if matches!(kind, Kind::Text) {
            continue;
        }
        if let Some(value) = text(variable)? {
            validate(variable, kind, &value)?;
        }
    }
    Ok(())
}

/// Whether `value` is a `kind`, as an error naming `variable` if not.
fn validate(variable: &'static str, kind: Kind, value: &str) -> Result<(), SettingError> {
    if kind.accepts(value) {
        return Ok(());
    }
    Err(SettingError {
        variable,
        value: value.to_string(),
        expected: kind.expected(),
    })
}

/// Parses a size in bytes: digits and an optional unit, `b`, `k`/`kb`, `kib`, `m`/`mb`,
/// `mib`, `g`/`gb`, `gib`, `t`/`tb`, `tib` (any case, spaces allowed), as in `512MiB` or
/// `2 GB`; `None` for anything else or a size past `u64`. Free.
pub fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: u64 = num.parse().ok()?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "tib" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(mult)
}

fn parse_flag(value: &str) -> Option<bool> {
    match value.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Some(true),
        "0" | "false" | "no" | "off" => Some(false),
        _ => None,
    }
}

fn parse_word(value: &str, words: &'static [&'static str]) -> Option<&'static str> {
    words.iter().copied().find(|w| w.eq_ignore_ascii_case(value))
}

/// The variable's text, trimmed; `None` when unset or empty (as if unset: `VAR= cmd` is how a
/// shell clears one for a command).
fn text(variable: &'static str) -> Result<Option<String>, SettingError> {
    match std::env::var(variable) {
        Ok(v) if v.trim().is_empty() => Ok(None),
        Ok(v) => Ok(Some(v.trim().to_string())),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(v)) => Err(SettingError {
            variable,
            value: v.to_string_lossy().into_owned(),
            expected: "valid UTF-8",
        }),
    }
}

/// The variable parsed by `parse`, `None` when unset; an error when it does not parse.
fn read<T>(
    variable: &'static str,
    expected: &'static str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<Option<T>, SettingError> {
    let Some(value) = text(variable)? else {
        return Ok(None);
    };
    match parse(&value) {
        Some(v) => Ok(Some(v)),
        None => Err(SettingError {
            variable,
            value,
            expected,
        }),
    }
}

/// A size in bytes ([`parse_bytes`]).
pub(crate) fn bytes(variable: &'static str) -> Result<Option<u64>, SettingError> {
    read(variable, Kind::Bytes.expected(), parse_bytes)
}

/// On or off.
pub(crate) fn flag(variable: &'static str) -> Result<Option<bool>, SettingError> {
    read(variable, Kind::Flag.expected(), parse_flag)
}

/// A whole number.
pub(crate) fn count(variable: &'static str) -> Result<Option<u32>, SettingError> {
    read(variable, Kind::Count.expected(), |v| v.parse().ok())
}

/// One of `words`, any case, as listed there.
pub(crate) fn word(variable: &'static str, words: Words) -> Result<Option<&'static str>, SettingError> {
    read(variable, words.expected, |v| parse_word(v, words.list))
}

/// Free text, trimmed; `None` when unset or empty.
pub(crate) fn free_text(variable: &'static str) -> Option<String> {
    text(variable).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_byte_sizes() {
        assert_eq!(parse_bytes("512MiB"), Some(512 << 20));
        assert_eq!(parse_bytes("2 GB"), Some(2_000_000_000));
        assert_eq!(parse_bytes("17"), Some(17));
        assert_eq!(parse_bytes("1TiB"), Some(1 << 40));
        assert_eq!(parse_bytes("lots"), None);
        assert_eq!(parse_bytes("4.5GB"), None);
        assert_eq!(parse_bytes("-1"), None);
        assert_eq!(parse_bytes("20000000000GiB"), None);
    }

    #[test]
    fn values_are_checked_by_their_kind() {
        let backend = ("STRATA_BACKEND", Kind::Word(BACKENDS));
        let ok = [
            ("STRATA_MEMORY_BUDGET", Kind::Bytes, "4GiB"),
            ("STRATA_TIMELINE", Kind::Flag, "Off"),
            ("STRATA_TIMELINE", Kind::Flag, "1"),
            ("STRATA_GPU_SELECT_ROUNDS", Kind::Count, "0"),
            (backend.0, backend.1, "GPU"),
        ];
        for (variable, kind, value) in ok {
            assert_eq!(validate(variable, kind, value), Ok(()), "{variable}={value}");
        }
        let bad = [
            (
                "STRATA_MEMORY_BUDGET",
                Kind::Bytes,
                "4.5GB",
                "a size in bytes, such as 512MiB or 2GB",
            ),
            (
                "STRATA_TIMELINE",
                Kind::Flag,
                "2",
                "on or off (1/0, true/false, yes/no, on/off)",
            ),
            ("STRATA_GPU_SELECT_ROUNDS", Kind::Count, "-1", "a whole number"),
            (backend.0, backend.1, "gpus", "auto, gpu or cpu"),
        ];
        for (variable, kind, value, expected) in bad {
            let e = validate(variable, kind, value).unwrap_err();
            assert_eq!((e.variable, e.value.as_str(), e.expected), (variable, value, expected));
        }
        assert_eq!(parse_flag("YES"), Some(true));
        assert_eq!(parse_word("Cpu", &["auto", "gpu", "cpu"]), Some("cpu"));
    }

    #[test]
    fn every_variable_is_listed_once() {
        let mut names: Vec<_> = VARIABLES.iter().map(|v| v.0).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), VARIABLES.len());
    }
}
