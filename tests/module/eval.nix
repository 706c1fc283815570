# Evaluates nix/module.nix the way a NixOS host does, as far as a machine
# without nixpkgs allows: nixpkgs' own `lib` (lib.evalModules, the option
# types, mkIf/mkForce), NixOS-WSL's own modules (every `wsl.*` declaration and
# upstream's `system.build.tarballBuilder`), and stubs only where nixpkgs
# itself would be needed:
#
# - the NixOS options these modules read or set (`system.build`, `users`,
#   `assertions`, …), declared with nixpkgs' types and defaults; everything
#   else NixOS-WSL sets is accepted unread (freeform, never evaluated);
# - `pkgs`: runCommand, writeText and writeShellApplication as plain
#   derivations that run the host's /bin/bash (so the module's derivations
#   really build here), and placeholders for packages that fail if built;
# - a fake system (toplevel, etc tree, shell, native utils) from host tools.
#
# The sources come from the caller (tests/module.rs reads them from
# WSL_TARBALL_NIXPKGS_LIB and WSL_TARBALL_NIXOS_WSL); nothing fetched is
# committed.
{
  # A checkout of nixpkgs or nixpkgs.lib: the directory that holds lib/.
  nixpkgsLib,
  # A checkout of NixOS-WSL: the directory that holds modules/.
  nixosWsl,
  # The host's own module, as a host's flake would add it.
  configuration ? { },
  # The wsl-tarball binary the module's package runs, and its hash (a new
  # binary makes new derivations).
  binary ? "/nonexistent/wsl-tarball",
  binaryHash ? "",
  # The platforms of the stub pkgs: a host built on another platform is a
  # cross build.
  hostSystem ? builtins.currentSystem,
  buildSystem ? hostSystem,
  # The systems this flake has a wsl-tarball package for.
  packageSystems ? [
    hostSystem
    buildSystem
  ],
}:
let
  lib = import "${nixpkgsLib}/lib";
  inherit (lib) mkOption types;
  system = builtins.currentSystem;

  # A derivation whose builder is the host's bash.
  hostDerivation =
    name: attrs: script:
    derivation (
      attrs
      // {
        inherit name system;
        builder = "/bin/bash";
        PATH = "/usr/bin:/bin";
        args = [
          "-c"
          script
        ];
      }
    );

  # A package nixpkgs would provide: evaluates, fails loudly if built.
  placeholder =
    name:
    hostDerivation "nixpkgs-${builtins.unsafeDiscardStringContext name}-placeholder" { } ''
      echo "nixpkgs' ${name} is not available in this evaluation" >&2
      exit 1
    ''
    // {
      overrideAttrs = _: placeholder name;
    };

  runCommand =
    name: env: buildCommand:
    hostDerivation name
      (
        removeAttrs env [ "nativeBuildInputs" ]
        // {
          inherit buildCommand;
          binPath = lib.makeBinPath (env.nativeBuildInputs or [ ]);
        }
      )
      ''
        set -eu -o pipefail
        if [ -e .attrs.sh ]; then
          source .attrs.sh
          out=''${outputs[out]}
          export NIX_ATTRS_JSON_FILE=''${NIX_ATTRS_JSON_FILE:-$PWD/.attrs.json}
        fi
        export PATH="$binPath:/usr/bin:/bin"
        eval "$buildCommand"
      '';

  writeText =
    name: text:
    runCommand name {
      inherit text;
      passAsFile = [ "text" ];
    } ''cp "$textPath" "$out"'';

  writeShellApplication =
    {
      name,
      text,
      runtimeInputs ? [ ],
      ...
    }:
    runCommand name
      {
        inherit text;
        passAsFile = [ "text" ];
        runtimePath = lib.makeBinPath runtimeInputs;
      }
      ''
        mkdir -p "$out/bin"
        {
          echo '#!/bin/bash'
          echo 'set -o errexit -o nounset -o pipefail'
          echo "export PATH=\"$runtimePath:\$PATH\""
          cat "$textPath"
        } > "$out/bin/${name}"
        chmod 555 "$out/bin/${name}"
      ''
    // {
      inherit text runtimeInputs;
    };

  platform = system: { inherit system; };
  pkgs = lib.fix (
    self:
    placeholders
    // {
      inherit runCommand writeText writeShellApplication;
      runtimeShell = "/bin/bash";
      stdenv = {
        hostPlatform = platform hostSystem;
        buildPlatform = platform buildSystem;
      };
      # The build platform's packages: the same stubs, built here.
      buildPackages = self;
      closureInfo =
        { rootPaths }:
        runCommand "closure-info" {
          __structuredAttrs = true;
          exportReferencesGraph.closure = rootPaths;
        } ''mkdir -p "$out"; cp "$NIX_ATTRS_JSON_FILE" "$out/registration"'';
      writeShellScriptBin = name: text: writeShellApplication { inherit name text; };
      writeScriptBin = name: text: writeShellApplication { inherit name text; };
      # NixOS-WSL's utils/ (the systemd shim): the fake system's.
      callPackage =
        path: _: if baseNameOf path == "utils" then fake.nativeUtils else placeholder (baseNameOf path);
      stdenvNoCC.mkDerivation = attrs: placeholder attrs.name or "mkDerivation";
    }
  );
  # Every other package NixOS-WSL names (coreutils, shadow, pigz, …).
  placeholders = lib.genAttrs [
    "bashInteractive"
    "coreutils"
    "e2fsprogs"
    "gnugrep"
    "gnutar"
    "nixos-enter"
    "nixos-install-tools"
    "pigz"
    "rsync"
    "shadow"
    "systemd"
    "util-linux"
    "wslu"
  ] placeholder;

  # The fake system: real ELF programs copied from the host.
  fake = rec {
    shell = hostDerivation "fake-bash" { } ''
      mkdir -p $out/bin
      cp /bin/bash $out/bin/bash
      ln -s bash $out/bin/sh
    '';
    coreutils = hostDerivation "fake-coreutils" { } ''
      mkdir -p $out/bin
      cp /usr/bin/env $out/bin/env
    '';
    nativeUtils = hostDerivation "fake-native-utils" { } ''
      mkdir -p $out/bin
      cp /bin/true $out/bin/systemd-shim
    '';
    wslConf = writeText "wsl.conf" "[user]\ndefault=nixos\n";
    etc = hostDerivation "etc" { } ''
      mkdir -p $out/etc
      ln -s ${wslConf} $out/etc/wsl.conf
    '';
    toplevel = hostDerivation "nixos-system-module-eval" { } ''
      mkdir -p $out/sw/bin
      ln -s ${etc}/etc $out/etc
      ln -s ${nativeUtils}/bin/systemd-shim $out/init
      ln -s ${shell}/bin/bash $out/sw/bin/bash
      ln -s ${coreutils}/bin/env $out/sw/bin/env
    '';
  };

  # The package the module's `wslTarballPackages` holds: the binary under test.
  wslTarballPackage =
    name:
    hostDerivation name { inherit binary binaryHash; } ''
      mkdir -p $out/bin
      ln -s "$binary" $out/bin/wsl-tarball
    '';
  wslTarballPackages = lib.genAttrs (lib.unique packageSystems) (
    system: wslTarballPackage "wsl-tarball-${system}"
  );

  # nixpkgs' lib/types shellPackage and nixos/lib/utils.nix toShellPath.
  utils.toShellPath =
    shell:
    if builtins.isAttrs shell && shell ? shellPath then
      "/run/current-system/sw${shell.shellPath}"
    else
      shell;

  # Accepts whatever NixOS-WSL sets and nobody here reads.
  unread = types.lazyAttrsOf types.raw;
  stubTree =
    options:
    mkOption {
      type = types.submodule {
        freeformType = unread;
        inherit options;
      };
      default = { };
    };

  # The NixOS options the modules read, with nixpkgs' types and defaults
  # (nixos/modules/misc/assertions.nix, system/activation/top-level.nix,
  # config/users-groups.nix, misc/version.nix, config/system-path.nix,
  # config/nix-channel.nix).
  nixosDeclarations =
    { config, ... }:
    {
      freeformType = unread;
      options = {
        assertions = mkOption {
          type = types.listOf types.unspecified;
          default = [ ];
        };
        warnings = mkOption {
          type = types.listOf types.str;
          default = [ ];
        };
        system = stubTree {
          build = mkOption {
            type = types.submoduleWith {
              modules = [ { freeformType = types.lazyAttrsOf (types.uniq types.unspecified); } ];
            };
            default = { };
          };
          stateVersion = mkOption {
            type = types.str;
            default = "25.11";
          };
          defaultChannel = mkOption {
            type = types.str;
            default = "https://nixos.org/channels/nixos-unstable";
          };
          nixos = stubTree {
            release = mkOption {
              type = types.str;
              default = "25.11";
            };
          };
        };
        environment = stubTree {
          usrbinenv = mkOption {
            type = types.nullOr types.path;
            default = "${fake.coreutils}/bin/env";
          };
        };
        nix = stubTree {
          package = mkOption {
            type = types.package;
            default = placeholder "nix";
          };
          channel.enable = mkOption {
            type = types.bool;
            default = true;
          };
        };
        services = stubTree {
          envfs.enable = mkOption {
            type = types.bool;
            default = false;
          };
        };
        users = stubTree {
          mutableUsers = mkOption {
            type = types.bool;
            default = true;
          };
          users = mkOption {
            type = types.attrsOf (
              types.submodule (
                { name, config, ... }:
                {
                  freeformType = unread;
                  options = {
                    name = mkOption {
                      type = types.str;
                      default = name;
                    };
                    enable = mkOption {
                      type = types.bool;
                      default = true;
                    };
                    uid = mkOption {
                      type = types.nullOr types.int;
                      default = null;
                    };
                    group = mkOption {
                      type = types.str;
                      default = "";
                    };
                    description = mkOption {
                      type = types.str;
                      default = "";
                    };
                    home = mkOption {
                      type = types.str;
                      default = "/var/empty";
                    };
                    createHome = mkOption {
                      type = types.bool;
                      default = false;
                    };
                    homeMode = mkOption {
                      type = types.strMatching "[0-7]{1,5}";
                      default = "700";
                    };
                    isNormalUser = mkOption {
                      type = types.bool;
                      default = false;
                    };
                    shell = mkOption {
                      type = types.nullOr (types.either types.str types.attrs);
                      default = null;
                    };
                  }
                  //
                    lib.genAttrs
                      [
                        "hashedPassword"
                        "initialHashedPassword"
                        "initialPassword"
                        "password"
                        "hashedPasswordFile"
                        "passwordFile"
                      ]
                      (
                        _:
                        mkOption {
                          type = types.nullOr types.str;
                          default = null;
                        }
                      );
                  config = lib.mkIf config.isNormalUser {
                    group = lib.mkDefault "users";
                    createHome = lib.mkDefault true;
                    home = lib.mkDefault "/home/${config.name}";
                    shell = lib.mkDefault "${fake.shell}/bin/bash";
                  };
                }
              )
            );
            default = { };
          };
          groups = mkOption {
            type = types.attrsOf (
              types.submodule (
                { name, ... }:
                {
                  freeformType = unread;
                  options = {
                    name = mkOption {
                      type = types.str;
                      default = name;
                    };
                    gid = mkOption {
                      type = types.nullOr types.int;
                      default = null;
                    };
                    members = mkOption {
                      type = types.listOf types.str;
                      default = [ ];
                    };
                  };
                }
              )
            );
            default = { };
          };
        };
      };
      config = {
        system.build.toplevel = fake.toplevel;
        # What nixpkgs' users-groups.nix and misc/ids.nix define.
        users.users.root = {
          uid = 0;
          description = "System administrator";
          home = "/root";
          group = "root";
          shell = lib.mkDefault "${fake.shell}/bin/bash";
        };
        users.groups = {
          root.gid = 0;
          wheel.gid = 1;
          users.gid = 100;
        };
      };
    };

  evaluation = lib.evalModules {
    specialArgs.modulesPath = throw "nixpkgs' NixOS modules (modulesPath) are not available in this evaluation";
    modules = [
      "${nixosWsl}/modules"
      (import ../../nix/module.nix {
        inherit wslTarballPackages;
        defaultIcon = "${nixosWsl}/assets/NixOS-WSL.ico";
      })
      nixosDeclarations
      {
        _module.args = {
          inherit pkgs utils;
          # For configurations that point at the fake system's files.
          inherit fake;
        };
      }
      configuration
    ];
  };
  inherit (evaluation) config;

  # What nixpkgs' top-level.nix throws when system.build.toplevel is built.
  failedAssertions = map (x: x.message) (lib.filter (x: !x.assertion) config.assertions);
  checkedAssertions =
    if failedAssertions == [ ] then
      true
    else
      throw "\nFailed assertions:\n${lib.concatStringsSep "\n" (map (x: "- ${x}") failedAssertions)}";
in
{
  inherit
    config
    fake
    pkgs
    wslTarballPackages
    ;
  inherit (evaluation) options;
  assertions = checkedAssertions;
}
