//! The revision `cardstream_build_info` reports: CARDSTREAM_REVISION when the build is given
//! one (the Dockerfile's build argument, where there is no .git), else the checkout's commit.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=CARDSTREAM_REVISION");
    // A new commit moves a branch ref (or HEAD itself when detached).
    println!("cargo:rerun-if-changed=../../.git/HEAD");
    println!("cargo:rerun-if-changed=../../.git/refs/heads");
    let revision = std::env::var("CARDSTREAM_REVISION")
        .ok()
        .filter(|r| !r.trim().is_empty())
        .or_else(|| {
            let output = Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()?;
            output
                .status
                .success()
                .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=CARDSTREAM_REVISION={revision}");
}
