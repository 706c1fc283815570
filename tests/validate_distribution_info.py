#!/usr/bin/env python3
"""The manifest rules of Microsoft's validator, for `publish`'s tests.

A port of microsoft/WSL `distributions/validate-modern.py` (3e27a6a50),
`--manifest` mode: for each flavour and version, a Name starting with the
flavour, a FriendlyName, an Amd64Url or Arm64Url, no key beyond Name,
FriendlyName, Default, Amd64Url and Arm64Url, exactly one Default per
flavour; for each URL a `.wsl` name (a warning there, an error here: the
tests want none), a Sha256 (`0x` optional) that matches the file, gzip or xz
data, and /bin/sh (and /sbin/init) an ELF for the URL's architecture (as
`read_tar` checks with libmagic: "ELF 64-bit ... x86-64" or "ARM aarch64",
read here from the ELF header). Plus `validate.py`'s formatting rule: the
file is `json.dumps(content, indent=4) + "\\n"`.

Where the original downloads https:// URLs, this reads file:// URLs only
(the tests publish to a local directory); the original's
`.replace('file:///', '')` leaves a Windows path, this keeps the POSIX one.
The libmagic-based checks use the headers' bytes instead (no python-magic
here). The rest of `read_tar` (wsl-distribution.conf, passwd, units) is
`wsl-tarball verify`'s business, which `publish` runs.

Usage: validate_distribution_info.py DistributionInfo.json
Prints each error and exits 1 if there is one, else prints the versions.
"""

import hashlib
import json
import os.path
import posixpath
import sys
import tarfile

EXPECTED_KEYS = ['Name', 'FriendlyName', 'Default', 'Amd64Url', 'Arm64Url']
# e_machine of the architecture each URL field names.
MACHINES = {'Amd64Url': 62, 'Arm64Url': 183}

errors = []


def error(where, message):
    errors.append(f'{where}: {message}')


def check_format(path):
    with open(path) as fd:
        data = fd.read()
    content = json.loads(data)
    if data != json.dumps(content, indent=4) + '\n':
        error(path, 'not formatted as json.dumps(indent=4) and a newline (validate.py)')
    return content


def resolve(tar, path, depth=0):
    """The regular member `path` leads to, following symlinks inside the
    archive (as validate-modern.py's get_tar_file does)."""
    if depth > 40:
        return None
    parts = [p for p in path.split('/') if p]
    current = ''
    for i, part in enumerate(parts):
        candidate = posixpath.join(current, part) if current else part
        member = None
        for name in (candidate, './' + candidate, '/' + candidate):
            try:
                member = tar.getmember(name)
                break
            except KeyError:
                continue
        if member is None:
            return None
        if member.issym():
            target = member.linkname
            base = posixpath.dirname(candidate)
            joined = target if target.startswith('/') else posixpath.join('/', base, target)
            rest = '/'.join(parts[i + 1:])
            full = posixpath.normpath(posixpath.join(joined, rest) if rest else joined)
            return resolve(tar, full, depth + 1)
        current = candidate
    member = None
    for name in (current, './' + current, '/' + current):
        try:
            member = tar.getmember(name)
            break
        except KeyError:
            continue
    return member


def elf_machine(tar, member):
    head = tar.extractfile(member).read(20)
    if len(head) < 20 or head[:4] != b'\x7fELF':
        return None
    if head[4] != 2 or head[5] != 1 or head[6] != 1:
        return None  # not "ELF 64-bit LSB ..., version 1"
    return int.from_bytes(head[18:20], 'little')


def read_url(where, field, url):
    address = url['Url']
    if not address.endswith('.wsl'):
        error(where, f'Url does not point to a .wsl file: {address}')
    if not address.startswith('file://'):
        error(where, f'only file:// URLs are read here: {address}')
        return
    path = address[len('file://'):]
    digest = hashlib.sha256()
    with open(path, 'rb') as fd:
        head = fd.read(6)
        fd.seek(0)
        for block in iter(lambda: fd.read(1 << 20), b''):
            digest.update(block)
    expected = url.get('Sha256')
    if expected is None:
        error(where, 'URL is missing "Sha256"')
    else:
        if expected.startswith('0x'):
            expected = expected[2:]
        if bytes.fromhex(expected) != digest.digest():
            error(where, f'URL {address} Sha256 does not match. Expected: {expected}, actual: {digest.hexdigest()}')
    if head.startswith(b'\x1f\x8b'):
        mode = 'r:gz'
    elif head.startswith(b'\xfd7zXZ\x00'):
        mode = 'r:xz'
    else:
        error(where, f'Unknown tar format (not gzip or xz): {address}')
        return
    with tarfile.open(path, mode) as tar:
        for program in ['/sbin/init', '/bin/sh']:
            member = resolve(tar, program)
            if member is None or not member.isfile():
                error(where, f'{program} does not resolve to a file in {address}')
                continue
            machine = elf_machine(tar, member)
            if machine != MACHINES[field]:
                error(where, f'{program} in {address} is not an ELF for {field} (e_machine {machine}, expected {MACHINES[field]})')


def main(path):
    content = check_format(path)
    for flavor, versions in content['ModernDistributions'].items():
        for e in versions:
            name = e.get('Name')
            if name is None:
                error(flavor, 'Found nameless distribution')
                continue
            where = f'{flavor}/{name}'
            if 'FriendlyName' not in e:
                error(where, 'Manifest entry is missing a "FriendlyName" entry')
            if not name.startswith(flavor):
                error(where, f'Name should start with "{flavor}"')
            url_found = False
            for field in ['Amd64Url', 'Arm64Url']:
                if field in e:
                    read_url(where, field, e[field])
                    url_found = True
            if not url_found:
                error(flavor, 'No URL found')
            for key in e:
                if key not in EXPECTED_KEYS:
                    error(where, f'Unexpected key: "{key}"')
        defaults = sum(1 for e in versions if e.get('Default'))
        if defaults != 1:
            error(flavor, f'Found no default distribution for "{flavor}"' if defaults == 0
                  else f'Found multiple default distributions for "{flavor}"')
    for message in errors:
        print(f'error: {message}')
    if errors:
        return 1
    for flavor, versions in content['ModernDistributions'].items():
        for e in versions:
            arches = [f for f in ['Amd64Url', 'Arm64Url'] if f in e]
            default = ' default' if e.get('Default') else ''
            print(f'{flavor}: {e["Name"]}{default} {" ".join(arches)}')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1]))
