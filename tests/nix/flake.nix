# A nixpkgs-free test flake: a NixOS-shaped fake system built with plain
# `derivation` and host tools, so that `wsl-tarball build` can be driven the
# way `nix run` drives it, on a machine that cannot fetch nixpkgs.
#
# nixosConfigurations.fake mimics what the wsl-tarball module exposes:
# config.system.build.toplevel (with activate, init, sw/bin, an etc tree with
# .mode/.uid/.gid companions) and config.system.build.wslTarballFacts.
{
  description = "wsl-tarball test fixtures (no nixpkgs)";

  outputs = { self }:
    let
      system = "x86_64-linux";
      mk = name: script: derivation {
        inherit name system;
        builder = "/bin/sh";
        args = [ "-c" script ];
        PATH = "/usr/bin:/bin";
      };
      text = name: content: derivation {
        inherit name system content;
        builder = "/bin/sh";
        args = [ "-c" "printf '%s' \"$content\" > $out" ];
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

      etc = mk "etc" ''
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
      '';

      toplevel = mk "nixos-system-nixos-wsl-fake" ''
        mkdir -p $out/sw/bin
        ln -s ${etc}/etc $out/etc
        ln -s ${nativeUtils}/bin/systemd-shim $out/init
        printf '#!${shell}/bin/sh\necho activating\n' > $out/activate
        chmod 555 $out/activate
        ln -s ${shell}/bin/bash $out/sw/bin/bash
        ln -s ${shell}/bin/sh $out/sw/bin/sh
        ln -s ${coreutils}/bin/env $out/sw/bin/env
        echo fake > $out/nixos-version
      '';

      icon = mk "nixos.ico" ''
        printf '\000\000\001\000\001\000\020\020\000\000\001\000\040\000\150\004\000\000\026\000\000\000' > $out
        head -c 1128 /dev/zero >> $out
      '';
      configuration = text "configuration.nix" ''
        { ... }: { wsl.enable = true; wsl.defaultUser = "nixos"; }
      '';

      facts = text "wsl-tarball-facts.json" (builtins.toJSON {
        system = "${toplevel}";
        users = {
          users = [
            { name = "root"; uid = 0; group = "root"; description = "System administrator";
              home = "/root"; shell = "${shell}/bin/bash"; createHome = true; homeMode = "700"; isNormalUser = false; }
            { name = "nixos"; uid = 1000; group = "users"; description = "";
              home = "/home/nixos"; shell = "${shell}/bin/bash"; createHome = true; homeMode = "700"; isNormalUser = true; }
            { name = "messagebus"; uid = null; group = "messagebus"; description = "D-Bus system message bus daemon user";
              home = "/run/dbus"; shell = "/run/current-system/sw/bin/nologin"; createHome = false; homeMode = "700"; isNormalUser = false; }
          ];
          groups = [
            { name = "root"; gid = 0; members = [ ]; }
            { name = "wheel"; gid = 1; members = [ "nixos" ]; }
            { name = "users"; gid = 100; members = [ ]; }
            { name = "messagebus"; gid = null; members = [ ]; }
          ];
        };
        init = "${nativeUtils}/bin/systemd-shim";
        bin = { sh = "${shell}/bin/sh"; bash = "${shell}/bin/bash"; };
        usrBinEnv = "${coreutils}/bin/env";
        defaultName = "NixOS-Fake";
        icon = "${icon}";
        terminalProfile = null;
        nixosConfig = "${configuration}";
        compression = "gzip";
        level = null;
      });

      fakeConfiguration = {
        config.system.build = {
          inherit toplevel;
          wslTarballFacts = facts;
        };
      };
      # A derivation that runs the binary under test on the closure, which
      # comes from exportReferencesGraph (with __structuredAttrs) as in the
      # module's derivations. `binaryHash` makes a new binary a new derivation.
      withClosure = name: command: binary: binaryHash: derivation {
        inherit name system binary binaryHash;
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
        "$binary" write --closure .attrs.json --facts ${facts} --mtime 1 --quiet -o $out/nixos.wsl
      '';
      # What the module's system.build.tarballSecurityCheck does.
      securityCheckWith = withClosure "nixos-wsl-tarball-security-check" ''
        "$binary" check --closure .attrs.json --facts ${facts} --mtime 1 --json > $out/report.json
      '';
    in
    {
      lib = { inherit wslTarballWith securityCheckWith; };
      nixosConfigurations.fake = fakeConfiguration;
      # A host without the module: only a toplevel.
      nixosConfigurations.bare.config.system.build.toplevel = toplevel;
    };
}
