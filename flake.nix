{
  description = "wsl-tarball: stream a NixOS closure into a reproducible nixos.wsl, without root";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    nixos-wsl = {
      url = "github:nix-community/NixOS-WSL";
      inputs.nixpkgs.follows = "nixpkgs";
    };
  };

  outputs =
    {
      self,
      nixpkgs,
      nixos-wsl,
    }:
    let
      inherit (nixpkgs) lib;
      systems = [
        "x86_64-linux"
        "aarch64-linux"
      ];
      forAllSystems = function: lib.genAttrs systems (system: function nixpkgs.legacyPackages.${system});

      # A generic distribution: what `nix run .#wsl-tarball` builds by default.
      minimalConfiguration =
        { ... }:
        {
          wsl.enable = true;
          wsl.defaultUser = "nixos";
          networking.hostName = "nixos-wsl";
          nixpkgs.config.allowUnfree = false;
          nix.settings.experimental-features = [
            "nix-command"
            "flakes"
          ];
          system.stateVersion = "25.11";
        };
      mkMinimal =
        system:
        lib.nixosSystem {
          inherit system;
          modules = [
            nixos-wsl.nixosModules.default
            self.nixosModules.default
            minimalConfiguration
          ];
        };
    in
    {
      packages = forAllSystems (pkgs: rec {
        wsl-tarball = pkgs.callPackage ./nix/package.nix { };
        default = wsl-tarball;
      });

      apps = forAllSystems (
        pkgs:
        let
          app = {
            type = "app";
            # `nix run .#wsl-tarball -- HOST [--flake REF] [-o FILE] [write flags…]`
            program = lib.getExe (
              pkgs.writeShellScriptBin "wsl-tarball-build" ''
                exec ${lib.getExe self.packages.${pkgs.stdenv.hostPlatform.system}.wsl-tarball} build "$@"
              ''
            );
          };
        in
        {
          wsl-tarball = app;
          default = app;
        }
      );

      nixosModules.default = import ./nix/module.nix {
        wslTarballPackages = lib.mapAttrs (_: packages: packages.wsl-tarball) self.packages;
        defaultIcon = "${nixos-wsl}/assets/NixOS-WSL.ico";
      };

      nixosConfigurations = {
        nixos-wsl-minimal = mkMinimal "x86_64-linux";
        nixos-wsl-minimal-aarch64 = mkMinimal "aarch64-linux";
      };

      checks = forAllSystems (
        pkgs:
        let
          system = pkgs.stdenv.hostPlatform.system;
        in
        pkgs.callPackage ./nix/checks.nix {
          wslTarballPackage = self.packages.${system}.wsl-tarball;
          nixosConfiguration =
            if system == "x86_64-linux" then
              self.nixosConfigurations.nixos-wsl-minimal
            else
              self.nixosConfigurations.nixos-wsl-minimal-aarch64;
        }
      );

      templates = import ./templates;

      formatter = forAllSystems (pkgs: pkgs.nixfmt);

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          inputsFrom = [ self.packages.${pkgs.stdenv.hostPlatform.system}.wsl-tarball ];
          packages = with pkgs; [
            clippy
            rustfmt
            nix
            gnutar
            libarchive
            gzip
            pigz
            xz
            zstd
            sqlite
          ];
        };
      });
    };
}
