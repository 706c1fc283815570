//! Store path names as Nix accepts them: names starting with `.` are valid
//! since NixOS/nix#9867 (and were built by every Nix since 2.4), so a real
//! closure with such paths is written, verified and read like any other.

mod common;

use std::process::{Command, Stdio};

use common::*;

/// A system whose own name and whose library's name start with dots.
fn dotted_system() -> String {
    let expression = r#"
      let
        lib = derivation {
          name = "..lib-1.0";
          builder = "/bin/sh";
          args = [ "-c" "echo lib > $out" ];
          system = builtins.currentSystem;
        };
      in
      derivation {
        name = ".dotted-system";
        builder = "/bin/sh";
        args = [ "-c" "/bin/mkdir $out; echo ${lib} > $out/lib" ];
        system = builtins.currentSystem;
      }
    "#;
    run_text(nix_command("nix-build").args(["--no-out-link", "-E", expression]))
        .trim()
        .to_owned()
}

#[test]
fn store_paths_whose_names_start_with_a_dot_are_written_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    let system = dotted_system();
    assert!(system.ends_with("-.dotted-system"), "{system}");
    let closure = write_path_info(&system, dir.path());
    let tarball = dir.path().join("dotted.wsl");
    let result = run_wsl_tarball(&[
        "write",
        "--closure",
        closure.to_str().unwrap(),
        "--system",
        &system,
        "--no-skeleton",
        "--quiet",
        "-o",
        tarball.to_str().unwrap(),
    ]);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    assert_verifies(&tarball, Rootfs::Bare);

    // GNU tar sees both store paths, under their dotted names.
    let listing = Command::new("tar")
        .args(["-t", "-f"])
        .arg(&tarball)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(listing.status.success());
    let listing = String::from_utf8(listing.stdout).unwrap();
    let basename = system.trim_start_matches("/nix/store/");
    assert!(
        listing.contains(&format!("./nix/store/{basename}/lib\n")),
        "{listing}"
    );
    assert!(
        listing
            .lines()
            .any(|line| line.starts_with("./nix/store/") && line.ends_with("-..lib-1.0")),
        "{listing}"
    );
    // The system profile leads to the dotted system.
    let inspect = run_wsl_tarball(&["inspect", "--json", tarball.to_str().unwrap()]);
    assert!(
        inspect.status.success(),
        "{}",
        String::from_utf8_lossy(&inspect.stderr)
    );
    assert!(
        String::from_utf8_lossy(&inspect.stdout).contains(&system),
        "inspect does not name {system}"
    );
}
