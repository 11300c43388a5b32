"""Copies a Confvault archive with one configuration file's content changed, manifest untouched."""
import io
import sys
import tarfile

source, target = sys.argv[1], sys.argv[2]
with tarfile.open(source) as src, tarfile.open(target, "w:gz", format=tarfile.PAX_FORMAT) as dst:
    changed = False
    for member in src.getmembers():
        data = src.extractfile(member).read() if member.isfile() else None
        if not changed and member.isfile() and b"level: info" in data:
            data = data.replace(b"level: info", b"level: warn")  # same size, other bytes
            member.size = len(data)
            changed = True
            print(f"changed {member.name} behind the manifest's back")
        dst.addfile(member, io.BytesIO(data) if data is not None else None)
