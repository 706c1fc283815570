# The `wsl` image variant for nixpkgs' image framework (nixos/modules/image/images.nix,
# NixOS 25.05 and later): `nixos-rebuild build-image --image-variant wsl` and
# `config.system.build.images.wsl` give exactly `system.build.wslTarball`.
#
# The framework evaluates each `image.modules.<variant>` as an extension of the host
# (`extendModules`), takes `system.build.image` from it and reads `image.filePath`,
# the image's path relative to that output. This variant adds nothing to the system,
# so the extended host has the same toplevel and the image is the same derivation,
# byte for byte, as the host's own `wslTarball`.
#
# On nixpkgs without the framework (no `image.modules` option) this module does nothing.
{
  config,
  lib,
  options,
  ...
}:
{
  config = lib.optionalAttrs (options ? image.modules) {
    image.modules = lib.mkIf config.wsl.enable {
      wsl =
        { config, modulesPath, ... }:
        {
          # image.baseName, image.extension, image.fileName, image.filePath.
          imports = [ (modulesPath + "/image/file-options.nix") ];
          image.baseName = "nixos";
          image.extension = "wsl";
          # wslTarball's output: $out/nixos.wsl, $out/manifest.json and $out/sbom.cdx.json.
          image.filePath = "nixos.wsl";
          system.build.image = config.system.build.wslTarball;
        };
    };
  };
}
