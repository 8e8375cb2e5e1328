"""Lists or unpacks a deployment zip the way the tests need it, with no third-party packages.

  deploy_zip.py list ZIP          prints [{"name", "mode", "dir"}] for every entry
  deploy_zip.py extract ZIP DIR   unpacks ZIP into DIR, applying each entry's recorded Unix mode

Python's zipfile.extractall drops modes; `unzip` keeps them, and so does this.
"""

import json
import os
import sys
import zipfile


def entries(archive: zipfile.ZipFile) -> list[dict]:
    return [
        {"name": info.filename, "mode": (info.external_attr >> 16) & 0o7777, "dir": info.is_dir()}
        for info in archive.infolist()
    ]


def main() -> int:
    command, zip_path = sys.argv[1], sys.argv[2]
    with zipfile.ZipFile(zip_path) as archive:
        if command == "list":
            json.dump(entries(archive), sys.stdout)
            return 0
        if command == "extract":
            target = sys.argv[3]
            for info in archive.infolist():
                path = archive.extract(info, target)
                mode = (info.external_attr >> 16) & 0o7777
                if mode and not info.is_dir():
                    os.chmod(path, mode)
            return 0
    print(f"unknown command {command}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
