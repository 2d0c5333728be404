//! `cardstream completions <shell>` prints a script each shell accepts, naming every command.

#![allow(clippy::unwrap_used)]

use std::process::Command;

#[test]
fn each_shell_gets_a_completion_script_with_every_command() {
    for (shell, marker) in [
        ("bash", "_cardstream()"),
        ("zsh", "#compdef cardstream"),
        ("fish", "complete -c cardstream"),
    ] {
        let output = Command::new(env!("CARGO_BIN_EXE_cardstream"))
            .args(["completions", shell])
            .output()
            .unwrap();
        assert!(output.status.success(), "{shell}");
        let script = String::from_utf8(output.stdout).unwrap();
        assert!(script.contains(marker), "{shell}: no {marker}");
        for command in [
            "gateway",
            "aggregator",
            "migrate",
            "init-admin",
            "completions",
        ] {
            assert!(script.contains(command), "{shell}: no {command}");
        }
        assert!(output.stderr.is_empty(), "{shell}: stderr");
    }
    // bash itself reads it without complaint.
    let status = Command::new("bash")
        .args([
            "-c",
            &format!(
                "source <({} completions bash) && complete -p cardstream",
                env!("CARGO_BIN_EXE_cardstream")
            ),
        ])
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
}

#[test]
fn help_groups_the_commands_and_explains_the_exit_statuses() {
    let output = Command::new(env!("CARGO_BIN_EXE_cardstream"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for heading in [
        "Runtime components:",
        "Data tools:",
        "Admin:",
        "Exit status:",
    ] {
        assert!(help.contains(heading), "{help}");
    }
    let usage = Command::new(env!("CARGO_BIN_EXE_cardstream"))
        .arg("no-such-command")
        .output()
        .unwrap();
    assert_eq!(usage.status.code(), Some(2));
}
