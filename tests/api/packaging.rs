//! The deployment files: the Dockerfile, `deploy/docker-compose.yml` and `deploy/roost.service`
//! parse, say what README promises (non-root, a data volume, a health check on `/healthz`,
//! systemd hardening), and name only options and paths that exist. The image itself is built
//! where Docker runs (README, "Operating Roost").

use std::path::Path;
use std::process::Command;

fn repo(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|error| panic!("{path}: {error}"))
}

/// Every `ROOST_*` variable named in `text` is one `roost --help` documents.
fn assert_real_variables(text: &str, file: &str) {
    let help = Command::new(env!("CARGO_BIN_EXE_roost"))
        .arg("--help")
        .output()
        .expect("roost --help");
    let help = String::from_utf8_lossy(&help.stdout).to_string();
    let mut named = 0;
    for (at, _) in text.match_indices("ROOST_") {
        let name: String = text[at..]
            .chars()
            .take_while(|c| c.is_ascii_uppercase() || *c == '_')
            .collect();
        if name == "ROOST_DOMAIN" {
            // The compose file's own variable, for Caddy and the base URL.
            continue;
        }
        assert!(
            help.contains(&format!("{name}=")),
            "{file} names {name}, which roost doesn't read"
        );
        named += 1;
    }
    assert!(named > 0, "{file} names no ROOST_ variable");
}

#[test]
fn the_dockerfile_builds_in_two_stages_and_runs_unprivileged_with_a_health_check() {
    let text = repo("Dockerfile");
    let known = [
        "FROM",
        "RUN",
        "COPY",
        "WORKDIR",
        "ENV",
        "USER",
        "VOLUME",
        "EXPOSE",
        "HEALTHCHECK",
        "ENTRYPOINT",
        "CMD",
        "STOPSIGNAL",
        "ARG",
        "LABEL",
    ];
    // Instructions with their continuation lines joined.
    let mut instructions: Vec<String> = Vec::new();
    let mut continued = false;
    for line in text.lines() {
        let trimmed = line.trim();
        if continued {
            if let Some(last) = instructions.last_mut() {
                last.push(' ');
                last.push_str(trimmed);
            }
        } else if !trimmed.is_empty() && !trimmed.starts_with('#') {
            let word = trimmed.split_whitespace().next().unwrap_or_default();
            assert!(known.contains(&word), "unknown instruction: {line}");
            instructions.push(trimmed.to_string());
        }
        continued = trimmed.ends_with('\\');
    }
    let starting = |word: &'static str| {
        instructions
            .iter()
            .filter(move |i| i.starts_with(word))
            .collect::<Vec<_>>()
    };
    assert!(starting("FROM ").len() >= 2, "multi-stage");
    let user = starting("USER ").last().copied().expect("a USER");
    assert!(!user.ends_with("root") && !user.ends_with(" 0"), "{user}");
    assert!(starting("VOLUME ").iter().any(|v| v.contains("/data")));
    assert!(
        starting("HEALTHCHECK ")
            .iter()
            .any(|h| h.contains("/healthz"))
    );
    // What the build stage copies exists.
    for copy in starting("COPY ")
        .into_iter()
        .filter(|c| !c.contains("--from"))
    {
        let parts: Vec<&str> = copy.split_whitespace().collect();
        for source in &parts[1..parts.len() - 1] {
            assert!(
                Path::new(env!("CARGO_MANIFEST_DIR")).join(source).exists(),
                "COPY of a missing {source}"
            );
        }
    }
    assert_real_variables(&text, "Dockerfile");
}

#[test]
fn the_compose_file_parses_and_trusts_only_caddy() {
    let text = repo("deploy/docker-compose.yml");
    let compose: serde_yaml::Value = serde_yaml::from_str(&text).expect("YAML");
    let services = &compose["services"];
    let roost = &services["roost"];
    let caddy = &services["caddy"];
    assert!(roost.is_mapping() && caddy.is_mapping(), "{compose:?}");
    let caddy_address = caddy["networks"]["internal"]["ipv4_address"]
        .as_str()
        .expect("caddy's fixed address");
    assert_eq!(
        roost["environment"]["ROOST_TRUSTED_PROXIES"].as_str(),
        Some(caddy_address)
    );
    assert!(
        roost.get("ports").is_none(),
        "Roost is reached through Caddy only"
    );
    assert!(repo("deploy/Caddyfile").contains("reverse_proxy roost:8080"));
    assert_real_variables(&text, "deploy/docker-compose.yml");
}

#[test]
fn the_systemd_unit_is_hardened_and_verifies() {
    let text = repo("deploy/roost.service");
    for line in [
        "DynamicUser=yes",
        "StateDirectory=roost",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "ExecStart=/usr/local/bin/roost serve",
    ] {
        assert!(text.lines().any(|l| l.trim() == line), "missing {line}");
    }
    for section in ["[Unit]", "[Service]", "[Install]"] {
        assert!(text.contains(section), "missing {section}");
    }
    assert_real_variables(&text, "deploy/roost.service");
    // systemd's own check, on a copy that runs the binary just built.
    let analyze = Command::new("systemd-analyze").arg("--version").output();
    if analyze.is_ok_and(|output| output.status.success()) {
        let dir = tempfile::tempdir().unwrap();
        let unit = dir.path().join("roost.service");
        std::fs::write(
            &unit,
            text.replace("/usr/local/bin/roost", env!("CARGO_BIN_EXE_roost")),
        )
        .unwrap();
        let verified = Command::new("systemd-analyze")
            .arg("verify")
            .arg(&unit)
            .output()
            .expect("systemd-analyze");
        assert!(
            verified.status.success() && verified.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&verified.stderr)
        );
    }
}
