"""Parses every Bicep file under a folder with pycep and prints {relative path: parsed JSON}.

Used by tests/deploy_bicep.rs: pycep checks Bicep syntax offline (no Bicep compiler is reachable)
and turns each file into plain JSON the Rust test can inspect. Exits 1 naming the first file that
does not parse.
"""

import json
import sys
from pathlib import Path

from pycep import BicepParser


def main() -> int:
    root = Path(sys.argv[1])
    parser = BicepParser()
    parsed = {}
    for path in sorted(root.rglob("*.bicep")):
        try:
            parsed[path.relative_to(root).as_posix()] = parser.parse(file_path=path)
        except Exception as error:  # pycep raises Lark and ValueError types alike
            print(f"{path}: {type(error).__name__}: {error}", file=sys.stderr)
            return 1
    json.dump(parsed, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
