#!/usr/bin/env python3
"""Validates a CycloneDX JSON SBOM against the schema of its specVersion,
with the schemas cyclonedx-python-lib ships (tests/sbom.rs runs this).

Usage: validate_cyclonedx.py FILE
Exit status: 0 valid, 1 invalid (the schema's message printed), 3 the
module `cyclonedx` (with its json-validation extra) is not importable.
"""

import json
import sys

try:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator
except ImportError as error:
    print(f"cannot import cyclonedx-python-lib[json-validation]: {error}", file=sys.stderr)
    sys.exit(3)


def main() -> int:
    with open(sys.argv[1], encoding="utf-8") as file:
        text = file.read()
    version = json.loads(text)["specVersion"]
    schema = SchemaVersion.from_version(version)
    error = JsonStrictValidator(schema).validate_str(text)
    if error is not None:
        data = error.data
        where = "/".join(str(p) for p in getattr(data, "absolute_path", []))
        print(f"invalid CycloneDX {version} at /{where}: {getattr(data, 'message', data)}")
        return 1
    print(f"valid CycloneDX {version}")
    return 0


sys.exit(main())
