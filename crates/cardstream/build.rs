//! The revision `cardstream_build_info` reports: CARDSTREAM_REVISION when the build is given
//! one (the Dockerfile's build argument, where there is no .git), else the checkout's commit.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=CARDSTREAM_REVISION");
    // A new commit moves a branch ref (or HEAD itself when detached). Only files that exist:
    // watching a missing one (no .git in a Docker build; a file .git in a worktree) would rerun
    // this script, and rebuild the binary, on every build.
    for path in ["HEAD", "refs/heads", "packed-refs"] {
        if let Some(found) = git_path(path) {
            println!("cargo:rerun-if-changed={found}");
        }
    }
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

/// Where git keeps `path` for this checkout, if git answers and the file exists.
fn git_path(path: &str) -> Option<String> {
    let output = Command::new("git")
        .args(["rev-parse", "--path-format=absolute", "--git-path", path])
        .output()
        .ok()?;
    let found = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    (output.status.success() && std::path::Path::new(&found).exists()).then_some(found)
}
