//! Driving the `nix` command for `build`: pick the host, build what the
//! tarball needs, and read the system's closure.
//!
//! Everything runs as the calling user with `nix-command` and `flakes`
//! enabled; Nix's own messages reach the user unchanged on stderr. A command
//! that fails is named shell-quoted, so it can be pasted and run again.
//! Installables and store paths come after `--`, so none is read as an
//! option.
//!
//! Nix's interface moves: `nix path-info --json` printed a list up to 2.18
//! and an object since, and current Nix warns that `--json` without
//! `--json-format` "will become an error in a future release". [`Nix::detect`]
//! asks the running Nix once, from its own `path-info --help`, whether it
//! knows `--json-format`, and [`Nix::closure_json`] passes it when it does.
//! The closure reader (`store::read_closure`) parses every shape.

use std::ffi::OsStr;
use std::process::{Command, ExitStatus, Stdio};

use crate::escape::{escape_str, Escaped};

/// The experimental features `build` needs, enabled per command.
const FEATURES: [&str; 2] = ["--extra-experimental-features", "nix-command flakes"];

/// Why driving Nix failed.
#[derive(Debug, thiserror::Error)]
pub enum NixError {
    #[error("cannot run `nix`: {source}; is Nix installed and on PATH?")]
    Spawn { source: std::io::Error },
    #[error("`{command}` failed ({status}); its messages are above. Hint: check the flake reference and the host name, or run the command yourself")]
    Failed { command: String, status: ExitStatus },
    #[error("`{command}` printed {what}")]
    Output { command: String, what: String },
    #[error("{flake} has no nixosConfigurations")]
    NoHosts { flake: String },
    #[error(
        "{} has no nixosConfiguration {}; its nixosConfigurations: {}",
        Escaped(flake),
        Escaped(host),
        if hosts.is_empty() { "none".to_owned() } else { escape_str(&hosts.join(", ")).into_owned() }
    )]
    NoSuchHost {
        flake: String,
        host: String,
        hosts: Vec<String>,
    },
    #[error(
        "{flake} has {}; name the one to build: {}",
        crate::count::count(hosts.len(), "nixosConfiguration"),
        hosts.join(", ")
    )]
    WhichHost { flake: String, hosts: Vec<String> },
}

/// The `nix` on PATH, with what it supports.
#[derive(Debug, Clone)]
pub struct Nix {
    /// `nix path-info` takes `--json-format` (current Nix).
    path_info_json_format: bool,
}

/// A host of a flake and what selecting it said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelectedHost {
    pub name: String,
    /// Why this host was taken when none was named; `None` when named.
    pub reason: Option<String>,
}

impl Nix {
    /// Asks the running Nix what it supports (one `nix path-info --help`).
    pub fn detect() -> Result<Nix, NixError> {
        let help = run(&["path-info", "--help"])?;
        Ok(Nix {
            path_info_json_format: help
                .windows(b"--json-format".len())
                .any(|w| w == b"--json-format"),
        })
    }

    /// The host to build: `host` if given; otherwise the flake's only
    /// nixosConfiguration, or its only one for this machine's system. Any
    /// other case is an error that lists the hosts.
    pub fn select_host(&self, flake: &str, host: Option<&str>) -> Result<SelectedHost, NixError> {
        if let Some(name) = host {
            return Ok(SelectedHost {
                name: name.to_owned(),
                reason: None,
            });
        }
        // Each host's system, or null where the configuration has none.
        let installable = format!("{flake}#nixosConfigurations");
        let systems = run(&[
            "eval",
            "--json",
            "--apply",
            "builtins.mapAttrs (_: c: c.config.nixpkgs.hostPlatform.system or null)",
            "--",
            &installable,
        ])?;
        let systems: std::collections::BTreeMap<String, Option<String>> =
            serde_json::from_slice(&systems).map_err(|e| NixError::Output {
                command: command_line(&["eval", "--json", "--", &installable]),
                what: format!("JSON that is not a map of hosts: {e}"),
            })?;
        if systems.is_empty() {
            return Err(NixError::NoHosts {
                flake: flake.to_owned(),
            });
        }
        if systems.len() == 1 {
            let name = systems.into_keys().next().expect("one host");
            return Ok(SelectedHost {
                name,
                reason: Some(format!("the only nixosConfiguration of {flake}")),
            });
        }
        let current = String::from_utf8_lossy(&run(&[
            "eval",
            "--impure",
            "--raw",
            "--expr",
            "builtins.currentSystem",
        ])?)
        .trim()
        .to_owned();
        let for_current: Vec<&String> = systems
            .iter()
            .filter(|(_, system)| system.as_deref() == Some(current.as_str()))
            .map(|(name, _)| name)
            .collect();
        if let [only] = for_current[..] {
            return Ok(SelectedHost {
                name: only.clone(),
                reason: Some(format!(
                    "the only nixosConfiguration of {flake} for {current}"
                )),
            });
        }
        Err(NixError::WhichHost {
            flake: flake.to_owned(),
            hosts: systems
                .into_iter()
                .map(|(name, system)| match system {
                    Some(system) => format!("{name} ({system})"),
                    None => name,
                })
                .collect(),
        })
    }

    /// Whether `host`'s `config.system.build` has `wslTarballFacts` (the
    /// wsl-tarball module is imported), in one `nix eval` that also tells a
    /// host the flake lacks: that is [`NixError::NoSuchHost`], listing the
    /// hosts it has, rather than Nix's long attribute error.
    pub fn host_has_facts(&self, flake: &str, host: &str) -> Result<bool, NixError> {
        let attribute = quote_attribute(host);
        let apply = format!(
            "hosts: if hosts ? {attribute} then hosts.{attribute}.config.system.build ? wslTarballFacts else builtins.attrNames hosts"
        );
        let installable = format!("{flake}#nixosConfigurations");
        let args = ["eval", "--json", "--apply", &apply, "--", &installable];
        let answer = run(&args)?;
        match serde_json::from_slice(&answer) {
            Ok(serde_json::Value::Bool(has_facts)) => Ok(has_facts),
            Ok(serde_json::Value::Array(hosts)) => Err(NixError::NoSuchHost {
                flake: flake.to_owned(),
                host: host.to_owned(),
                hosts: hosts
                    .iter()
                    .map(|h| h.as_str().unwrap_or_default().to_owned())
                    .collect(),
            }),
            _ => Err(NixError::Output {
                command: command_line(&args),
                what: format!(
                    "neither true, false nor a list of hosts: {}",
                    String::from_utf8_lossy(&answer).trim()
                ),
            }),
        }
    }

    /// `nix eval --json CONFIG --apply 'c: c.wsl.tarball.signing.keyFile or null'`:
    /// the module's signing key file (a path outside the store), if set.
    pub fn signing_key_file(&self, config: &str) -> Result<Option<String>, NixError> {
        let apply = "c: c.wsl.tarball.signing.keyFile or null";
        let args = ["eval", "--json", config, "--apply", apply];
        let answer = run(&args)?;
        match serde_json::from_slice(&answer) {
            Ok(serde_json::Value::Null) => Ok(None),
            Ok(serde_json::Value::String(path)) => Ok(Some(path)),
            _ => Err(NixError::Output {
                command: command_line(&args),
                what: "neither null nor a string".to_owned(),
            }),
        }
    }

    /// `nix build --no-link --json INSTALLABLE`: the `out` path.
    pub fn build_out(&self, installable: &str) -> Result<String, NixError> {
        let args = ["build", "--no-link", "--json", "--", installable];
        let json = run(&args)?;
        let output_error = |what: String| NixError::Output {
            command: command_line(&args),
            what,
        };
        let built: serde_json::Value = serde_json::from_slice(&json)
            .map_err(|e| output_error(format!("JSON that is not a build result: {e}")))?;
        built[0]["outputs"]["out"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| output_error(format!("no out path: {built}")))
    }

    /// The arguments of the `nix path-info` that prints `path`'s closure.
    pub fn closure_args<'a>(&self, path: &'a str) -> Vec<&'a str> {
        let mut args = vec!["path-info", "--json"];
        if self.path_info_json_format {
            args.extend(["--json-format", "1"]);
        }
        args.extend(["-r", "--", path]);
        args
    }

    /// `nix path-info --json -r PATH` (with `--json-format` where Nix has
    /// it): the closure metadata, and the command line that printed it.
    pub fn closure_json(&self, path: &str) -> Result<(Vec<u8>, String), NixError> {
        let args = self.closure_args(path);
        Ok((run(&args)?, command_line(&args)))
    }
}

/// An attribute name as Nix source: bare when it can be, quoted otherwise.
pub fn quote_attribute(name: &str) -> String {
    let bare = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '\''));
    if bare {
        name.to_owned()
    } else {
        serde_json::to_string(name).expect("a string serialises")
    }
}

/// Runs `nix ARGS` with the features enabled; stdout on success.
fn run(args: &[&str]) -> Result<Vec<u8>, NixError> {
    let output = Command::new("nix")
        .args(FEATURES)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|source| NixError::Spawn { source })?;
    if !output.status.success() {
        return Err(NixError::Failed {
            command: command_line(args),
            status: output.status,
        });
    }
    Ok(output.stdout)
}

/// `nix ARGS…` as a shell would need it typed, features included.
fn command_line(args: &[&str]) -> String {
    std::iter::once("nix")
        .chain(FEATURES)
        .chain(args.iter().copied())
        .map(|arg| shell_quote(OsStr::new(arg)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One word for a POSIX shell: as it is when it is safe, single-quoted
/// otherwise.
pub fn shell_quote(word: &OsStr) -> String {
    let word = word.to_string_lossy();
    let safe = !word.is_empty()
        && word
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./:=@%+,#".contains(&b));
    if safe {
        word.into_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_quoted_only_when_a_shell_needs_it() {
        assert_eq!(
            shell_quote(OsStr::new(".#nixosConfigurations.a")),
            ".#nixosConfigurations.a"
        );
        assert_eq!(
            shell_quote(OsStr::new("nix-command flakes")),
            "'nix-command flakes'"
        );
        assert_eq!(shell_quote(OsStr::new("it's")), r"'it'\''s'");
        assert_eq!(shell_quote(OsStr::new("")), "''");
        assert_eq!(
            command_line(&["eval", "--apply", "set: set ? x"]),
            "nix --extra-experimental-features 'nix-command flakes' eval --apply 'set: set ? x'"
        );
    }

    #[test]
    fn attribute_names_are_quoted_as_nix_needs() {
        assert_eq!(quote_attribute("wslTarballFacts"), "wslTarballFacts");
        assert_eq!(quote_attribute("my-host"), "my-host");
        assert_eq!(quote_attribute("my.host"), "\"my.host\"");
    }

    #[test]
    fn path_info_gets_json_format_only_where_nix_has_it() {
        let old = Nix {
            path_info_json_format: false,
        };
        let new = Nix {
            path_info_json_format: true,
        };
        assert_eq!(
            old.closure_args("/nix/store/x"),
            ["path-info", "--json", "-r", "--", "/nix/store/x"]
        );
        assert_eq!(
            new.closure_args("/nix/store/x"),
            [
                "path-info",
                "--json",
                "--json-format",
                "1",
                "-r",
                "--",
                "/nix/store/x"
            ]
        );
    }
}
