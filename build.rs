//! Tells the tests what this machine lacks, so that `cargo test` reports the
//! tests that need it as *ignored, with the reason* instead of letting them pass
//! without doing their work.
//!
//! - `no_shared`: `../shared` (the canonical example, CoNLL-2003, the reference
//!   scorer) is not beside the repository;
//! - `no_base`: the base encoder `models/base/` (from `scripts/fetch_base.sh`) is absent;
//! - `no_chromium`: no Chromium or Chrome to run the HTML page in (`$CHROME`, or
//!   `chromium`, `chromium-browser`, `google-chrome` on `PATH`);
//! - `no_pty`: no util-linux `script` to run the binary on a pseudo-terminal with
//!   (macOS has a BSD `script` with other options);
//! - `no_spark_runtime`: no `python3` or no Java (`java -version`) for the Spark tests.
//!
//! Only paths that exist are watched: Cargo re-runs a build script (and rebuilds
//! the crate) on *every* build while a watched path is missing, and `PATH` differs
//! between shells. So the appearance of `models/base` is seen through `models/`,
//! and that of `../shared` or of a browser after `touch build.rs` (the ignore
//! reasons say so).

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    for cfg in [
        "no_shared",
        "no_base",
        "no_chromium",
        "no_pty",
        "no_spark_runtime",
    ] {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
    }

    let shared = Path::new("../shared");
    if shared.is_dir() {
        // One file inside is enough to notice the directory going away.
        watch_first(&[shared.join("examples/aleppo.txt"), shared.to_path_buf()]);
    } else {
        println!("cargo::rustc-cfg=no_shared");
    }

    let base = Path::new("models/base/model.safetensors");
    if base.is_file() {
        watch_first(&[base.to_path_buf()]);
    } else {
        println!("cargo::rustc-cfg=no_base");
        // models/ is small (a few files) and changes when base/ is added.
        watch_first(&[PathBuf::from("models")]);
    }

    println!("cargo::rerun-if-env-changed=CHROME");
    match chromium() {
        Some(path) => watch_first(&[path]),
        None => println!("cargo::rustc-cfg=no_chromium"),
    }

    let util_linux_script = std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("util-linux"));
    if !util_linux_script {
        println!("cargo::rustc-cfg=no_pty");
    }

    let runs = |cmd: &str, arg: &str| {
        std::process::Command::new(cmd)
            .arg(arg)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    println!("cargo::rerun-if-env-changed=JAVA_HOME");
    if !(runs("python3", "--version") && runs("java", "-version")) {
        println!("cargo::rustc-cfg=no_spark_runtime");
    }
}

/// Watches the first of `paths` that exists (none if none does).
fn watch_first(paths: &[PathBuf]) {
    if let Some(p) = paths.iter().find(|p| p.exists()) {
        println!("cargo::rerun-if-changed={}", p.display());
    }
}

/// The browser the HTML test drives, found as the test itself finds it.
fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CHROME").map(PathBuf::from) {
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| {
            ["chromium", "chromium-browser", "google-chrome"].map(|name| dir.join(name))
        })
        .find(|p| p.is_file())
}
