//! `cargo xtask deb --check`: installs the package with `dpkg -i` into a fresh Debian 12 root
//! (debootstrap, minbase, kept as a tarball under `target/debian/` after the first run) and
//! checks it: the files, the conffile, the enabled unit, `veil --help` against the man pages,
//! `systemd-analyze verify` on the installed unit, a reinstall (the upgrade path); then a live
//! daemon in the root (its own mount, cgroup and network namespaces, a bpffs of its own) whose
//! pins and cgroup `dpkg --purge` must remove; and that the purge leaves none of the package's
//! files, its state in /var/lib/veil, nor the unit's enablement. Needs root.

use std::{
    fs,
    path::{Path, PathBuf},
    process::Command,
    time::Instant,
};

use anyhow::{bail, ensure, Context, Result};

use crate::{
    deb::{self, output, COMPLETIONS, CONFFILES, MAN_DIR},
    process, Workspace,
};

/// The Debian release the package is tested on.
const SUITE: &str = "bookworm";

/// Where debootstrap downloads from.
const MIRROR: &str = "http://deb.debian.org/debian";

/// What the fresh root gets besides minbase: the package's dependencies that minbase lacks
/// (so `dpkg -i` needs no network), and systemd, whose units `systemd-analyze verify` checks
/// veil's against.
const INCLUDE: &str = "bubblewrap,procps,systemd";

/// The unit's enablement link that postinst makes and purge removes.
const WANTS: &str = "etc/systemd/system/multi-user.target.wants/veil.service";

/// Checks the package at `deb`; prints how long it took.
pub fn run(ws: &Workspace, deb: &Path) -> Result<()> {
    if !process::is_root() {
        bail!("cargo xtask deb --check must run as root (debootstrap, chroot, mounts)");
    }
    let started = Instant::now();
    let tarball = fresh_root_tarball(ws)?;
    let dir = tempfile::Builder::new()
        .prefix("veil-deb-check.")
        .tempdir_in("/var/tmp")
        .context("creating the root's directory")?;
    let root = dir.path();
    process::run(
        Command::new("tar")
            .arg("-xf")
            .arg(&tarball)
            .arg("-C")
            .arg(root),
    )?;
    fs::copy(deb, root.join("tmp/veil.deb")).context("copying the package into the root")?;

    in_root(root, &["dpkg", "-i", "/tmp/veil.deb"])?;
    check_installed(root)?;
    check_help_against_man(root)?;
    check_unit(root)?;
    println!("deb check: reinstalling (the upgrade path: postinst configure with the old version)");
    in_root(root, &["dpkg", "-i", "/tmp/veil.deb"])?;

    println!("deb check: dpkg --remove keeps the configuration and /var/lib/veil");
    fs::create_dir_all(root.join("var/lib/veil"))?;
    fs::write(root.join("var/lib/veil/kept"), "state")?;
    in_root(root, &["dpkg", "--remove", "veil"])?;
    ensure!(
        !root.join("usr/bin/veil").exists(),
        "remove left /usr/bin/veil"
    );
    for kept in ["etc/veil/veil.toml", "var/lib/veil/kept"] {
        ensure!(root.join(kept).exists(), "remove deleted /{kept}");
    }
    in_root(root, &["dpkg", "-i", "/tmp/veil.deb"])?;

    live_daemon_then_purge(root)?;
    check_purged(root)?;
    println!(
        "deb check ok: {} installed, checked and purged in a fresh {SUITE} root in {:.1} s",
        deb.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The tarball of a fresh minbase root with [`INCLUDE`], made with debootstrap the first time.
fn fresh_root_tarball(ws: &Workspace) -> Result<PathBuf> {
    let tarball = deb::target_dir(ws)?
        .join("debian")
        .join(format!("{SUITE}-minbase.tar"));
    if tarball.is_file() {
        println!("deb check: fresh {SUITE} root from {}", tarball.display());
        return Ok(tarball);
    }
    if process::find_in_path("debootstrap").is_none() {
        bail!("debootstrap is missing: run `cargo xtask setup`");
    }
    let parent = tarball.parent().context("the tarball has a directory")?;
    fs::create_dir_all(parent)?;
    let dir = tempfile::Builder::new()
        .prefix("veil-debootstrap.")
        .tempdir_in("/var/tmp")?;
    println!("deb check: making a fresh {SUITE} root with debootstrap (once, about a minute)");
    process::run(
        Command::new("debootstrap")
            .args(["--variant=minbase", &format!("--include={INCLUDE}"), SUITE])
            .arg(dir.path())
            .arg(MIRROR),
    )?;
    let partial = tarball.with_extension("tar.partial");
    process::run(
        Command::new("tar")
            .arg("-cf")
            .arg(&partial)
            .arg("-C")
            .arg(dir.path())
            .arg("."),
    )?;
    fs::rename(&partial, &tarball)?;
    Ok(tarball)
}

/// Runs `args` chrooted into `root`; fails unless it exits with status 0.
fn in_root(root: &Path, args: &[&str]) -> Result<String> {
    let out = output(
        Command::new("chroot")
            .arg(root)
            .args(args)
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env("LANG", "C.UTF-8"),
    )?;
    print!("{out}");
    Ok(out)
}

/// The package's files, its conffile and the unit's enablement are in place.
fn check_installed(root: &Path) -> Result<()> {
    let mut expected = vec![
        "usr/bin/veil",
        "lib/systemd/system/veil.service",
        "etc/veil/veil.toml",
        "usr/share/doc/veil/README.md",
        "usr/share/doc/veil/copyright",
        "usr/share/man/man1/veil.1.gz",
        "usr/share/man/man1/veil-serve.1.gz",
        WANTS,
    ];
    expected.extend(COMPLETIONS.iter().map(|(_, dest)| *dest));
    for path in expected {
        // symlink_metadata: the enablement link points at /lib/..., which is the root's.
        ensure!(
            root.join(path).symlink_metadata().is_ok(),
            "/{path} is not installed"
        );
    }
    let conffiles = in_root(root, &["dpkg-query", "-W", "-f=${Conffiles}\\n", "veil"])?;
    for conffile in CONFFILES {
        ensure!(
            conffiles
                .lines()
                .any(|l| l.split_whitespace().next() == Some(conffile)),
            "{conffile} is not a conffile of veil: {conffiles:?}"
        );
    }
    let config = fs::read_to_string(root.join("etc/veil/veil.toml"))?;
    ensure!(
        config.contains("allow = [") && !config.lines().any(|l| l.trim_start().starts_with("\"")),
        "the shipped configuration allows something"
    );
    println!("deb check: files, conffile and the unit's enablement in place");
    Ok(())
}

/// Every subcommand `veil --help` lists has a man page and is named in veil(1), and every
/// subcommand's man page is one `--help` lists.
fn check_help_against_man(root: &Path) -> Result<()> {
    let help = in_root(root, &["veil", "--help"])?;
    let commands = help_commands(&help);
    ensure!(
        commands.len() > 5 && commands.iter().any(|c| c == "serve"),
        "no subcommands in `veil --help`: {help}"
    );
    let man_dir = root.join(MAN_DIR);
    let main = output(
        Command::new("gzip")
            .arg("-dc")
            .arg(man_dir.join("veil.1.gz")),
    )?;
    for name in &commands {
        ensure!(
            main.contains(&format!("veil\\-{}", name.replace('-', "\\-"))),
            "veil(1) does not name `veil {name}`"
        );
        let page = man_dir.join(format!("veil-{name}.1.gz"));
        ensure!(page.is_file(), "no man page {}", page.display());
    }
    for entry in fs::read_dir(&man_dir)? {
        let file = entry?.file_name().to_string_lossy().into_owned();
        let Some(sub) = file
            .strip_prefix("veil-")
            .and_then(|f| f.strip_suffix(".1.gz"))
        else {
            continue;
        };
        // veil-secrets-create.1 documents `veil secrets create`: its top level is `secrets`
        // (and veil-oci-hook.1 documents `veil oci-hook`: names hold dashes too).
        let documents = |c: &String| sub == c || sub.starts_with(&format!("{c}-"));
        ensure!(
            commands.iter().any(documents),
            "man page {file} documents a subcommand `veil --help` does not list"
        );
    }
    println!(
        "deb check: `veil --help` and the man pages agree on {} subcommands",
        commands.len()
    );
    Ok(())
}

/// The subcommands in clap's `--help` output: the first word of each line of the `Commands:`
/// section (but `help`).
fn help_commands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|c| *c != "help")
        .map(str::to_owned)
        .collect()
}

/// `systemd-analyze verify` passes on the installed unit, against the root's files (its
/// binary, `/bin/kill`, systemd's targets). Its man pages are checked above: systemd-analyze
/// would look them up with the host's `man`.
fn check_unit(root: &Path) -> Result<()> {
    let unit = root.join("lib/systemd/system/veil.service");
    let mut cmd = Command::new("systemd-analyze");
    cmd.arg(format!("--root={}", root.display()))
        .args(["verify", "--man=no"])
        .arg(&unit);
    let line = process::show(&cmd);
    let out = cmd.output().with_context(|| format!("starting `{line}`"))?;
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(
        out.status.success() && !said.contains("veil.service"),
        "`{line}` ({}): {said}",
        out.status
    );
    println!("deb check: systemd-analyze verify passes on the installed unit");
    Ok(())
}

/// Starts the installed `veil serve` in the root, in mount, cgroup and network namespaces of
/// its own (a fresh bpffs, a cgroup subtree, a loopback), so that it pins its programs and
/// makes its sandbox parent cgroup as it would on a host; stops it; purges the package there;
/// and checks that the purge removed the pins and the cgroup.
fn live_daemon_then_purge(root: &Path) -> Result<()> {
    let unit = fs::read_to_string(root.join("lib/systemd/system/veil.service"))?;
    let cgroup = veil_testkit::mounts::read()
        .ok()
        .and_then(|m| veil_testkit::mounts::cgroup2(&m).map(Path::to_path_buf))
        .context("no cgroup2 mount")?
        .join(format!("veil-deb-check-{}", std::process::id()));
    fs::create_dir_all(&cgroup).with_context(|| format!("creating {}", cgroup.display()))?;
    let script = root.join("tmp/live-check.sh");
    fs::write(&script, LIVE_CHECK)?;
    let result = process::run(
        Command::new("sh")
            .arg("-c")
            .arg(
                "echo $$ > \"$1/cgroup.procs\" && exec unshare --mount --cgroup --net \
                 --propagation private -- sh -eu \"$2\" \"$3\" \"$4\"",
            )
            .arg("sh")
            .arg(&cgroup)
            .arg(&script)
            .arg(root)
            .arg(setpriv_bounding_set(&unit)?),
    );
    // Whatever is left in the namespaces (a daemon the script gave up on) goes; then the mounts
    // and the cgroup can.
    let _ = fs::write(cgroup.join("cgroup.kill"), "1");
    let mut removed = remove_cgroup(&cgroup);
    for _ in 0..50 {
        if removed.is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        removed = remove_cgroup(&cgroup);
    }
    result?;
    removed.with_context(|| format!("removing {}", cgroup.display()))
}

/// Removes the cgroup `dir` and those below it (a failed check may leave veil's), deepest
/// first.
fn remove_cgroup(dir: &Path) -> std::io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            remove_cgroup(&entry.path())?;
        }
    }
    fs::remove_dir(dir)
}

/// The live part of the check, run by `sh -eu` in fresh mount, cgroup and network namespaces
/// with the root as `$1` and the unit's bounding set as `$2` (see [`live_daemon_then_purge`]).
const LIVE_CHECK: &str = r#"R="$1"
ip link set lo up
mkdir -p "$R/sys/fs/bpf" "$R/sys/fs/cgroup"
mount -t proc proc "$R/proc"
mount -t bpf bpf "$R/sys/fs/bpf"
mount -t cgroup2 cgroup2 "$R/sys/fs/cgroup"
mount -t tmpfs tmpfs "$R/run"
mount --bind /dev "$R/dev"
in_root() { chroot "$R" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
chroot "$R" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin setpriv --no-new-privs \
    --bounding-set="$2" -- veil serve --config /etc/veil/veil.toml > "$R/tmp/veil.log" 2>&1 &
pid=$!
fail() { echo "$1"; echo "--- veil serve's log:"; cat "$R/tmp/veil.log"; exit 1; }
n=0
until [ -S "$R/run/veil/veil.sock" ]; do
    n=$((n + 1))
    if [ $n -gt 100 ] || ! kill -0 $pid 2>/dev/null; then fail "veil serve did not start"; fi
    sleep 0.1
done
[ -d "$R/sys/fs/bpf/veil" ] || fail "no pins under /sys/fs/bpf/veil"
[ -d "$R/sys/fs/cgroup/veil" ] || fail "no cgroup /sys/fs/cgroup/veil"
in_root veil run --no-isolation -- /bin/true || fail "a sandbox failed"
echo "deb check: veil serve runs in the root under the unit's bounding set: pins and cgroup made, a sandbox served"
kill -TERM $pid
wait $pid || fail "veil serve failed"
[ -d "$R/sys/fs/bpf/veil" ] || fail "the pins did not outlive the daemon"
in_root dpkg --purge veil
if [ -e "$R/sys/fs/bpf/veil" ]; then ls -R "$R/sys/fs/bpf"; fail "purge left pins"; fi
[ ! -e "$R/sys/fs/cgroup/veil" ] || fail "purge left the cgroup veil"
echo "deb check: dpkg --purge removed the pins and the cgroup"
"#;

/// The unit's `CapabilityBoundingSet=` as setpriv's `--bounding-set` (`-all,+bpf,...`), so the
/// daemon runs with no more than the unit gives it.
fn setpriv_bounding_set(unit: &str) -> Result<String> {
    let caps: Vec<String> = unit
        .lines()
        .find_map(|l| l.strip_prefix("CapabilityBoundingSet="))
        .context("the unit has no CapabilityBoundingSet=")?
        .split_whitespace()
        .map(|c| format!("+{}", c.trim_start_matches("CAP_").to_lowercase()))
        .collect();
    ensure!(
        !caps.is_empty(),
        "the unit's CapabilityBoundingSet= is empty"
    );
    Ok(format!("-all,{}", caps.join(",")))
}

/// Nothing of the package is left, nor its state, nor the unit's enablement.
fn check_purged(root: &Path) -> Result<()> {
    for gone in [
        "usr/bin/veil",
        "lib/systemd/system/veil.service",
        "etc/veil",
        "var/lib/veil",
        "usr/share/doc/veil",
        "usr/share/man/man1/veil.1.gz",
        WANTS,
    ] {
        ensure!(
            root.join(gone).symlink_metadata().is_err(),
            "purge left /{gone}"
        );
    }
    let status = Command::new("chroot")
        .arg(root)
        .args(["dpkg-query", "-W", "-f=${Status}", "veil"])
        .output()?;
    let status = String::from_utf8_lossy(&status.stdout);
    ensure!(
        !status.contains("installed") || status.contains("not-installed"),
        "dpkg still knows veil: {status}"
    );
    println!("deb check: dpkg --purge left no files, state or enablement");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_commands_from_help() {
        let help = "veil keeps credentials out\n\nUsage: veil [OPTIONS] <COMMAND>\n\n\
                    Commands:\n  serve    Run the daemon\n  run      Run CMD\n            \
                    continued\n  help     Print this message\n\nOptions:\n  -v  Log more\n";
        assert_eq!(help_commands(help), ["serve", "run"]);
    }

    #[test]
    fn bounding_set_for_setpriv() {
        let unit = "[Service]\nCapabilityBoundingSet=CAP_BPF CAP_NET_ADMIN\nNoNewPrivileges=yes\n";
        assert_eq!(setpriv_bounding_set(unit).unwrap(), "-all,+bpf,+net_admin");
        assert!(setpriv_bounding_set("[Service]\n").is_err());
    }

    #[test]
    fn the_packaged_unit_limits_capabilities() {
        let unit = include_str!("../../packaging/veil.service");
        let set = setpriv_bounding_set(unit).unwrap();
        assert!(set.contains("+bpf") && !set.contains("+net_raw"), "{set}");
    }
}
