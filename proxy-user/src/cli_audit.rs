//! `veil audit`: printing, following and verifying the audit log, through the daemon when one
//! runs and straight from the database otherwise (sled lets one process open it at a time).

use std::{
    io::{self, Write},
    ops::ControlFlow,
    path::PathBuf,
};

use crate::{
    api::{
        client::{ApiClient, ClientError},
        parse_audit_query,
    },
    audit::{self, AuditError, AuditStore, Record, TableStream, Verification},
    cli::{AuditArgs, AuditCommand},
    config::Paths,
};

/// Errors from `veil audit`.
#[derive(Debug, thiserror::Error)]
pub enum AuditCliError {
    /// The daemon refused or failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// Reading the database failed.
    #[error(transparent)]
    Audit(#[from] AuditError),
    /// There is no database.
    #[error("no audit log in {0} (has veil run with this --state-dir?)")]
    NoLog(PathBuf),
    /// The database could not be opened.
    #[error("opening the audit log in {path}: {source}")]
    Open {
        /// The database directory.
        path: PathBuf,
        /// sled's error.
        source: sled::Error,
    },
    /// A filter is malformed.
    #[error("{0}")]
    Filter(String),
    /// `--follow` without a daemon.
    #[error(
        "--follow needs the veil daemon, which writes the audit log, and none answers at {0}: \
         start it with `veil serve`"
    )]
    FollowNeedsDaemon(PathBuf),
    /// The daemon ended a follow.
    #[error("the veil daemon stopped; no more audit records will arrive")]
    DaemonStopped,
    /// Standard output failed.
    #[error("writing to standard output: {0}")]
    Output(io::Error),
}

/// Runs `veil audit`; returns the exit code.
pub async fn audit(paths: &Paths, args: AuditArgs) -> Result<i32, AuditCliError> {
    let daemon = match ApiClient::connect(&paths.socket()).await {
        Ok(client) => Some(client),
        Err(ClientError::Connect { .. }) => None,
        Err(e) => return Err(e.into()),
    };
    let query = args.filter.query();
    match (args.command, daemon) {
        (Some(AuditCommand::Verify), Some(client)) => report(&client.audit_verify().await?),
        (Some(AuditCommand::Verify), None) => report(&open_db(paths)?.verify(None)?),
        (None, Some(client)) if args.follow => follow(&client, &query, args.json).await,
        (None, None) if args.follow => Err(AuditCliError::FollowNeedsDaemon(paths.socket())),
        (None, Some(client)) => print(&client.audit(&query).await?, args.json),
        (None, None) => {
            let filter = parse_audit_query(&query, audit::now_ms())
                .map_err(AuditCliError::Filter)?
                .filter;
            print(&open_db(paths)?.query(&filter)?, args.json)
        }
    }
}

/// Prints `records` as a table or JSON lines.
fn print(records: &[Record], json: bool) -> Result<i32, AuditCliError> {
    let text = if json {
        json_lines(records)
    } else {
        audit::table(records)
    };
    match emit(&text) {
        ControlFlow::Continue(()) => Ok(0),
        ControlFlow::Break(outcome) => outcome,
    }
}

/// Prints the matching records already there, then new ones as the daemon commits them.
async fn follow(client: &ApiClient, query: &str, json: bool) -> Result<i32, AuditCliError> {
    let mut table = TableStream::default();
    let mut stopped = None;
    let flow = client
        .audit_follow(query, |records| {
            let text = if json {
                json_lines(&records)
            } else {
                table.rows(&records)
            };
            emit(&text).map_break(|outcome| stopped = Some(outcome))
        })
        .await?;
    match (flow, stopped) {
        (ControlFlow::Break(()), Some(outcome)) => outcome,
        _ => Err(AuditCliError::DaemonStopped),
    }
}

/// Prints a verification; exit code 0 when the log is intact, 1 when it is not.
fn report(verification: &Verification) -> Result<i32, AuditCliError> {
    let mut text = String::new();
    match (
        &verification.broken,
        verification.first_seq,
        verification.last_seq,
    ) {
        (None, Some(first), Some(last)) => {
            text.push_str(&format!(
                "audit log intact: {} records verified (seq {first} to {last}",
                verification.verified
            ));
            if let Some(anchor) = verification.anchor_seq {
                text.push_str(&format!(
                    "; records up to seq {anchor} were dropped by retention"
                ));
            }
            text.push_str(&format!(
                ")\nhead: seq {} hash {}\n",
                verification.head.seq, verification.head.hash
            ));
        }
        (None, _, _) => text.push_str("audit log intact: it holds no records\n"),
        (Some(broken), _, _) => {
            eprintln!("veil: audit log BROKEN: {broken}");
            eprintln!(
                "veil: {} records before it verified{}",
                verification.verified,
                verification
                    .last_seq
                    .map_or_else(String::new, |last| format!(" (up to seq {last})"))
            );
            return Ok(1);
        }
    }
    match emit(&text) {
        ControlFlow::Continue(()) => Ok(0),
        ControlFlow::Break(outcome) => outcome,
    }
}

/// Opens the database for reading; only possible while no daemon holds it.
fn open_db(paths: &Paths) -> Result<AuditStore, AuditCliError> {
    let path = paths.db();
    if !path.exists() {
        return Err(AuditCliError::NoLog(paths.state_dir.clone()));
    }
    let db = sled::open(&path).map_err(|source| AuditCliError::Open {
        path: path.clone(),
        source,
    })?;
    Ok(AuditStore::open_for_reading(&db, &path)?)
}

/// `records` as JSON lines.
fn json_lines(records: &[Record]) -> String {
    records
        .iter()
        .map(|record| audit::json_line(record) + "\n")
        .collect()
}

/// Writes `text` to standard output and flushes it. A reader that went away (a closed pipe)
/// ends the command quietly with exit code 0; other failures are errors.
fn emit(text: &str) -> ControlFlow<Result<i32, AuditCliError>> {
    let mut out = io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => ControlFlow::Continue(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ControlFlow::Break(Ok(0)),
        Err(e) => ControlFlow::Break(Err(AuditCliError::Output(e))),
    }
}
