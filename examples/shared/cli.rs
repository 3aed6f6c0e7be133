//! The command line every example shares: `-h`/`--help` prints the usage and exits 0; an
//! unknown flag, a bad value or an impossible setting is one line on stderr and exit 2.
#![allow(dead_code)]

use std::fmt::Display;
use std::ops::RangeInclusive;
use std::process::ExitCode;
use std::str::FromStr;

pub use lexopt::Arg::{Long, Short};
pub use lexopt::{Error, Parser};

/// What a command line asks for.
pub enum Request<T> {
    /// Run the example with these settings.
    Run(T),
    /// Print the usage and exit 0.
    Help,
}

/// Exit code of a usage error (as in most Unix tools).
pub const USAGE_ERROR: u8 = 2;

/// Parses the process's arguments with `parse`.
///
/// `Err` carries the code `main` should return at once: success after printing `usage` to
/// stdout for `--help`, [`USAGE_ERROR`] after printing the error on one line of stderr.
pub fn parse<T>(
    program: &str,
    usage: &str,
    parse: impl FnOnce(&mut Parser) -> Result<Request<T>, Error>,
) -> Result<T, ExitCode> {
    match parse(&mut Parser::from_env()) {
        Ok(Request::Run(settings)) => Ok(settings),
        Ok(Request::Help) => {
            print!("{usage}");
            Err(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{program}: {e}; see {program} --help");
            Err(ExitCode::from(USAGE_ERROR))
        }
    }
}

/// The value of `option` (just read by `parser`), parsed as a `T`.
pub fn value<T>(parser: &mut Parser, option: &str) -> Result<T, Error>
where
    T: FromStr,
    T::Err: Display,
{
    let raw = parser.value()?;
    let text = raw
        .to_str()
        .ok_or_else(|| format!("{option}: the value is not valid UTF-8"))?;
    text.parse()
        .map_err(|e| format!("{option}: {text:?} is not valid ({e})").into())
}

/// A number for `option` that must lie in `range`; anything else is refused.
pub fn number<T>(parser: &mut Parser, option: &str, range: RangeInclusive<T>) -> Result<T, Error>
where
    T: FromStr + PartialOrd + Display,
    T::Err: Display,
{
    let n = value(parser, option)?;
    if range.contains(&n) {
        Ok(n)
    } else {
        Err(format!(
            "{option} must be between {} and {}, not {n}",
            range.start(),
            range.end()
        )
        .into())
    }
}

/// The parser of an example that takes no options but `--help`.
pub fn no_options(parser: &mut Parser) -> Result<Request<()>, Error> {
    match parser.next()? {
        None => Ok(Request::Run(())),
        Some(Short('h') | Long("help")) => Ok(Request::Help),
        Some(arg) => Err(arg.unexpected()),
    }
}
