# Flake checks: the package with its tests, clippy and rustfmt, nixfmt over
# every .nix file, the tarball of nixos-wsl-minimal, a reproducibility check
# that writes the same system twice with different thread counts and compares
# the bytes of the tarball and of its SBOM, and the security check.
{
  lib,
  runCommand,
  cargo,
  rustfmt,
  clippy,
  nixfmt,
  wslTarballPackage,
  nixosConfiguration,
}:
let
  build = nixosConfiguration.config.system.build;
  source = wslTarballPackage.src;

  # The same tarball written by a second, independent derivation on one thread.
  singleThreaded = build.wslTarball.overrideAttrs (old: {
    name = "nixos-wsl-tarball-single-threaded";
    writeFlags = old.writeFlags ++ [
      "--threads"
      "1"
    ];
  });
in
{
  package = wslTarballPackage;

  clippy = wslTarballPackage.overrideAttrs (old: {
    pname = "wsl-tarball-clippy";
    nativeBuildInputs = old.nativeBuildInputs ++ [ clippy ];
    buildPhase = ''
      runHook preBuild
      cargo clippy --offline --all-targets -- -D warnings
      runHook postBuild
    '';
    doCheck = false;
    installPhase = "touch $out";
    postInstall = "";
  });

  fmt =
    runCommand "wsl-tarball-rustfmt"
      {
        nativeBuildInputs = [
          cargo
          rustfmt
        ];
      }
      ''
        cd ${source}
        cargo fmt --check
        touch $out
      '';

  # `nix fmt` leaves every .nix file as it is.
  nixfmt =
    let
      nixFiles = lib.cleanSourceWith {
        src = lib.cleanSource ../.;
        filter = path: type: type == "directory" || lib.hasSuffix ".nix" path;
      };
    in
    runCommand "wsl-tarball-nixfmt" { nativeBuildInputs = [ nixfmt ]; } ''
      cd ${nixFiles}
      find . -name '*.nix' -print0 | sort -z | xargs -0 nixfmt --check
      touch $out
    '';

  tarball = build.wslTarball;

  security = build.tarballSecurityCheck;

  reproducible = runCommand "wsl-tarball-reproducible" { } ''
    cmp ${build.wslTarball}/nixos.wsl ${singleThreaded}/nixos.wsl
    cmp ${build.wslTarball}/sbom.cdx.json ${singleThreaded}/sbom.cdx.json
    touch $out
  '';
}
