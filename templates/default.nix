# `nix flake init -t github:wsl-tarball/wsl-tarball` (default) or `…#minimal`.
{
  default = {
    path = ./default;
    description = "A NixOS-WSL distribution built by wsl-tarball, with flake checks, a GitHub Actions workflow that builds, import-tests and publishes it, and a README";
    welcomeText = ''
      # A NixOS-WSL distribution built by wsl-tarball

      Edit configuration.nix, then see README.md:

          nix build .#nixosConfigurations.my-wsl.config.system.build.wslTarball
    '';
  };
  minimal = {
    path = ./minimal;
    description = "The smallest NixOS-WSL host built by wsl-tarball: one flake.nix";
  };
}
