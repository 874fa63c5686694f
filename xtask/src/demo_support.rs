//! The demo's plumbing: explaining what happens (step headers, wrapped paragraphs, indented
//! output), and running the commands it shows.

use std::{
    fs,
    io::Write,
    path::Path,
    process::{Command, Output, Stdio},
};

use anyhow::{Context, Result};

use crate::process;

/// The width explanations are wrapped to.
const WIDTH: usize = 96;

/// Prints a step header.
pub fn step(text: &str) {
    println!("\n==> {text}");
}

/// Prints a paragraph of explanation, wrapped to [`WIDTH`] columns.
pub fn say(text: &str) {
    for line in wrap(text, WIDTH) {
        println!("{line}");
    }
}

/// Splits `text` into lines of at most `width` characters at spaces (longer words stay whole).
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Prints `text`, indented.
pub fn print_text(text: &str) {
    for line in text.lines() {
        println!("    {line}");
    }
}

/// Prints a command's stdout and stderr, indented.
pub fn print_indented(out: &Output) {
    print_text(&String::from_utf8_lossy(&out.stdout));
    print_text(&String::from_utf8_lossy(&out.stderr));
}

/// A command's stdout, as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Prints a log file, indented, under a title.
pub fn print_log(title: &str, path: &Path) {
    match fs::read_to_string(path) {
        Ok(text) if !text.trim().is_empty() => {
            println!("--- {title} ({}):", path.display());
            print_text(&text);
        }
        Ok(_) => println!("--- {title}: (empty)"),
        Err(e) => println!("--- {title}: cannot read {}: {e}", path.display()),
    }
}

/// Prints `cmd` (without its environment: the demo shows the installation's variables once),
/// runs it, and returns its output.
pub fn output(cmd: &mut Command) -> Result<Output> {
    let line = process::show_program(cmd);
    println!("$ {line}");
    cmd.stdin(Stdio::null())
        .output()
        .with_context(|| format!("running `{line}`"))
}

/// Prints `echo <input> | cmd`, runs `cmd` with `input` and a newline on its stdin, and returns
/// its output.
pub fn output_with_input(cmd: &mut Command, input: &str) -> Result<Output> {
    let line = process::show_program(cmd);
    println!("$ echo {input} | {line}");
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting `{line}`"))?;
    // Dropping the handle after the write closes the pipe, so the child sees the end.
    let written = child
        .stdin
        .take()
        .context("the child's stdin is not piped")?
        .write_all(format!("{input}\n").as_bytes());
    let out = child
        .wait_with_output()
        .with_context(|| format!("running `{line}`"))?;
    written.with_context(|| format!("writing to `{line}`"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_at_spaces() {
        assert_eq!(wrap("aa bb cc", 5), ["aa bb", "cc"]);
        assert_eq!(wrap("  a   verylongword b ", 4), ["a", "verylongword", "b"]);
        assert!(wrap("", 10).is_empty());
    }

    #[test]
    fn output_with_input_feeds_stdin() -> Result<()> {
        let out = output_with_input(&mut Command::new("cat"), "hello")?;
        assert!(out.status.success());
        assert_eq!(out.stdout, b"hello\n");
        Ok(())
    }
}
