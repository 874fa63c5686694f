//! `cargo xtask deb`: the Debian package, `target/debian/veil_<version>_<arch>.deb`, built with
//! dpkg-deb from a release build: the binary, the systemd unit, the default configuration (a
//! conffile), man pages and shell completions that the binary generates from its own command
//! line (`veil generate`), the README, and the maintainer scripts in `packaging/debian/`.

use std::{
    env, fs,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
};

use anyhow::{bail, Context, Result};

use crate::{build_cmd, process, setup, Workspace};

/// The package's name.
pub const NAME: &str = "veil";

/// What the package depends on besides the shared libraries dpkg-shlibdeps finds: `veil run`
/// isolates commands with bubblewrap, the maintainer scripts use deb-systemd-helper and
/// deb-systemd-invoke, and the unit reloads with procps' `/bin/kill`.
const DEPENDS: &str = "bubblewrap, init-system-helpers (>= 1.54~), procps";

/// Where each file of the package comes from: (path in the package, source under the
/// workspace root, mode).
const FROM_TREE: &[(&str, &str, u32)] = &[
    (
        "lib/systemd/system/veil.service",
        "packaging/veil.service",
        0o644,
    ),
    ("etc/veil/veil.toml", "packaging/veil.toml", 0o644),
    ("usr/share/doc/veil/README.md", "README.md", 0o644),
    ("usr/share/doc/veil/copyright", "packaging/copyright", 0o644),
    ("DEBIAN/postinst", "packaging/debian/postinst", 0o755),
    ("DEBIAN/prerm", "packaging/debian/prerm", 0o755),
    ("DEBIAN/postrm", "packaging/debian/postrm", 0o755),
];

/// The conffiles: configuration dpkg keeps across upgrades when the administrator changed it,
/// and removes only on purge.
pub const CONFFILES: &[&str] = &["/etc/veil/veil.toml"];

/// Where the completion scripts `veil generate completions` writes go: (its file name, path
/// in the package).
pub const COMPLETIONS: &[(&str, &str)] = &[
    ("veil.bash", "usr/share/bash-completion/completions/veil"),
    ("_veil", "usr/share/zsh/vendor-completions/_veil"),
    ("veil.fish", "usr/share/fish/vendor_completions.d/veil.fish"),
];

/// Where the man pages go in the package.
pub const MAN_DIR: &str = "usr/share/man/man1";

/// Sets up (`cargo xtask setup`: the toolchain, and dpkg-dev for dpkg-shlibdeps), then builds
/// veil (release) and the package; returns the package's path.
pub fn run(ws: &Workspace) -> Result<PathBuf> {
    setup::run(ws)?;
    package(ws)
}

/// Builds veil (release) and the package; returns the package's path.
pub fn package(ws: &Workspace) -> Result<PathBuf> {
    build_cmd::run(ws, true)?;
    let binary = target_dir(ws)?.join("release/veil");
    build(ws, &binary)
}

/// Cargo's target directory: `CARGO_TARGET_DIR` when set, else `target/` in the workspace.
pub fn target_dir(ws: &Workspace) -> Result<PathBuf> {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            // cargo reads a relative CARGO_TARGET_DIR against the directory it runs in, which
            // is where xtask runs too.
            std::path::absolute(PathBuf::from(dir)).context("resolving CARGO_TARGET_DIR")
        }
        _ => Ok(ws.root.join("target")),
    }
}

/// Packages `binary` (a release build of veil) into `<target>/debian/`; returns the path of
/// the `.deb`.
pub fn build(ws: &Workspace, binary: &Path) -> Result<PathBuf> {
    if !binary.is_file() {
        bail!("{} is missing: build veil first", binary.display());
    }
    let out_dir = target_dir(ws)?.join("debian");
    fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let work = tempfile::tempdir_in(&out_dir).context("creating a staging directory")?;
    // dpkg-shlibdeps expects a source tree: debian/control, and the package's files under
    // debian/<package>/.
    let root = work.path().join("debian").join(NAME);
    install(binary, &root.join("usr/bin/veil"), 0o755)?;
    for (dest, src, mode) in FROM_TREE {
        install(&ws.root.join(src), &root.join(dest), *mode)?;
    }
    man_pages(binary, &root, work.path())?;
    completions(binary, &root, work.path())?;
    write(&root.join("DEBIAN/conffiles"), &lines(CONFFILES), 0o644)?;
    write(&root.join("DEBIAN/md5sums"), &md5sums(&root)?, 0o644)?;

    let version = env!("CARGO_PKG_VERSION");
    let arch = output(Command::new("dpkg").arg("--print-architecture"))?;
    let arch = arch.trim();
    let control = Control {
        version,
        arch,
        depends: format!("{}, {DEPENDS}", shlib_depends(work.path())?),
        installed_kib: installed_size(&root)?,
    };
    write(&root.join("DEBIAN/control"), &control.render(), 0o644)?;

    let deb = out_dir.join(format!("{NAME}_{version}_{arch}.deb"));
    process::run(
        Command::new("dpkg-deb")
            .args(["--root-owner-group", "-Zxz", "--build"])
            .arg(&root)
            .arg(&deb),
    )?;
    println!("package: {}", deb.display());
    Ok(deb)
}

/// The fields of `DEBIAN/control` that vary.
struct Control<'a> {
    version: &'a str,
    arch: &'a str,
    depends: String,
    installed_kib: u64,
}

impl Control<'_> {
    fn render(&self) -> String {
        format!(
            "Package: {NAME}\n\
             Version: {}\n\
             Architecture: {}\n\
             Maintainer: veil developers <root@localhost>\n\
             Installed-Size: {}\n\
             Depends: {}\n\
             Section: net\n\
             Priority: optional\n\
             Description: keeps credentials out of sandboxes\n \
             veil is a root daemon that steers sandboxed processes' outbound connections\n \
             through its proxy with eBPF cgroup programs, applies a default-deny egress\n \
             policy, swaps placeholders for real secrets only towards verified hosts, and\n \
             records every decision in a hash-chained audit log. `veil run` starts a\n \
             command in a sandbox of its own (network namespace, bubblewrap isolation).\n",
            self.version, self.arch, self.installed_kib, self.depends
        )
    }
}

/// Copies `src` to `dest` (making its directory) with `mode`.
fn install(src: &Path, dest: &Path, mode: u32) -> Result<()> {
    let dir = dest.parent().context("a destination has a directory")?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    fs::copy(src, dest)
        .with_context(|| format!("copying {} to {}", src.display(), dest.display()))?;
    fs::set_permissions(dest, fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", dest.display()))
}

/// Writes `text` to `path` with `mode`.
fn write(path: &Path, text: &str, mode: u32) -> Result<()> {
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", path.display()))
}

/// `items`, one a line.
fn lines(items: &[&str]) -> String {
    items.iter().map(|i| format!("{i}\n")).collect()
}

/// Has `binary` write its man pages, and installs them gzipped (as Debian wants them).
fn man_pages(binary: &Path, root: &Path, work: &Path) -> Result<()> {
    let generated = work.join("man");
    fs::create_dir_all(&generated)?;
    process::run(
        Command::new(binary)
            .arg("generate")
            .arg("man")
            .arg(&generated),
    )?;
    let dest = root.join(MAN_DIR);
    fs::create_dir_all(&dest)?;
    let mut pages = 0;
    for entry in fs::read_dir(&generated)? {
        let page = entry?.path();
        // -n: no name or time stamp in the header, so the same page compresses the same.
        let gz = output_bytes(Command::new("gzip").args(["-9nc"]).arg(&page))?;
        let name = page.file_name().context("a page has a file name")?;
        let mut target = dest.join(name).into_os_string();
        target.push(".gz");
        fs::write(&target, gz).with_context(|| format!("writing {target:?}"))?;
        fs::set_permissions(&target, fs::Permissions::from_mode(0o644))?;
        pages += 1;
    }
    if pages == 0 {
        bail!("`veil generate man` wrote no pages");
    }
    Ok(())
}

/// Has `binary` write its completion scripts and installs them where each shell looks.
fn completions(binary: &Path, root: &Path, work: &Path) -> Result<()> {
    let generated = work.join("completions");
    fs::create_dir_all(&generated)?;
    process::run(
        Command::new(binary)
            .arg("generate")
            .arg("completions")
            .arg(&generated),
    )?;
    for (name, dest) in COMPLETIONS {
        install(&generated.join(name), &root.join(dest), 0o644)?;
    }
    Ok(())
}

/// `DEBIAN/md5sums`: the digest of every file outside `DEBIAN/`.
fn md5sums(root: &Path) -> Result<String> {
    let mut files = Vec::new();
    walk(root, &mut files)?;
    let mut cmd = Command::new("md5sum");
    cmd.current_dir(root);
    for file in files {
        let rel = file.strip_prefix(root).context("walked below the root")?;
        if !rel.starts_with("DEBIAN") {
            cmd.arg(rel);
        }
    }
    output(&mut cmd)
}

/// Every file below `dir`, sorted.
fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries = fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<Vec<_>>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, files)?;
        } else {
            files.push(path);
        }
    }
    Ok(())
}

/// `Installed-Size`: the files' sizes in KiB, each rounded up, as dpkg-gencontrol counts.
fn installed_size(root: &Path) -> Result<u64> {
    let mut files = Vec::new();
    walk(root, &mut files)?;
    let mut kib = 0;
    for file in files {
        if file
            .strip_prefix(root)
            .is_ok_and(|r| r.starts_with("DEBIAN"))
        {
            continue;
        }
        kib += file.metadata()?.len().div_ceil(1024);
    }
    Ok(kib)
}

/// The shared-library dependencies of the staged binary (`libc6 (>= 2.34), libgcc-s1 ...`),
/// from dpkg-shlibdeps, which maps each library the binary links and the newest symbol
/// version it uses to the package and version that provide them.
fn shlib_depends(work: &Path) -> Result<String> {
    write(
        &work.join("debian/control"),
        &format!("Source: {NAME}\n\nPackage: {NAME}\nArchitecture: any\n"),
        0o644,
    )?;
    let out = output(
        Command::new("dpkg-shlibdeps")
            .current_dir(work)
            .arg("-O")
            .arg(format!("debian/{NAME}/usr/bin/veil")),
    )?;
    parse_shlibdeps(&out).with_context(|| format!("dpkg-shlibdeps said {out:?}"))
}

/// The value of `shlibs:Depends=` in dpkg-shlibdeps' output.
fn parse_shlibdeps(out: &str) -> Option<String> {
    out.lines()
        .find_map(|l| l.strip_prefix("shlibs:Depends="))
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// Runs `cmd` with its standard output captured as text; fails unless it exits with status 0.
pub fn output(cmd: &mut Command) -> Result<String> {
    let line = process::show(cmd);
    String::from_utf8(output_bytes(cmd)?).with_context(|| format!("`{line}` printed non-UTF-8"))
}

/// Runs `cmd` with its standard output captured; fails unless it exits with status 0.
fn output_bytes(cmd: &mut Command) -> Result<Vec<u8>> {
    let line = process::show(cmd);
    let out = cmd.output().with_context(|| format!("starting `{line}`"))?;
    if !out.status.success() {
        bail!(
            "`{line}` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_shlibdeps() {
        assert_eq!(
            parse_shlibdeps("shlibs:Depends=libc6 (>= 2.34), libgcc-s1 (>= 4.2)\n").as_deref(),
            Some("libc6 (>= 2.34), libgcc-s1 (>= 4.2)")
        );
        assert_eq!(parse_shlibdeps("shlibs:Depends=\n"), None);
        assert_eq!(parse_shlibdeps(""), None);
    }

    #[test]
    fn control_has_the_fields_dpkg_needs() {
        let control = Control {
            version: "0.1.0",
            arch: "amd64",
            depends: "libc6 (>= 2.34), bubblewrap".into(),
            installed_kib: 12345,
        }
        .render();
        for field in [
            "Package: veil\n",
            "Version: 0.1.0\n",
            "Architecture: amd64\n",
            "Maintainer: ",
            "Installed-Size: 12345\n",
            "Depends: libc6 (>= 2.34), bubblewrap\n",
            "Description: ",
        ] {
            assert!(control.contains(field), "no {field:?} in {control}");
        }
        // Continuation lines of the description start with a space; none is empty.
        for line in control
            .lines()
            .skip_while(|l| !l.starts_with("Description"))
            .skip(1)
        {
            assert!(line.starts_with(' ') && line.trim().len() > 1, "{line:?}");
        }
    }
}
