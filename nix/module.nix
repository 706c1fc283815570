# The NixOS module for hosts with `wsl.enable`: builds the tarball with
# wsl-tarball instead of upstream's root-only script.
#
# It gathers facts (the system, users, /sbin/init, /bin links, distribution
# settings) into one JSON file, `system.build.wslTarballFacts`, and hands it to
# the binary; every decision about the rootfs is made in Rust.
#
# `wsl.tarball.enable` (default: `wsl.enable`) gates all of it, so a host can
# keep upstream's `tarballBuilder` by setting it to false.
#
# Arguments: the wsl-tarball package for each system, and the default icon.
{
  wslTarballPackages,
  defaultIcon ? null,
}:
{
  config,
  lib,
  pkgs,
  utils,
  ...
}:
let
  inherit (lib) mkOption types;
  cfg = config.wsl.tarball;
  package = cfg.package;
  # The package runs where the derivations are built: for a cross-compiled
  # host, that is the build platform, not the host.
  buildSystem = pkgs.stdenv.buildPlatform.system;

  # The levels `wsl-tarball write --level` takes, per compression.
  levelRanges = {
    gzip = {
      min = 1;
      max = 9;
    };
    xz = {
      min = 0;
      max = 9;
    };
    zstd = {
      min = 1;
      max = 19;
    };
  };
  # The signing key is a secret: a string naming a file outside the store,
  # read only when `tarballBuilder` or `wsl-tarball build` runs.
  keyFile = cfg.signing.keyFile;
  signingAssertion = {
    assertion =
      keyFile == null
      || (
        lib.hasPrefix "/" keyFile
        && !(lib.hasPrefix "${builtins.storeDir}/" keyFile)
        && !(builtins.hasContext keyFile)
      );
    message = ''
      wsl.tarball.signing.keyFile = "${toString keyFile}": give an absolute path outside the Nix store
      as a string (a key in the store is readable by everyone, and a Nix path value is copied there).
    '';
  };
  signFlags = lib.optionalString (keyFile != null) ''
    flags+=(--manifest "''${out%.wsl}.manifest.json" --sign-key ${lib.escapeShellArg keyFile})
  '';

  levelAssertion =
    let
      level = cfg.compressionLevel;
      range = levelRanges.${cfg.compression} or null;
      setting = "wsl.tarball.compressionLevel = ${toString level} with wsl.tarball.compression = \"${cfg.compression}\"";
    in
    if level == null then
      {
        assertion = true;
        message = "";
      }
    else if range == null then
      {
        assertion = false;
        message = "${setting}: compression \"none\" takes no level; set wsl.tarball.compressionLevel = null.";
      }
    else
      {
        assertion = level >= range.min && level <= range.max;
        message = "${setting}: ${cfg.compression} takes a level from ${toString range.min} to ${toString range.max}, or null for its default.";
      };

  # The first-run script wsl.tarball.firstRun.enable installs as oobe.command.
  firstRunScript = ./first-run.sh;
  oobe = cfg.oobe;
  firstRunAssertion = {
    assertion = !(cfg.firstRun.enable && oobe.command != firstRunScript);
    message = ''
      wsl.tarball.firstRun.enable installs wsl-tarball's first-run script as oobe.command, but
      wsl.tarball.oobe.command is set to ${toString oobe.command}: WSL runs one command; set one of them.
    '';
  };
  # WSL makes oobe.defaultUid the default user only if a user has it once
  # oobe.command is done; without a command, a declared user must have it.
  enabledUsers = lib.filter (user: user.enable) (lib.attrValues config.users.users);
  defaultUidAssertion = {
    assertion =
      oobe.defaultUid == null
      || oobe.command != null
      || lib.elem oobe.defaultUid (map (user: user.uid) enabledUsers);
    message = ''
      wsl.tarball.oobe.defaultUid = ${toString oobe.defaultUid}: no user in users.users has this uid
      and no wsl.tarball.oobe.command creates one, so WSL would start as root. Give the user
      `uid = ${toString oobe.defaultUid};`, or set oobe.defaultUid to null.
    '';
  };

  # users.users as nixpkgs' users-groups.nix hands it to update-users-groups.pl;
  # `enable = false` users are filtered by the tool; a null shell stays null.
  users = {
    users = lib.mapAttrsToList (_: user: {
      inherit (user)
        name
        uid
        group
        description
        home
        createHome
        homeMode
        isNormalUser
        enable
        hashedPassword
        hashedPasswordFile
        initialPassword
        initialHashedPassword
        password
        ;
      shell = if user.shell == null then null else utils.toShellPath user.shell;
    }) config.users.users;
    groups = lib.mapAttrsToList (_: group: {
      inherit (group) name gid members;
    }) config.users.groups;
  };

  # /root/.nix-channels as upstream's tarball has it: the `nixos` channel
  # (nix-channel.nix's activation) and the `nixos-wsl` channel that
  # build-tarball.nix adds, which the generated configuration.nix imports.
  channels = lib.optionalAttrs config.nix.channel.enable {
    nixos = config.system.defaultChannel;
    nixos-wsl = "https://github.com/nix-community/NixOS-WSL/archive/refs/heads/main.tar.gz";
  };

  # What upstream writes to /etc/nixos/configuration.nix when no configPath is set.
  defaultConfiguration = pkgs.writeText "configuration.nix" ''
    # Edit this configuration file to define what should be installed on
    # your system. Help is available in the configuration.nix(5) man page, on
    # https://search.nixos.org/options and in the NixOS manual (`nixos-help`).

    # NixOS-WSL specific options are documented on the NixOS-WSL repository:
    # https://github.com/nix-community/NixOS-WSL

    { config, lib, pkgs, ... }:

    {
      imports = [
        # include NixOS-WSL modules
        <nixos-wsl/modules>
      ];

      wsl.enable = true;
      wsl.defaultUser = "${config.wsl.defaultUser}";

      # This value determines the NixOS release from which the default
      # settings for stateful data, like file locations and database versions
      # on your system were taken. It's perfectly fine and recommended to leave
      # this value at the release version of the first install of this system.
      # Before changing this value read the documentation for this option
      # (e.g. man configuration.nix or on https://nixos.org/nixos/options.html).
      system.stateVersion = "${config.system.nixos.release}"; # Did you read the comment?
    }
  '';

  facts = pkgs.writeText "wsl-tarball-facts.json" (
    builtins.toJSON {
      system = config.system.build.toplevel;
      inherit users channels;
      init = "${config.system.build.nativeUtils}/bin/systemd-shim";
      populateBin = config.wsl.populateBin;
      bin = map (entry: { inherit (entry) name src copy; }) config.wsl.extraBin;
      usrBinEnv = config.environment.usrbinenv;
      defaultName = cfg.defaultName;
      icon = cfg.icon;
      terminalProfile = cfg.terminalProfileTemplate;
      defaultUid = oobe.defaultUid;
      oobeCommand = oobe.command;
      shortcutEnabled = cfg.shortcut.enable;
      windowsTerminalEnabled = cfg.windowsTerminal.enable;
      nixosConfig =
        if config.wsl.tarball.configPath != null then
          lib.cleanSource config.wsl.tarball.configPath
        else
          defaultConfiguration;
      compression = cfg.compression;
      level = cfg.compressionLevel;
    }
  );

  compressionFlags = [
    "--compression"
    cfg.compression
  ]
  ++ lib.optionals (cfg.compressionLevel != null) [
    "--level"
    (toString cfg.compressionLevel)
  ];

  checks = cfg.checks;
  checkFlags =
    lib.optional checks.strict "--strict"
    ++ lib.concatMap (rule: [
      "--allow"
      rule
    ]) checks.allow
    ++ lib.concatMap (text: [
      "--pattern"
      text
    ]) checks.patterns
    ++ lib.concatMap (text: [
      "--identifier"
      text
    ]) checks.personalIdentifiers;
  # Disabled checks are skipped loudly, and the manifest records it.
  skipChecks = lib.optionalString (!checks.enable) "export WSL_TARBALL_SKIP_CHECKS=1";

  # A derivation that runs wsl-tarball over the system's closure: Nix writes
  # the closure's metadata into the structured-attrs JSON file
  # (`exportReferencesGraph`), which `closureArgs` hands to `--closure`
  # with the facts and the fixed mtime. `attrs` become bash arrays for the
  # script (structured attrs), so flags stay parameters of the derivation.
  overClosure =
    name: attrs: script:
    pkgs.runCommand name
      (
        {
          __structuredAttrs = true;
          exportReferencesGraph.closure = [ config.system.build.toplevel ];
          nativeBuildInputs = [ package ];
        }
        // attrs
      )
      ''
        ${skipChecks}
        ${script}
      '';
  closureArgs = ''--closure "$NIX_ATTRS_JSON_FILE" --facts ${facts} --mtime 1'';

  # The security check on its own: every byte of the rootfs, no tarball.
  # Error-severity findings fail the build, with the text report in the build
  # log. Otherwise the output keeps report.txt and
  # bin/wsl-tarball-security-check, which prints it and exits as the check did.
  tarballSecurityCheck =
    overClosure "nixos-wsl-tarball-security-check" { checkFlags = checkFlags ++ [ "--verbose" ]; }
      ''
        status=0
        wsl-tarball check ${closureArgs} "''${checkFlags[@]}" > report.txt || status=$?
        # The findings in the build log: a failed build keeps no output.
        cat report.txt >&2
        if [ "$status" -ne 0 ]; then
          echo "tarballSecurityCheck: wsl-tarball check failed (exit status $status); its report is above" >&2
          exit "$status"
        fi
        mkdir -p "$out/bin"
        if [ -s report.txt ]; then
          mv report.txt "$out/report.txt"
        else
          echo "security checks: skipped (wsl.tarball.checks.enable = false)" > "$out/report.txt"
          touch "$out/skipped"
        fi
        {
          echo "#!${pkgs.runtimeShell}"
          tail -n +2 ${./security-check.sh}
        } > "$out/bin/wsl-tarball-security-check"
        chmod 555 "$out/bin/wsl-tarball-security-check"
      '';

  # The tarball as a pure derivation: cached, and buildable on remote builders.
  # Its output: nixos.wsl, manifest.json and the CycloneDX SBOM sbom.cdx.json,
  # the files `wsl-tarball publish` and the reusable workflow take.
  # `writeFlags` is a parameter: checks.nix writes the same system on one
  # thread with `overrideAttrs (old: { writeFlags = old.writeFlags ++ … })`.
  wslTarball = overClosure "nixos-wsl-tarball" { writeFlags = compressionFlags ++ checkFlags; } ''
    mkdir -p "$out/nix-support"
    wsl-tarball write ${closureArgs} "''${writeFlags[@]}" \
      --manifest "$out/manifest.json" --sbom "$out/sbom.cdx.json" -o "$out/nixos.wsl"
    echo "file wsl-tarball $out/nixos.wsl" > "$out/nix-support/hydra-build-products"
    echo "file manifest $out/manifest.json" >> "$out/nix-support/hydra-build-products"
    echo "file sbom $out/sbom.cdx.json" >> "$out/nix-support/hydra-build-products"
  '';

  closure = pkgs.closureInfo { rootPaths = [ config.system.build.toplevel ]; };

  # Upstream's interface, as a normal user: [--extra-files PATH] [--chown PATH UID:GID]... [output]
  # It runs on the machine that builds the host's closure, as `package` does.
  tarballBuilder = pkgs.buildPackages.writeShellApplication {
    name = "nixos-wsl-tarball-builder";
    runtimeInputs = [ package ];
    text = ''
      usage() {
        echo "Usage: $0 [--extra-files PATH] [--chown PATH UID:GID] [output.wsl]" >&2
        exit 1
      }
      out="nixos.wsl"
      flags=()
      positionals=()
      while [ $# -gt 0 ]; do
        case "$1" in
          --extra-files)
            [ $# -ge 2 ] || usage
            flags+=(--extra-files "$2")
            shift 2
            ;;
          --chown)
            [ $# -ge 3 ] || usage
            flags+=(--chown "$2" "$3")
            shift 3
            ;;
          -h|--help) usage ;;
          -*)
            echo "Unknown option: $1" >&2
            usage
            ;;
          *)
            positionals+=("$1")
            shift
            ;;
        esac
      done
      if [ ''${#positionals[@]} -gt 1 ]; then
        echo "Too many positional arguments: ''${positionals[*]}" >&2
        usage
      fi
      if [ ''${#positionals[@]} -eq 1 ]; then
        out="''${positionals[0]}"
      fi
      ${signFlags}
      ${skipChecks}
      exec wsl-tarball write --closure ${closure}/registration --facts ${facts} \
        --mtime 1 ${lib.escapeShellArgs (compressionFlags ++ checkFlags)} "''${flags[@]}" -o "$out"
    '';
  };
in
{
  imports = [ ./image.nix ];

  options.wsl.tarball = {
    enable = mkOption {
      type = types.bool;
      default = config.wsl.enable;
      defaultText = lib.literalExpression "config.wsl.enable";
      description = ''
        Build the tarball with wsl-tarball: `system.build.wslTarball`,
        `tarballSecurityCheck`, `wslTarballFacts`, and a `tarballBuilder`
        that replaces upstream's. False keeps upstream's builder.
      '';
    };
    package = mkOption {
      type = types.package;
      default =
        wslTarballPackages.${buildSystem}
          or (throw "wsl-tarball has no package for the build platform ${buildSystem}; set wsl.tarball.package");
      defaultText = lib.literalExpression "wsl-tarball.packages.\${pkgs.stdenv.buildPlatform.system}.wsl-tarball";
      description = ''
        The wsl-tarball package that writes the tarball. It runs where the
        tarball is built, so it comes from the build platform (which differs
        from the host's for a cross-compiled system).
      '';
    };
    compression = mkOption {
      type = types.enum [
        "gzip"
        "xz"
        "zstd"
        "none"
      ];
      default = "gzip";
      description = ''
        Compression of the tarball. gzip is the only format WSL officially
        supports; zstd is not officially supported by WSL.
      '';
    };
    compressionLevel = mkOption {
      type = types.nullOr types.ints.unsigned;
      default = null;
      description = ''
        Compression level: gzip 1–9, xz 0–9, zstd 1–19, and null for
        `none`; null uses the format's default (gzip 6, xz 6, zstd 3). A level
        the format does not take fails the evaluation.
      '';
    };
    defaultName = mkOption {
      type = types.str;
      default = "NixOS";
      description = "`oobe.defaultName` in /etc/wsl-distribution.conf: the name WSL suggests on install.";
    };
    icon = mkOption {
      type = types.nullOr types.path;
      default = defaultIcon;
      defaultText = lib.literalExpression "NixOS-WSL's assets/NixOS-WSL.ico";
      description = ''
        An .ico file (at most 1 MiB) for the Start menu shortcut, installed as
        /usr/lib/wsl/nixos.ico and named by `shortcut.icon`.
      '';
    };
    oobe = {
      defaultUid = mkOption {
        type = types.nullOr (types.ints.between 0 4294967294);
        default = null;
        example = 1000;
        description = ''
          `oobe.defaultUid` in /etc/wsl-distribution.conf: the uid WSL makes
          the default user once `oobe.command` has run (if a user has it by
          then). Null leaves the key out, and /etc/wsl.conf's `user.default`
          (NixOS-WSL's `wsl.defaultUser`) chooses. Microsoft's validator
          warns when /etc/passwd already has this uid, as it does for every
          user NixOS declares; without `oobe.command`, a declared user must
          have it (an assertion).
        '';
      };
      command = mkOption {
        type = types.nullOr types.path;
        default = if cfg.firstRun.enable then firstRunScript else null;
        defaultText = lib.literalExpression "if config.wsl.tarball.firstRun.enable then wsl-tarball's nix/first-run.sh else null";
        example = lib.literalExpression "./first-run.sh";
        description = ''
          A program (a `#!` script or an ELF file, at most 16 MiB) that WSL
          runs as root on the first interactive shell of a distribution
          installed from the tarball (`wsl --install --from-file` or a
          double-click; not `wsl --import`). It is copied to
          /usr/lib/wsl/first-run (mode 0755, root) and named by
          `oobe.command`. A non-zero exit leaves the distribution not set
          up, and WSL runs it again at the next launch. A script's
          interpreter must be in the rootfs (`/bin/sh` is, with
          `wsl.populateBin`).
        '';
      };
    };
    firstRun.enable = lib.mkEnableOption ''
      wsl-tarball's first-run script as `oobe.command`: it reads
      %USERPROFILE%\.wsl-tarball\first-run.conf on the Windows side and sets
      each colleague's git identity, corporate CA certificate and HTTP proxy
      (see the module chapter of wsl-tarball's documentation)
    '';
    shortcut.enable = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Whether WSL adds a Start menu shortcut when it installs the
        distribution (`shortcut.enabled`; false writes `enabled=false`).
      '';
    };
    windowsTerminal.enable = mkOption {
      type = types.bool;
      default = true;
      description = ''
        Whether WSL adds a Windows Terminal profile when it installs the
        distribution (`windowsterminal.enabled`; false writes
        `enabled=false`).
      '';
    };
    checks = {
      enable = mkOption {
        type = types.bool;
        default = true;
        description = ''
          Scan every byte that goes into the tarball for secrets and personal
          data (private keys, API tokens, password hashes, authorized_keys,
          and the identifiers and patterns below). Findings in user-controlled
          content (the skeleton, /etc, extra files, homes, the system's etc
          tree) fail the build; findings elsewhere in the store are warnings.
          Disabling skips the checks loudly and records it in the manifest.
        '';
      };
      personalIdentifiers = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [
          "alice"
          "alice@example.com"
          "alice-laptop"
        ];
        description = "Names, e-mail addresses and host names to report, case-insensitively, as whole words.";
      };
      patterns = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "corp-internal.example.com" ];
        description = "Literal text to report wherever it occurs.";
      };
      allow = mkOption {
        type = types.listOf types.str;
        default = [ ];
        example = [ "openssh-private-key:/etc/ssh/ssh_host_*_key" ];
        description = ''
          Findings to accept: `DETECTOR` (everywhere), `DETECTOR:GLOB` or
          `/GLOB` (any detector), with globs over paths in the tarball.
        '';
      };
      strict = mkOption {
        type = types.bool;
        default = false;
        description = "Treat every finding as an error, including warnings in ordinary store paths.";
      };
    };
    signing.keyFile = mkOption {
      type = types.nullOr types.str;
      default = null;
      example = "/run/secrets/wsl-tarball-team-1.sec";
      description = ''
        A Nix secret key file (`nix key generate-secret --key-name team-1`)
        whose key signs the manifest, as an absolute path outside the store
        given as a string (never a Nix path, which would copy the key into
        the store). Read only when `tarballBuilder` runs (which then writes
        `NAME.manifest.json` beside `NAME.wsl`) and by `wsl-tarball build`
        (which needs `--manifest`). The pure derivation `wslTarball` cannot
        see secrets and stays unsigned: sign its manifest in CI with
        `wsl-tarball sign FILE --manifest M --key K`.
      '';
    };
    terminalProfileTemplate = mkOption {
      type = types.nullOr types.path;
      default = null;
      description = ''
        A Windows Terminal profile template (JSON), installed under
        /usr/lib/wsl (mode 0640) and named by `windowsterminal.profileTemplate`.
      '';
    };
  };

  config = lib.mkIf cfg.enable {
    assertions = [
      levelAssertion
      signingAssertion
      firstRunAssertion
      defaultUidAssertion
    ];
    system.build = {
      wslTarballFacts = facts;
      inherit wslTarball tarballSecurityCheck;
      tarballBuilder = lib.mkForce tarballBuilder;
    };
  };
}
