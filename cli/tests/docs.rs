//! `docs/cli.md` is the `--help` of every command; this keeps it in step with the binary (regenerate the file
//! with the loop described at its top when a command changes).

use std::process::Command;

#[test]
fn docs_cli_md_is_the_help_of_every_command() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/cli.md"))
        .expect("docs/cli.md");
    let mut sections = 0;
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        let Some(cmd) = line
            .strip_prefix("## `wsis")
            .and_then(|l| l.strip_suffix('`'))
        else {
            continue;
        };
        let args: Vec<&str> = cmd.split_whitespace().collect();
        let block: Vec<&str> = lines
            .by_ref()
            .skip_while(|l| *l != "```text")
            .skip(1)
            .take_while(|l| *l != "```")
            .collect();
        let out = Command::new(env!("CARGO_BIN_EXE_wsis"))
            .args(&args)
            .arg("--help")
            .output()
            .expect("wsis runs");
        let help = String::from_utf8_lossy(&out.stdout);
        let help: Vec<&str> = help.lines().map(str::trim_end).collect();
        assert_eq!(block, help, "docs/cli.md is stale for `wsis{cmd}`");
        sections += 1;
    }
    assert!(sections >= 30, "only {sections} commands documented");
}
