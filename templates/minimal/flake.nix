# The smallest NixOS-WSL host built by wsl-tarball:
#   nix build .#nixosConfigurations.nixos-wsl.config.system.build.wslTarball
{
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
      nixosConfigurations.nixos-wsl = nixpkgs.lib.nixosSystem {
        system = "x86_64-linux";
        modules = [
          nixos-wsl.nixosModules.default
          wsl-tarball.nixosModules.default
          {
            wsl.enable = true;
            wsl.defaultUser = "nixos";
            system.stateVersion = "25.11";
          }
        ];
      };

      checks.x86_64-linux = {
        tarball = self.nixosConfigurations.nixos-wsl.config.system.build.wslTarball;
        security = self.nixosConfigurations.nixos-wsl.config.system.build.tarballSecurityCheck;
      };
    };
}
