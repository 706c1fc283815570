use super::*;

const SYSTEM: &str = "7h7qgvs4kgzsn8a6rb273saxyqh4jxlz-nixos-system";
const ETC: &str = "1h7qgvs4kgzsn8a6rb273saxyqh4jxlz-etc";
const HOSTS: &str = "2h7qgvs4kgzsn8a6rb273saxyqh4jxlz-etc-hosts";
const PYTHON: &str = "3h7qgvs4kgzsn8a6rb273saxyqh4jxlz-python3";
const TOKEN: &str = "ghp_a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8";

#[test]
fn empty_patterns_and_identifiers_are_refused() {
    let error = |options: ScanOptions| ScanRules::new(&options).unwrap_err().to_string();
    assert_eq!(
        error(ScanOptions {
            patterns: vec!["secret".into(), String::new()],
            ..ScanOptions::default()
        }),
        "a pattern to report is empty (it would match everywhere)"
    );
    assert_eq!(
        error(ScanOptions {
            identifiers: vec!["  ".into()],
            ..ScanOptions::default()
        }),
        "a personal identifier to report is empty or only spaces (it would match everywhere)"
    );
}

fn rules(options: ScanOptions) -> Arc<ScanRules> {
    Arc::new(ScanRules::new(&options).unwrap())
}

fn file(scanner: &mut Scanner, path: &str, content: &str) {
    scanner.begin_member(path.as_bytes(), None);
    scanner.content(content.as_bytes());
    scanner.end_member();
}

fn tree(scanner: &mut Scanner) {
    let store = "nix/store";
    file(
        scanner,
        &format!("{store}/{HOSTS}"),
        &format!("token {TOKEN}\n"),
    );
    file(
        scanner,
        &format!("{store}/{PYTHON}/test/x"),
        &format!("token {TOKEN}\n"),
    );
    scanner.begin_member(
        format!("{store}/{ETC}/etc/hosts").as_bytes(),
        Some(format!("/nix/store/{HOSTS}").as_bytes()),
    );
    scanner.begin_member(
        format!("{store}/{SYSTEM}/etc").as_bytes(),
        Some(format!("/nix/store/{ETC}/etc").as_bytes()),
    );
    file(scanner, "home/tim/.config", &format!("token {TOKEN}\n"));
    scanner.begin_member(
        b"nix/var/nix/profiles/system-1-link",
        Some(format!("/nix/store/{SYSTEM}").as_bytes()),
    );
}

#[test]
fn severity_follows_scope_discovered_from_the_archive() {
    let mut scanner = Scanner::new(
        rules(ScanOptions::default()),
        ScanScope::new(&StoreDir::NIX),
    );
    tree(&mut scanner);
    let report = scanner.finish();
    let seen: Vec<(&str, Severity)> = report
        .findings
        .iter()
        .map(|f| (f.path.as_str(), f.severity))
        .collect();
    assert_eq!(
        seen,
        [
            ("/home/tim/.config", Severity::Error),
            (&*format!("/nix/store/{HOSTS}"), Severity::Error),
            (&*format!("/nix/store/{PYTHON}/test/x"), Severity::Warning),
        ]
    );
    assert!(!report.render_human(Detail::Verbose).contains(TOKEN));
    assert!(!report.to_json().contains(TOKEN));
}

#[test]
fn strict_allow_and_identifiers() {
    let options = ScanOptions {
        identifiers: vec!["tim".into()],
        allow: vec![AllowRule::parse("github-token:/home/**").unwrap()],
        strict: true,
        ..ScanOptions::default()
    };
    let mut scanner = Scanner::new(rules(options), ScanScope::new(&StoreDir::NIX));
    tree(&mut scanner);
    file(&mut scanner, "etc/motd", "it is time, Tim.");
    scanner.begin_member(b"home/tim", None);
    let report = scanner.finish();
    assert_eq!(report.allowed, 1);
    assert_eq!(report.warnings(), 0);
    let identifiers: Vec<(&str, Part, u64)> = report
        .findings
        .iter()
        .filter(|f| f.detector == Detector::Identifier)
        .map(|f| (f.path.as_str(), f.part, f.offset))
        .collect();
    assert_eq!(
        identifiers,
        [
            ("/etc/motd", Part::Content, 12),
            ("/home/tim", Part::Name, 5)
        ]
    );
}

fn variable(name: &str, value: &str) -> SensitiveVariable {
    SensitiveVariable {
        name: name.into(),
        value: value.as_bytes().to_vec(),
    }
}

#[test]
fn environment_values_are_errors_wherever_they_ship_and_never_shown() {
    // No detector knows this format; only the value search finds it.
    let value = "x9-opaque-deploy-secret";
    let long_value = "L".repeat(3000);
    let options = ScanOptions {
        environment: vec![
            variable("DEPLOY_TOKEN", value),
            variable("GITHUB_TOKEN", "unplanted-value"),
            variable("SECRET_BLOB", &long_value),
        ],
        ..ScanOptions::default()
    };
    let mut scanner = Scanner::new(rules(options), ScanScope::new(&StoreDir::NIX));
    let store = format!("nix/store/{PYTHON}");
    // In a package's store path, which is not user-controlled: still an error.
    file(
        &mut scanner,
        &format!("{store}/share/conf"),
        &format!("key={value};"),
    );
    scanner.begin_member(b"etc/link", Some(format!("/{value}").as_bytes()));
    file(&mut scanner, "etc/blob", &format!("<{long_value}>"));
    let report = scanner.finish();
    let seen: Vec<(&str, Part, Severity, &str)> = report
        .findings
        .iter()
        .map(|f| (f.path.as_str(), f.part, f.severity, f.excerpt.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            (
                "/etc/blob",
                Part::Content,
                Severity::Error,
                "the value of $SECRET_BLOB (not shown)"
            ),
            (
                "/etc/link",
                Part::LinkTarget,
                Severity::Error,
                "the value of $DEPLOY_TOKEN (not shown)"
            ),
            (
                &*format!("/{store}/share/conf"),
                Part::Content,
                Severity::Error,
                "the value of $DEPLOY_TOKEN (not shown)"
            ),
        ]
    );
    assert_eq!(report.environment_not_found, ["GITHUB_TOKEN"]);
    for text in [report.render_human(Detail::Verbose), report.to_json()] {
        assert!(
            !text.contains(value) && !text.contains(&long_value),
            "{text}"
        );
    }
    assert!(report.render_human(Detail::Normal).contains(
        "note: the values of $GITHUB_TOKEN were searched for and are not in the tarball"
    ));
}

#[test]
fn warnings_are_summarised_per_store_path_listed_when_verbose_and_quiet_shows_errors_only() {
    let mut scanner = Scanner::new(
        rules(ScanOptions::default()),
        ScanScope::new(&StoreDir::NIX),
    );
    tree(&mut scanner);
    file(
        &mut scanner,
        &format!("nix/store/{PYTHON}/test/y"),
        &format!("token {TOKEN}\n"),
    );
    let report = scanner.finish();
    assert_eq!((report.errors(), report.warnings()), (2, 2));
    let normal = report.render_human(Detail::Normal);
    assert!(
        normal.contains(&format!("warning: 2 findings in store paths outside the system's configuration (packages' own test keys, usually): 2 in /nix/store/{PYTHON}; --verbose or --json lists them")),
        "{normal}"
    );
    assert!(!normal.contains("warning[github-token]"), "{normal}");
    assert_eq!(normal.matches("error[github-token]").count(), 2, "{normal}");
    let verbose = report.render_human(Detail::Verbose);
    assert_eq!(
        verbose.matches("warning[github-token]").count(),
        2,
        "{verbose}"
    );
    let quiet = report.render_human(Detail::Quiet);
    assert_eq!(quiet.lines().count(), 2, "{quiet}");
    assert!(
        quiet.lines().all(|line| line.starts_with("error[")),
        "{quiet}"
    );
}
