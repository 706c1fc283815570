#!/usr/bin/env python3
"""A/B two wsl-tarball binaries on the same closure, runs interleaved.

    python3 bench/ab.py A_BINARY B_BINARY CLOSURE_JSON SYSTEM [--repetitions 3] [--cache]

Runs `write` (defaults: gzip, all cores, checks on) with each binary in
turn, A B A B …, after one untimed warm-up run of each, so that both see the
same page cache and the same background load. With `--cache`, each binary
gets its own `--cache` directory, which the warm-up run fills: the timed
runs are rebuilds in which every store path is a cache hit. Prints wall and CPU seconds
(min and median) of each, the ratio of the medians B/A, and whether the
two outputs are byte-identical. Needs GNU time.
"""
import argparse
import filecmp
import os
import statistics
import subprocess
import tempfile
import time


def run(binary, closure, system, output, cache):
    extra = ["--cache", cache] if cache else []
    with tempfile.NamedTemporaryFile("r") as report:
        started = time.monotonic()
        subprocess.run(
            ["/usr/bin/time", "-f", "%U %S", "-o", report.name, binary, "write",
             "--closure", closure, "--system", system, "--quiet", "-o", output] + extra,
            check=True, stderr=subprocess.DEVNULL,  # the scan's warnings
        )
        wall = time.monotonic() - started
        user, system_cpu = report.read().split()[-2:]
    return wall, float(user) + float(system_cpu)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("closure")
    parser.add_argument("system")
    parser.add_argument("--repetitions", type=int, default=3)
    parser.add_argument("--cache", action="store_true")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="wsl-tarball-ab-")
    outputs = {"A": os.path.join(work, "a.wsl"), "B": os.path.join(work, "b.wsl")}
    caches = {name: os.path.join(work, f"cache-{name}") if args.cache else None for name in "AB"}
    binaries = {"A": args.a, "B": args.b}
    for name in "AB":
        run(binaries[name], args.closure, args.system, outputs[name], caches[name])
    results = {"A": [], "B": []}
    for _ in range(args.repetitions):
        for name in "AB":
            results[name].append(
                run(binaries[name], args.closure, args.system, outputs[name], caches[name]))
    medians = {}
    for name in "AB":
        walls = [r[0] for r in results[name]]
        cpus = [r[1] for r in results[name]]
        medians[name] = (statistics.median(walls), statistics.median(cpus))
        print(f"{name} {binaries[name]}: wall min {min(walls):.2f} s, median {medians[name][0]:.2f} s; "
              f"CPU min {min(cpus):.2f} s, median {medians[name][1]:.2f} s "
              f"(walls {', '.join(f'{w:.2f}' for w in walls)}; CPU {', '.join(f'{c:.2f}' for c in cpus)})")
    print(f"B/A median wall {medians['B'][0] / medians['A'][0]:.4f}, "
          f"median CPU {medians['B'][1] / medians['A'][1]:.4f}")
    print(f"outputs byte-identical: {filecmp.cmp(outputs['A'], outputs['B'], shallow=False)}")


if __name__ == "__main__":
    main()
