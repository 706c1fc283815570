# The distribution: an ordinary NixOS configuration with NixOS-WSL and
# wsl-tarball's module. Every wsl.tarball option is shown with its default.
{ pkgs, ... }:
{
  wsl.enable = true;
  # The user WSL logs in as (/etc/wsl.conf [user] default).
  wsl.defaultUser = "nixos";

  wsl.tarball = {
    # The name `wsl --install --from-file` and a double-click suggest.
    defaultName = "NixOS";
    # gzip is the only format WSL officially supports ("xz", "zstd", "none").
    compression = "gzip";
    # null: the format's default level (gzip 6).
    compressionLevel = null;
    # null: NixOS-WSL's icon. Otherwise an .ico of at most 1 MiB.
    # icon = ./team.ico;
    # A Windows Terminal profile template (JSON).
    # terminalProfileTemplate = ./terminal-profile.json;
    # Copied to /etc/nixos in the distribution; null generates a configuration.nix.
    # configPath = ./.;

    # Every byte of the tarball is scanned for secrets and personal data;
    # an error-severity finding fails the build.
    checks = {
      enable = true;
      # Names, e-mail addresses, host names that must not ship.
      personalIdentifiers = [ ];
      # Literal text that must not ship, e.g. an internal host name.
      patterns = [ ];
      # Accepted findings: "DETECTOR", "DETECTOR:GLOB" or "/GLOB".
      allow = [ ];
      # true: warnings (findings in ordinary store paths) fail the build too.
      strict = false;
    };
  };

  environment.systemPackages = with pkgs; [
    git
    vim
  ];

  nix.settings.experimental-features = [
    "nix-command"
    "flakes"
  ];

  system.stateVersion = "25.11";
}
