//! The repository tests on its own: no tracked file (except the README and docs/, which may
//! explain where test data came from) opens a path in a `shared` folder beside the clone, which
//! a user's clone does not have.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The tracked files (`git ls-files`), or, without git, every file outside the build and
/// dependency folders.
fn files(root: &Path) -> Vec<PathBuf> {
    if let Ok(out) = std::process::Command::new("git")
        .arg("-C")
        .arg(root)
        .args(["ls-files", "-z"])
        .output()
    {
        if out.status.success() {
            return out
                .stdout
                .split(|b| *b == 0)
                .filter(|p| !p.is_empty())
                .map(|p| PathBuf::from(String::from_utf8_lossy(p).into_owned()))
                .collect();
        }
    }
    let mut found = Vec::new();
    let mut todo = vec![PathBuf::new()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(root.join(&dir)).unwrap().flatten() {
            let name = entry.file_name();
            let rel = dir.join(&name);
            let skip = [".git", "target", "node_modules", "test-results", "data"];
            if entry.file_type().unwrap().is_dir() {
                if !skip.iter().any(|s| name == *s) {
                    todo.push(rel);
                }
            } else {
                found.push(rel);
            }
        }
    }
    found
}

/// The folder's name, built from parts so that this file names no such path itself.
fn shared() -> String {
    ["sha", "red"].concat()
}

/// Where `text` names a `shared` folder outside the repository: the folder one level up,
/// written with either slash, or ".." and the folder's name as parts of a path being joined.
fn outside_references(text: &str) -> Vec<String> {
    let shared = shared();
    let needles = [
        format!("../{shared}"),
        format!("..\\{shared}"),
        format!("\"..\", \"{shared}\""),
        format!("'..', '{shared}'"),
        format!("\"..\",\"{shared}\""),
    ];
    text.lines()
        .enumerate()
        .filter(|(_, line)| needles.iter().any(|n| line.contains(n.as_str())))
        .map(|(n, line)| format!("{}: {}", n + 1, line.trim()))
        .collect()
}

#[test]
fn the_check_finds_references_outside() {
    for bad in [
        "let p = concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/../../{S}/stripe/x.json\");",
        "default=os.path.join(HERE, \"..\", \"..\", \"{S}\", \"stripe\", \"x.json\")",
        "(`../{S}/stripe/fixtures3.json`)",
    ] {
        let bad = bad.replace("{S}", &shared());
        assert_eq!(outside_references(&bad).len(), 1, "{bad}");
    }
    assert!(outside_references("the state is shared by every request").is_empty());
    assert!(outside_references("use stripe_shared::SetupIntent;").is_empty());
}

#[test]
fn no_tracked_file_opens_a_path_outside_the_repository() {
    let root = root();
    let files = files(&root);
    assert!(
        files.iter().any(|f| f.ends_with("Cargo.toml")),
        "the repository's files are listed"
    );
    let mut offenders = Vec::new();
    for file in files {
        if file == Path::new("README.md") || file.starts_with("docs") {
            continue;
        }
        let Ok(bytes) = std::fs::read(root.join(&file)) else {
            continue; // deleted in the work tree
        };
        for hit in outside_references(&String::from_utf8_lossy(&bytes)) {
            offenders.push(format!("{}:{hit}", file.display()));
        }
    }
    assert!(
        offenders.is_empty(),
        "files that reach outside the repository (a user's clone has no such folder beside it; keep test \
         data in the repository):\n{}",
        offenders.join("\n")
    );
}

/// Where `text` chooses a free port by binding and dropping a listener at once (another process
/// may take the port before the server meant for it listens), or counts on the next port.
fn port_races(text: &str) -> Vec<String> {
    let flat: String = text.split_whitespace().collect();
    let needles = [
        "bind(\"127.0.0.1:0\").unwrap().local_addr().unwrap().port()",
        "port+1",
        "Port+1",
    ];
    needles
        .iter()
        .filter(|n| flat.contains(*n))
        .map(|n| n.to_string())
        .collect()
}

#[test]
fn the_port_check_finds_a_port_picked_for_later() {
    let picked = "let port = std::net::TcpListener::bind(\"127.0.0.1:0\")\n    .unwrap()\n    \
                  .local_addr()\n    .unwrap()\n    .port();";
    assert_eq!(port_races(picked).len(), 1);
    assert_eq!(port_races("const smtpPort = port + 1;").len(), 1);
    assert!(port_races("let listener = TcpListener::bind(\"127.0.0.1:0\").unwrap();").is_empty());
}

/// Every test server binds port 0 itself and reports the port it got (or the test holds the
/// socket): none is started on a port chosen earlier.
#[test]
fn no_test_server_is_started_on_a_port_chosen_earlier() {
    let root = root();
    let mut offenders = Vec::new();
    for file in files(&root) {
        let name = file.to_string_lossy();
        let source = [".rs", ".ts", ".mjs", ".py", ".sh"]
            .iter()
            .any(|e| name.ends_with(e));
        if !source || file == Path::new(file!()) {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(root.join(&file)) else {
            continue;
        };
        for hit in port_races(&text) {
            offenders.push(format!("{name}: {hit}"));
        }
    }
    assert!(
        offenders.is_empty(),
        "ports chosen before the server that uses them listens:\n{}",
        offenders.join("\n")
    );
}
