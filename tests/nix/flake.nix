# A nixpkgs-free test flake: a NixOS-shaped fake system built with plain
# `derivation` and host tools, so that `wsl-tarball build` can be driven the
# way `nix run` drives it, on a machine that cannot fetch nixpkgs.
#
# nixosConfigurations.fake mimics what the wsl-tarball module exposes:
# config.system.build.toplevel (with activate, init, sw/bin, an etc tree with
# .mode/.uid/.gid companions) and config.system.build.wslTarballFacts.
{
  description = "wsl-tarball test fixtures (no nixpkgs)";

  outputs =
    { self }:
    let
      system = "x86_64-linux";
      mk =
        name: script:
        derivation {
          inherit name system;
          builder = "/bin/sh";
          args = [
            "-c"
            script
          ];
          PATH = "/usr/bin:/bin";
        };
      text =
        name: content:
        derivation {
          inherit name system content;
          builder = "/bin/sh";
          args = [
            "-c"
            "printf '%s' \"$content\" > $out"
          ];
        };

      # Real ELF programs copied from the host.
      shell = mk "fake-bash" ''
        mkdir -p $out/bin
        cp /bin/bash $out/bin/bash
        ln -s bash $out/bin/sh
      '';
      coreutils = mk "fake-coreutils" ''
        mkdir -p $out/bin
        cp /usr/bin/env $out/bin/env
        cp /bin/true $out/bin/true
      '';
      nativeUtils = mk "fake-native-utils" ''
        mkdir -p $out/bin
        cp /bin/true $out/bin/systemd-shim
      '';

      wslConf = text "wsl.conf" ''
        [automount]
        enabled=true
        [boot]
        systemd=true
        [user]
        default=nixos
      '';
      hostname = text "hostname" "nixos-wsl\n";
      sudoers = text "sudoers" "root ALL=(ALL:ALL) SETENV: ALL\n";
      sshConfig = text "ssh_config" "Host *\n  ForwardAgent no\n";
      resolv = text "resolv.conf" "nameserver 127.0.0.53\n";
      ownedByName = text "owned-by-name" "environment.etc.<name>.user = \"nixos\"\n";

      # `named`: a copied file owned by names (needs the facts' users).
      etcWith =
        named:
        mk "etc" (
          ''
            mkdir -p $out/etc/ssh
            ln -s ${wslConf} $out/etc/wsl.conf
            ln -s ${hostname} $out/etc/hostname
            ln -s ${sudoers} $out/etc/sudoers
            printf '0440\n' > $out/etc/sudoers.mode
            printf '+0\n' > $out/etc/sudoers.uid
            printf '+1\n' > $out/etc/sudoers.gid
            ln -s ${resolv} $out/etc/resolv.conf
            printf 'direct-symlink\n' > $out/etc/resolv.conf.mode
            printf '+0\n' > $out/etc/resolv.conf.uid
            printf '+0\n' > $out/etc/resolv.conf.gid
            ln -s ${sshConfig} $out/etc/ssh/ssh_config
          ''
          + (
            if named then
              ''
                ln -s ${ownedByName} $out/etc/owned-by-name
                printf '0640\n' > $out/etc/owned-by-name.mode
                printf 'nixos\n' > $out/etc/owned-by-name.uid
                printf 'wheel\n' > $out/etc/owned-by-name.gid
              ''
            else
              ""
          )
        );

      toplevelWith =
        named:
        mk "nixos-system-nixos-wsl-fake" ''
          mkdir -p $out/sw/bin
          ln -s ${etcWith named}/etc $out/etc
          ln -s ${nativeUtils}/bin/systemd-shim $out/init
          printf '#!${shell}/bin/sh\necho activating\n' > $out/activate
          chmod 555 $out/activate
          ln -s ${shell}/bin/bash $out/sw/bin/bash
          ln -s ${shell}/bin/sh $out/sw/bin/sh
          ln -s ${coreutils}/bin/env $out/sw/bin/env
          echo fake > $out/nixos-version
        '';
      toplevel = toplevelWith true;

      icon = mk "nixos.ico" ''
        printf '\000\000\001\000\001\000\020\020\000\000\001\000\040\000\150\004\000\000\026\000\000\000' > $out
        head -c 1128 /dev/zero >> $out
      '';
      configuration = text "configuration.nix" ''
        { ... }: { wsl.enable = true; wsl.defaultUser = "nixos"; }
      '';

      terminalProfile = text "terminal-profile.json" ''
        {"profiles": [{"name": "NixOS", "colorScheme": "Campbell"}]}
      '';

      # One user per password option (update-users-groups.pl's names), a
      # null shell, a disabled user; the hashes are crypt(3) of fixed salts.
      user =
        name: attrs:
        {
          inherit name;
          uid = null;
          group = "users";
          description = "";
          home = "/home/${name}";
          shell = "${shell}/bin/bash";
          createHome = true;
          homeMode = "700";
          isNormalUser = true;
        }
        // attrs;
      users = {
        users = [
          (user "root" {
            uid = 0;
            group = "root";
            description = "System administrator";
            home = "/root";
            isNormalUser = false;
            initialHashedPassword = "!";
          })
          (user "nixos" { uid = 1000; })
          (user "alice" {
            hashedPassword = "$6$fixedsalt$pyk3CylAbydsx7KikbN2vbUA9Zp9JbvsJMr4rKBa0jSiT.yStnleG7F2TdPuDpI/Xc5jSeSUhj9Sop68NUBN80";
          })
          (user "bob" {
            initialHashedPassword = "$6$othersalt$kmKr.bXdQQMs5XFi9htFsxYVBVuw5jtGKTuZiQ1JSYVbgmnDg4rSQhEA.zRk6vL30jBch.0Dw0HQjN1XxcXyh/";
          })
          (user "carol" { initialPassword = "carol-pw"; })
          (user "dave" { hashedPasswordFile = "/run/secrets/dave"; })
          (user "erin" { password = "erin-pw"; })
          (user "ghost" { enable = false; })
          (user "messagebus" {
            description = "D-Bus system message bus daemon user";
            home = "/run/dbus";
            shell = "/run/current-system/sw/bin/nologin";
            createHome = false;
            isNormalUser = false;
            group = "messagebus";
          })
          (user "noshell" {
            home = "/var/empty";
            shell = null;
            createHome = false;
            isNormalUser = false;
            group = "nogroup";
          })
        ];
        groups = [
          {
            name = "root";
            gid = 0;
            members = [ ];
          }
          {
            name = "wheel";
            gid = 1;
            members = [ "nixos" ];
          }
          {
            name = "users";
            gid = 100;
            members = [ ];
          }
          {
            name = "shadow";
            gid = 318;
            members = [ ];
          }
          {
            name = "messagebus";
            gid = null;
            members = [ ];
          }
          {
            name = "nogroup";
            gid = 65534;
            members = [ ];
          }
        ];
      };
      channels = {
        nixos = "https://nixos.org/channels/nixos-unstable";
        nixos-wsl = "https://github.com/nix-community/NixOS-WSL/archive/refs/heads/main.tar.gz";
      };

      factsWith =
        attrs:
        text "wsl-tarball-facts.json" (
          builtins.toJSON (
            {
              system = "${toplevel}";
              inherit users channels;
              init = "${nativeUtils}/bin/systemd-shim";
              populateBin = true;
              # wsl.extraBin order: a copy, and a duplicate name whose last entry wins.
              bin = [
                {
                  name = "sh";
                  src = "${coreutils}/bin/true";
                  copy = false;
                }
                {
                  name = "bash";
                  src = "${shell}/bin/bash";
                  copy = false;
                }
                {
                  name = "env";
                  src = "${coreutils}/bin/env";
                  copy = true;
                }
                {
                  name = "sh";
                  src = "${shell}/bin/sh";
                  copy = false;
                }
              ];
              usrBinEnv = "${coreutils}/bin/env";
              defaultName = "NixOS-Fake";
              icon = "${icon}";
              terminalProfile = "${terminalProfile}";
              nixosConfig = "${configuration}";
              compression = "gzip";
              level = null;
            }
            // attrs
          )
        );
      facts = factsWith { };

      fakeConfiguration = {
        config.system.build = {
          inherit toplevel;
          wslTarballFacts = facts;
        };
      };
      # A derivation that runs the binary under test on the closure, which
      # comes from exportReferencesGraph (with __structuredAttrs) as in the
      # module's derivations. `binaryHash` makes a new binary a new derivation.
      withClosure =
        name: command: binary: binaryHash:
        derivation {
          inherit
            name
            system
            binary
            binaryHash
            ;
          builder = "/bin/bash";
          __structuredAttrs = true;
          exportReferencesGraph.closure = [ toplevel ];
          args = [
            "-c"
            ''
              source .attrs.sh
              out=''${outputs[out]}
              /bin/mkdir -p $out
              ${command}
            ''
          ];
        };
      # What the module's system.build.wslTarball does.
      wslTarballWith = withClosure "nixos-wsl-tarball" ''
        "$binary" write --closure .attrs.json --facts ${facts} --mtime 1 --quiet -o $out/nixos.wsl \
          --manifest $out/manifest.json --sbom $out/sbom.cdx.json
      '';
      # What the module's system.build.tarballSecurityCheck does.
      securityCheckWith = withClosure "nixos-wsl-tarball-security-check" ''
        "$binary" check --closure .attrs.json --facts ${facts} --mtime 1 --json > $out/report.json
      '';
    in
    {
      lib = { inherit wslTarballWith securityCheckWith; };
      nixosConfigurations.fake = fakeConfiguration;
      # `wsl.populateBin = false` (envfs owns /bin).
      nixosConfigurations.nobin.config.system.build = {
        inherit toplevel;
        wslTarballFacts = factsWith { populateBin = false; };
      };
      # A host without the module: only a toplevel.
      nixosConfigurations.bare.config.system.build.toplevel = toplevelWith false;
    };
}
