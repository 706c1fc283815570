# The wsl-tarball binary, built from Cargo.lock.
#
# The sandbox has no Nix store to build closures in, so only the library's
# unit tests run here; the integration tests (real Nix, real GNU tar) run in
# CI with `cargo test`.
{
  lib,
  rustPlatform,
  makeWrapper,
  installShellFiles,
  nix,
  gzip,
  pigz,
  xz,
  zstd,
  # The flake's short (or dirty short) revision, shown by --version.
  gitRevision ? null,
}:
let
  cargoToml = lib.importTOML ../Cargo.toml;
in
rustPlatform.buildRustPackage {
  pname = cargoToml.package.name;
  inherit (cargoToml.package) version;

  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [
      ../Cargo.toml
      ../Cargo.lock
      ../src
      ../tests
    ];
  };
  cargoLock.lockFile = ../Cargo.lock;

  nativeBuildInputs = [
    makeWrapper
    installShellFiles
  ];

  # Read by option_env! in src/main.rs; a new revision rebuilds only the binary.
  env = lib.optionalAttrs (gitRevision != null) {
    WSL_TARBALL_GIT_REVISION = gitRevision;
  };

  cargoTestFlags = [ "--lib" ];
  # The compression tests decode with the real tools.
  nativeCheckInputs = [
    gzip
    pigz
    xz
    zstd
  ];
  # These build closures with a real, writable Nix store, which the sandbox
  # does not have; they run in CI.
  checkFlags = map (test: "--skip=nixdb::tests::${test}") [
    "nix_reads_the_rendered_database"
    "schema_matches_a_database_nix_creates"
    "registration_round_trips_through_nix"
  ];

  # Completions and the man page come from the binary itself (clap_complete,
  # clap_mangen), so they always match its flags. `wsl-tarball build` calls
  # `nix`; the wrapper falls back to this Nix if the user has none on PATH.
  postInstall = ''
    installShellCompletion --cmd wsl-tarball \
      --bash <($out/bin/wsl-tarball completions bash) \
      --zsh <($out/bin/wsl-tarball completions zsh) \
      --fish <($out/bin/wsl-tarball completions fish)
    $out/bin/wsl-tarball man > wsl-tarball.1
    installManPage wsl-tarball.1
    for command in write build check inspect verify diff delta apply completions man; do
      $out/bin/wsl-tarball man $command > wsl-tarball-$command.1
      installManPage wsl-tarball-$command.1
    done
    wrapProgram $out/bin/wsl-tarball --suffix PATH : ${lib.makeBinPath [ nix ]}
  '';

  meta = {
    description = cargoToml.package.description;
    homepage = cargoToml.package.repository;
    license = lib.licenses.mit;
    mainProgram = "wsl-tarball";
    platforms = lib.platforms.linux;
  };
}
