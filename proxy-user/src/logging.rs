//! How veil's log lines look. On a terminal or in a file: a timestamp, the level and the
//! module, as env_logger writes them. When standard error is systemd's journal (a service's
//! default), the journal stamps each line itself, so a line carries no timestamp and starts
//! with the sd-daemon(3) priority prefix (`<3>` error, `<4>` warning, `<6>` info, `<7>`
//! debug), which the journal takes as the entry's priority.

use std::{io::Write, os::fd::AsFd};

/// Where log lines go, and so how they look.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogStyle {
    /// A terminal or a file: timestamped lines.
    Terminal,
    /// systemd's journal: priority-prefixed lines without a timestamp.
    Journal,
}

/// The style for standard error, given `JOURNAL_STREAM` (`DEVICE:INODE` of the stream
/// systemd connected, set only for a service whose output goes to the journal) and standard
/// error's own device and inode (`None` if unknown). The journal when the variable is set,
/// unless it names another file than standard error (a process the service started with its
/// standard error redirected elsewhere inherited the variable).
pub fn style(journal_stream: Option<&str>, stderr: Option<(u64, u64)>) -> LogStyle {
    let Some(value) = journal_stream else {
        return LogStyle::Terminal;
    };
    let named = value
        .split_once(':')
        .and_then(|(dev, ino)| Some((dev.parse::<u64>().ok()?, ino.parse::<u64>().ok()?)));
    match (named, stderr) {
        (Some(named), Some(actual)) if named != actual => LogStyle::Terminal,
        _ => LogStyle::Journal,
    }
}

/// The sd-daemon(3) priority of a record of `level`: syslog's error, warning, info, debug.
pub fn priority(level: log::Level) -> u8 {
    match level {
        log::Level::Error => 3,
        log::Level::Warn => 4,
        log::Level::Info => 6,
        log::Level::Debug | log::Level::Trace => 7,
    }
}

/// The style for this process's standard error.
pub fn current_style() -> LogStyle {
    let journal_stream = std::env::var("JOURNAL_STREAM").ok();
    let stderr = nix::sys::stat::fstat(std::io::stderr().as_fd())
        .ok()
        .map(|stat| (stat.st_dev, stat.st_ino));
    style(journal_stream.as_deref(), stderr)
}

/// Installs the logger: `RUST_LOG` if set, else `default_filter`, in the style
/// [`current_style`] picks.
pub fn init(default_filter: &str) {
    let mut builder =
        env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(default_filter));
    match current_style() {
        LogStyle::Terminal => builder.format_timestamp_millis(),
        LogStyle::Journal => builder.format(|buf, record| {
            writeln!(
                buf,
                "<{}>{}: {}",
                priority(record.level()),
                record.target(),
                record.args()
            )
        }),
    };
    builder.init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_journal_stream_lines_are_timestamped() {
        assert_eq!(style(None, Some((1, 2))), LogStyle::Terminal);
        assert_eq!(style(None, None), LogStyle::Terminal);
    }

    #[test]
    fn journal_stream_on_stderr_is_the_journal() {
        assert_eq!(style(Some("8:1234"), Some((8, 1234))), LogStyle::Journal);
    }

    #[test]
    fn journal_stream_naming_another_file_is_not() {
        assert_eq!(style(Some("8:1234"), Some((8, 99))), LogStyle::Terminal);
    }

    #[test]
    fn journal_stream_that_cannot_be_checked_is_trusted() {
        assert_eq!(style(Some("8:1234"), None), LogStyle::Journal);
        assert_eq!(style(Some("garbled"), Some((8, 1234))), LogStyle::Journal);
    }

    #[test]
    fn priorities_are_syslogs() {
        assert_eq!(priority(log::Level::Error), 3);
        assert_eq!(priority(log::Level::Warn), 4);
        assert_eq!(priority(log::Level::Info), 6);
        assert_eq!(priority(log::Level::Debug), 7);
        assert_eq!(priority(log::Level::Trace), 7);
    }
}
