# The benchmark closure: one store path per Debian package (files copied
# from the host with their directory layout), referencing the store paths of
# the packages it depends on, and a top path referencing them all. `salt`
# changes only the top path: one changed store path, for rebuild timings.
{
  packagesJson,
  salt ? "",
}:
let
  packages = builtins.fromJSON (builtins.readFile packagesJson);
  byName = builtins.listToAttrs (
    map (p: {
      name = p.name;
      value = p;
    }) packages
  );
  storePath = name: derivations.${name};
  derivations = builtins.mapAttrs (
    name: p:
    derivation {
      name = "deb-${builtins.replaceStrings [ "+" ] [ "p" ] name}";
      system = builtins.currentSystem;
      builder = "/bin/bash";
      fileList = p.fileList;
      deps = map storePath p.deps;
      args = [
        "-c"
        ''
          set -e
          /bin/mkdir -p $out/nix-support
          /bin/tar -C / --no-recursion -cf - -T "$fileList" | /bin/tar -C $out -xf -
          /bin/chmod -R u+w $out
          for d in $deps; do echo "$d" >> $out/nix-support/depends; done
        ''
      ];
    }
  ) byName;
in
derivation {
  name = "bench-system";
  system = builtins.currentSystem;
  builder = "/bin/bash";
  inherit salt;
  all = builtins.attrValues derivations;
  args = [
    "-c"
    "/bin/mkdir -p $out; for p in $all; do echo $p >> $out/contents; done"
  ];
}
