//! The `veil` command: parses the command line and runs the chosen subcommand. See the
//! library's crate documentation for how veil is put together.

use std::{process::ExitCode, sync::OnceLock};

use anyhow::{bail, Context, Result};
use clap::{CommandFactory, FromArgMatches};
use tokio::signal::unix::{signal, SignalKind};

use veil::container::hook::Done;
use veil::{
    api::client::ApiClient,
    audit::RetentionPolicy,
    cli::{AttachArgs, Cli, Command, DetachArgs, EgressCommand, ProxyArgs, SecretArgs},
    config::Paths,
    daemon::Options,
    secrets::SecretsConfig,
    steering::{BpfLogLevel, SandboxSettings, SettingsOverride, SteeringConfig},
};
use veil_core::policy::config::Egress;

fn main() -> ExitCode {
    let cli = parse();
    init_logging(&cli);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("veil: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(e) => {
            eprintln!("veil: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: Cli) -> Result<i32> {
    let paths = Paths::from(cli.paths);
    match cli.command {
        Command::Serve(args) => {
            let defaults =
                SettingsOverride::from(args.settings).apply(&SandboxSettings::host_defaults());
            let mut options = options(paths, &args.proxy, defaults, args.secrets);
            options.api_listen = args.api_listen;
            options.audit_retention = args.retention.into();
            serve(options).await
        }
        Command::Run(args) => {
            let options = options(
                paths,
                &args.proxy,
                SandboxSettings::host_defaults(),
                args.secrets,
            );
            let request = veil::run::Request {
                sandbox: args.sandbox,
                user: args.user,
                settings: SettingsOverride::from(args.settings),
                isolate: !args.no_isolation,
                env: args.env,
                env_files: args.env_file,
                binds: args.bind,
                ro_binds: args.ro_bind,
                command: args.command,
            };
            Ok(veil::run::run(&options, &request).await?)
        }
        Command::Attach(args) => attach(&paths, args).await,
        Command::Detach(args) => detach(&paths, args).await,
        Command::OciHook => oci_hook(&paths).await,
        Command::Hooks(command) => {
            println!("{}", veil::cli_container::hooks(&paths, command)?);
            Ok(0)
        }
        Command::OciRuntime(args) => Err(veil::cli_container::oci_runtime(&paths, args).into()),
        Command::Audit(args) => Ok(veil::cli_audit::audit(&paths, args).await?),
        Command::Reset => {
            let report = veil::reset::reset(&paths)?;
            println!(
                "detached {} steered cgroup(s), removed {} and forgot {} sandbox(es){}",
                report.detached,
                paths.bpf_dir.display(),
                report.sandboxes.len(),
                if report.sandboxes.is_empty() {
                    String::new()
                } else {
                    format!(": {}", report.sandboxes.join(", "))
                }
            );
            Ok(0)
        }
        Command::Ca => {
            let ca = veil::tls::ca::Ca::load_or_create(&paths.ca_dir())?;
            print!("{}", ca.cert_pem());
            Ok(0)
        }
        Command::Secrets(command) => Ok(veil::cli_secrets::secrets(&paths, command).await?),
        Command::Env(args) => Ok(veil::cli_secrets::env(&paths, args).await?),
        Command::Egress(command) => egress(&paths, command).await,
        Command::Status(args) => Ok(veil::cli_status::status(&paths, args).await?),
        Command::Generate(command) => {
            for file in veil::generate::generate(&command)? {
                println!("{}", file.display());
            }
            Ok(0)
        }
    }
}

/// The command line, with `--version` naming the embedded eBPF object's build id too.
fn parse() -> Cli {
    // clap takes a version it can keep for the program's life (or its `string` feature).
    static VERSION: OnceLock<String> = OnceLock::new();
    let version = VERSION.get_or_init(|| {
        format!(
            "{} (eBPF object {})",
            env!("CARGO_PKG_VERSION"),
            veil::steering::object_build_id()
        )
    });
    let matches = Cli::command().version(version.as_str()).get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

fn options(
    paths: Paths,
    proxy: &ProxyArgs,
    defaults: SandboxSettings,
    secrets: SecretArgs,
) -> Options {
    Options {
        limits: (&proxy.limits).into(),
        config: proxy.config.clone(),
        upstream_ca: proxy.upstream_ca.clone(),
        audit_retention: RetentionPolicy::standard(),
        steering: SteeringConfig {
            dir: paths.bpf_dir.clone(),
            listen: proxy.listen,
            listen6: Some(proxy.listen6),
            defaults,
            log_level: proxy.bpf_log,
        },
        paths,
        secrets: SecretsConfig {
            master_key_file: secrets.master_key_file,
            prefix: secrets.placeholder_prefix,
        },
        api_listen: None,
        dns_resolvers: proxy.dns_upstream.clone(),
    }
}

async fn serve(options: Options) -> Result<i32> {
    let mut term = signal(SignalKind::terminate()).context("installing a SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("installing a SIGINT handler")?;
    let running = veil::serve::spawn(&options)?;
    // The listeners are bound: connects steered from now on are queued until accepted.
    match veil::notify::ready() {
        Ok(true) => log::debug!("told systemd veil is ready"),
        Ok(false) => {}
        Err(e) => log::warn!("telling systemd veil is ready (NOTIFY_SOCKET): {e}"),
    }
    tokio::select! {
        _ = term.recv() => log::info!("SIGTERM: shutting down"),
        _ = int.recv() => log::info!("SIGINT: shutting down"),
    }
    running.shutdown().await;
    log::info!("stopped; sandboxes stay steered and their connects are refused until veil returns");
    Ok(0)
}

async fn attach(paths: &Paths, args: AttachArgs) -> Result<i32> {
    let sandbox = veil::cli_container::attach(paths, args).await?;
    println!(
        "steering {} (cgroup id {}) through veil as sandbox {}",
        sandbox.cgroup.display(),
        sandbox.cgroup_id,
        sandbox.name
    );
    Ok(0)
}

async fn detach(paths: &Paths, args: DetachArgs) -> Result<i32> {
    let sandbox = veil::cli_container::detach(paths, args).await?;
    println!(
        "{} (sandbox {}) is no longer steered through veil",
        sandbox.cgroup.display(),
        sandbox.name
    );
    Ok(0)
}

async fn oci_hook(paths: &Paths) -> Result<i32> {
    match veil::cli_container::oci_hook(paths).await? {
        Done::Attached(sandbox) => println!(
            "veil: container steered as sandbox {} (cgroup {})",
            sandbox.name,
            sandbox.cgroup.display()
        ),
        Done::Removed(sandbox) => println!("veil: sandbox {} removed", sandbox.name),
        Done::NotASandbox => println!("veil: the container was no sandbox; nothing to remove"),
    }
    Ok(0)
}

async fn egress(paths: &Paths, command: EgressCommand) -> Result<i32> {
    let client = daemon_client(paths, "veil egress").await?;
    let mut state = client.egress().await?;
    let changed = match command {
        EgressCommand::List => None,
        EgressCommand::Allow(args) => {
            let list = pick(&mut state.rules, args.passthrough);
            for rule in args.rules {
                if !list.contains(&rule) {
                    list.push(rule);
                }
            }
            Some(state.rules.clone())
        }
        EgressCommand::Deny(args) => {
            let list = pick(&mut state.rules, args.passthrough);
            for rule in &args.rules {
                if !list.contains(rule) {
                    bail!("{rule} is not in the list (see `veil egress list`)");
                }
            }
            list.retain(|r| !args.rules.contains(r));
            Some(state.rules.clone())
        }
    };
    if let Some(rules) = changed {
        state = client.set_egress(&rules).await?;
    }
    println!("egress policy ({}):", state.config);
    println!(
        "  allow:       {}",
        shown(&state.rules.allow, "nothing: every destination is denied")
    );
    println!("  passthrough: {}", shown(&state.rules.passthrough, "none"));
    Ok(0)
}

fn pick(rules: &mut Egress, passthrough: bool) -> &mut Vec<String> {
    if passthrough {
        &mut rules.passthrough
    } else {
        &mut rules.allow
    }
}

fn shown(list: &[String], empty: &str) -> String {
    if list.is_empty() {
        empty.to_owned()
    } else {
        list.join(", ")
    }
}

async fn daemon_client(paths: &Paths, what: &str) -> Result<ApiClient> {
    ApiClient::connect(&paths.socket()).await.with_context(|| {
        format!("{what} needs the daemon, which steers cgroups and keeps the audit log: start it with `veil serve`")
    })
}

fn init_logging(cli: &Cli) {
    let own = match cli.verbose {
        0 if matches!(cli.command, Command::Serve(_)) => "info",
        0 => "warn",
        1 => "debug",
        _ => "trace",
    };
    let bpf = match &cli.command {
        Command::Serve(a) => a.proxy.bpf_log,
        Command::Run(a) => a.proxy.bpf_log,
        _ => BpfLogLevel::Off,
    };
    veil::logging::init(&format!("warn,veil={own},veil_ebpf={}", bpf.filter()));
}
