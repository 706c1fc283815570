#!/usr/bin/env python3
"""Choose installed Debian packages for the benchmark closure.

Writes DIR/packages.json: one entry per package with its file list and the
packages it depends on (restricted to the chosen set), largest first until
the target size is reached. closure.nix turns each into one store path, with
references following the Depends fields, so the closure holds real binaries,
libraries and text with a real reference graph.
"""
import json
import os
import subprocess
import sys


def installed_packages():
    out = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package}\t${Installed-Size}\t${Depends}\n"],
        check=True, capture_output=True, text=True,
    ).stdout
    for line in out.splitlines():
        name, size, depends = (line.split("\t") + ["", ""])[:3]
        deps = set()
        for alternative in depends.split(","):
            alternative = alternative.strip()
            if alternative:
                deps.add(alternative.split("|")[0].split()[0].split(":")[0])
        yield name.split(":")[0], int(size or 0) * 1024, deps


def files_of(package):
    result = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True)
    files = []
    for path in result.stdout.splitlines():
        if path in ("/.", "") or not path.startswith("/"):
            continue
        if path.startswith(("/etc/", "/var/", "/run/", "/dev/", "/proc/", "/sys/")):
            continue
        # Skip paths reached through a symlinked directory (merged /usr: /bin -> usr/bin).
        if os.path.realpath(os.path.dirname(path)) != os.path.dirname(path):
            continue
        if os.path.islink(path) or os.path.isfile(path):
            if os.access(path, os.R_OK):
                files.append(path)
    return files


MIN_PACKAGES = 220
MAX_PACKAGE_BYTES = 60_000_000
MIN_FILES = 32_000


def main():
    out_dir, target_bytes = sys.argv[1], int(sys.argv[2])
    chosen, total, file_count = [], 0, 0
    for name, size, deps in sorted(installed_packages(), key=lambda p: (-p[1], p[0])):
        if total >= target_bytes and len(chosen) >= MIN_PACKAGES and file_count >= MIN_FILES:
            break
        files = files_of(name)
        if not files:
            continue
        # Huge single binaries say little; huge trees of source files say a lot.
        if size > MAX_PACKAGE_BYTES and len(files) < 5000:
            continue
        actual = sum(os.lstat(f).st_size for f in files)
        if total >= target_bytes and actual > target_bytes // 100:
            continue  # enough bytes: fill the path and file counts with small packages
        chosen.append({"name": name, "deps": sorted(deps), "files": files})
        total += actual
        file_count += len(files)
    names = {p["name"] for p in chosen}
    os.makedirs(out_dir, exist_ok=True)
    for package in chosen:
        package["deps"] = [d for d in package["deps"] if d in names and d != package["name"]]
        list_file = os.path.join(out_dir, package["name"] + ".files")
        with open(list_file, "w") as handle:
            handle.write("\n".join(package["files"]) + "\n")
        package["fileList"] = list_file
        package["fileCount"] = len(package.pop("files"))
    with open(os.path.join(out_dir, "packages.json"), "w") as handle:
        json.dump(chosen, handle, indent=1)
    print(f"{len(chosen)} packages, {total / 1e9:.2f} GB of files", file=sys.stderr)


if __name__ == "__main__":
    main()
