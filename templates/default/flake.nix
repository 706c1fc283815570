# A NixOS-WSL distribution for your team, built into a reproducible nixos.wsl
# by wsl-tarball. See README.md: build, publish, import, update.
{
  description = "Our NixOS-WSL distribution";

  inputs = {
    nixpkgs.url = "github:NixOS/nixpkgs/nixos-unstable";
    nixos-wsl = {
      url = "github:nix-community/NixOS-WSL";
      inputs.nixpkgs.follows = "nixpkgs";
    };
    wsl-tarball = {
      url = "github:wsl-tarball/wsl-tarball";
      inputs.nixpkgs.follows = "nixpkgs";
      inputs.nixos-wsl.follows = "nixos-wsl";
    };
  };

  outputs =
    {
      self,
      nixpkgs,
      nixos-wsl,
      wsl-tarball,
    }:
    {
      nixosConfigurations.my-wsl = nixpkgs.lib.nixosSystem {
        system = "x86_64-linux";
        modules = [
          nixos-wsl.nixosModules.default
          wsl-tarball.nixosModules.default
          ./configuration.nix
        ];
      };

      # `nix flake check`: the tarball builds (its security check runs inside the
      # build and fails it on an error-severity finding), and the security
      # check's report on its own.
      checks.x86_64-linux =
        let
          build = self.nixosConfigurations.my-wsl.config.system.build;
        in
        {
          tarball = build.wslTarball;
          security = build.tarballSecurityCheck;
        };

      packages.x86_64-linux.default = self.nixosConfigurations.my-wsl.config.system.build.wslTarball;
    };
}
