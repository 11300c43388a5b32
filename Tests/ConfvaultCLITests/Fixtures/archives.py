"""Writes archives for the end-to-end tests: hostile ones (one per refusal rule) and ones by other writers.

Usage:
  archives.py hostile DIR          one archive per case, named <case>.tar[.gz]
  archives.py bomb FILE SIZE MODE   gzip bomb: SIZE bytes of zeros in one entry, a few MB on disk;
                                    MODE `plain` (no manifest) or `manifest` (manifest claims 1 MiB)
  archives.py tarfile SRC OUT FMT   an archive of folder SRC with our manifest, by Python's tarfile,
                                    FMT ustar|pax|gnu (uncompressed)
  archives.py manifest SRC OUT      writes our manifest for folder SRC to OUT
  archives.py extract ARCHIVE DIR   extracts with Python's tarfile into DIR
"""
import gzip
import hashlib
import io
import json
import os
import stat
import sys
import tarfile
import unicodedata
import zlib


def sha(data):
    return hashlib.sha256(data).hexdigest()


def manifest_for(files, **overrides):
    """Our manifest (format 1) for files: a list of (path, bytes, mode string)."""
    entries = sorted(
        ({"path": p, "size": len(d), "mode": m, "sha256": sha(d)} for p, d, m in files),
        key=lambda e: e["path"].encode(),
    )
    lines = "".join(f"{e['mode']} {e['sha256']} {e['path']}\n" for e in entries)
    manifest = {
        "format": "confvault-archive",
        "formatVersion": 1,
        "generator": "archives.py",
        "app": "inventory",
        "environment": "production",
        "version": None,
        "fileCount": len(entries),
        "totalSize": sum(e["size"] for e in entries),
        "treeDigest": "sha256:" + sha(lines.encode()),
        "files": entries,
    }
    manifest.update(overrides)
    return json.dumps(manifest, sort_keys=True, indent=2).encode()


def regular(name, data, mode=0o644):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = mode
    info.mtime = 1_700_000_000
    return info, data


def special(name, kind, linkname=""):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = linkname
    info.mtime = 1_700_000_000
    return info, None


def write(path, members, compress=True, fmt=tarfile.PAX_FORMAT):
    """members: (TarInfo, bytes or None) in order."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt, encoding="utf-8", errors="surrogateescape") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    raw = buffer.getvalue()
    with open(path, "wb") as out:
        out.write(gzip.compress(raw, mtime=0) if compress else raw)


GOOD = [("settings.yaml", b"level: info\n", "0644"), ("entities/customer.json", b'{"name": "text"}\n', "0644")]


def good_members(extra=(), files=GOOD, **overrides):
    members = [regular("confvault.json", manifest_for(files, **overrides))]
    members += [regular("config/" + p, d, 0o755 if m == "0755" else 0o644) for p, d, m in files]
    return members + list(extra)


def hostile(folder):
    os.makedirs(folder, exist_ok=True)
    one = [("a.json", b"{}\n", "0644")]
    cases = {
        "absolute-path": good_members([regular("/etc/cron.d/evil", b"x")]),
        "parent-component": good_members([regular("config/../../evil.sh", b"x")]),
        "empty-component": good_members([regular("config//evil.json", b"x")]),
        "dot-component": good_members([regular("config/entities/./x.json", b"x")]),
        "control-character": good_members([regular("config/bad\nname.json", b"x")]),
        "nul-in-manifest-path": [regular("confvault.json", manifest_for([("a\x00b", b"x", "0644")]))],
        "not-utf8": good_members([regular("config/caf\udce9.json", b"x")]),
        "name-too-long": good_members([regular("config/" + "d/" * 2100 + "x.json", b"x")]),
        "component-too-long": good_members([regular("config/" + "c" * 300 + ".json", b"x")]),
        "duplicate-path": good_members([regular("config/settings.yaml", b"level: info\n")]),
        "duplicate-after-normalisation": [
            regular("confvault.json", manifest_for([(unicodedata.normalize("NFC", "café.json"), b"1", "0644")])),
            regular("config/" + unicodedata.normalize("NFC", "café.json"), b"1"),
            regular("config/" + unicodedata.normalize("NFD", "café.json"), b"1"),
        ],
        "manifest-path-not-nfc": [
            regular("confvault.json", manifest_for([(unicodedata.normalize("NFD", "café.json"), b"1", "0644")])),
            regular("config/" + unicodedata.normalize("NFD", "café.json"), b"1"),
        ],
        "symlink": good_members([special("config/link.json", tarfile.SYMTYPE, "/etc/passwd")]),
        "hard-link": good_members([special("config/hard.json", tarfile.LNKTYPE, "config/settings.yaml")]),
        "character-device": good_members([special("config/tty", tarfile.CHRTYPE)]),
        "block-device": good_members([special("config/disk", tarfile.BLKTYPE)]),
        "fifo": good_members([special("config/pipe", tarfile.FIFOTYPE)]),
        "manifest-missing": [regular("config/settings.yaml", b"level: info\n")],
        "manifest-not-first": [regular("config/a.json", b"{}\n"), regular("confvault.json", manifest_for(one))],
        "manifest-twice": good_members([regular("confvault.json", manifest_for(GOOD))]),
        "manifest-not-json": [regular("confvault.json", b"{this is not json")],
        "manifest-other-format": [regular("confvault.json", manifest_for(one, format="helm-backup"))],
        "manifest-newer-version": [regular("confvault.json", manifest_for(one, formatVersion=2))],
        "manifest-wrong-tree-digest": good_members(treeDigest="sha256:" + "0" * 64),
        "file-missing": good_members(files=GOOD + [("views/list.json", b"[]\n", "0644")])[:-1],
        "extra-file": good_members([regular("config/extra.json", b"{}\n")]),
        "size-differs": [regular("confvault.json", manifest_for(one)), regular("config/a.json", b"{}\n\n")],
        "checksum-differs": [regular("confvault.json", manifest_for(one)), regular("config/a.json", b"[]\n")],
        "mode-differs": [regular("confvault.json", manifest_for(one)), regular("config/a.json", b"{}\n", 0o755)],
        "outside-config": good_members([regular("README.txt", b"hi\n")]),
        "folder-outside-config": good_members([special("zzz/", tarfile.DIRTYPE)]),
        "file-and-folder": [
            regular("confvault.json", manifest_for([("a", b"1", "0644"), ("a/b", b"2", "0644")])),
            regular("config/a", b"1"),
            regular("config/a/b", b"2"),
        ],
    }
    for name, members in cases.items():
        fmt = tarfile.GNU_FORMAT if name == "not-utf8" else tarfile.PAX_FORMAT
        write(os.path.join(folder, name + ".tar.gz"), members, fmt=fmt)
    # Damaged compression and data that is no archive at all.
    big = [("big.txt", os.urandom(200_000), "0644")]
    write(os.path.join(folder, "base.tar.gz"), good_members(files=GOOD + big))
    base = open(os.path.join(folder, "base.tar.gz"), "rb").read()
    open(os.path.join(folder, "truncated.tar.gz"), "wb").write(base[: len(base) // 2])
    corrupt = bytearray(base)
    for i in range(40, 60):  # inside the compressed manifest: the deflate stream breaks
        corrupt[i] ^= 0x55
    open(os.path.join(folder, "corrupt.tar.gz"), "wb").write(bytes(corrupt))
    # A tar cut exactly after its last entry: libarchive alone would take it for a complete one.
    whole = io.BytesIO()
    with tarfile.open(fileobj=whole, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in good_members():
            tar.addfile(info, io.BytesIO(data))
    raw = whole.getvalue()
    end = len(raw.rstrip(b"\0"))
    end += -end % 512
    open(os.path.join(folder, "end-marker-missing.tar.gz"), "wb").write(gzip.compress(raw[:end], mtime=0))
    open(os.path.join(folder, "not-an-archive.tar.gz"), "wb").write(b"PK\x03\x04 this is a zip, or pretends to be" * 40)
    os.remove(os.path.join(folder, "base.tar.gz"))


def bomb(path, size, mode):
    """A gzip'd tar of one entry of `size` zeros, about size/1000 bytes on disk, written in a moment.

    Deflate blocks of zeros ended by a full flush are identical, so one is compressed and repeated.
    The stream has no end and no trailer: a reader that does not stop at its limit reads all of it
    and then reports truncation.
    """
    members = []
    if mode == "manifest":
        members.append(regular("confvault.json", manifest_for([("zeros.bin", b"\0" * (1 << 20), "0644")])))
    header = b""
    for info, data in members:
        header += info.tobuf(tarfile.PAX_FORMAT) + data + b"\0" * (-len(data) % 512)
    entry = tarfile.TarInfo("config/zeros.bin" if mode == "manifest" else "zeros.bin")
    entry.size = size
    entry.mtime = 1_700_000_000
    header += entry.tobuf(tarfile.PAX_FORMAT)
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = b"\0" * (1 << 20)
    with open(path, "wb") as out:
        out.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03")
        out.write(compressor.compress(header) + compressor.flush(zlib.Z_FULL_FLUSH))
        block = compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
        assert block == compressor.compress(zeros) + compressor.flush(zlib.Z_FULL_FLUSH)
        out.write(block * (size // len(zeros)))


def folder_files(source):
    """(relative path, bytes, mode string) for every file below `source`, in path byte order."""
    files = []
    for root, _, names in os.walk(source):
        for name in names:
            full = os.path.join(root, name)
            rel = os.path.relpath(full, source).replace(os.sep, "/")
            mode = "0755" if os.stat(full).st_mode & 0o111 else "0644"
            files.append((rel, open(full, "rb").read(), mode))
    return sorted(files, key=lambda f: f[0].encode())


def tarfile_archive(source, out, fmt):
    formats = {"ustar": tarfile.USTAR_FORMAT, "pax": tarfile.PAX_FORMAT, "gnu": tarfile.GNU_FORMAT}
    files = folder_files(source)
    with tarfile.open(out, "w", format=formats[fmt]) as tar:
        info, data = regular("confvault.json", manifest_for(files, app=None, environment=None))
        tar.addfile(info, io.BytesIO(data))
        for rel, _, _ in files:
            tar.add(os.path.join(source, rel), arcname="config/" + rel)


def write_manifest(source, out):
    open(out, "wb").write(manifest_for(folder_files(source), app=None, environment=None))


def extract(path, folder):
    with tarfile.open(path) as tar:
        tar.extractall(folder, filter="tar")


if __name__ == "__main__":
    command, args = sys.argv[1], sys.argv[2:]
    if command == "hostile":
        hostile(args[0])
    elif command == "bomb":
        bomb(args[0], int(args[1]), args[2])
    elif command == "tarfile":
        tarfile_archive(args[0], args[1], args[2])
    elif command == "manifest":
        write_manifest(args[0], args[1])
    elif command == "extract":
        extract(args[0], args[1])
    else:
        sys.exit(__doc__)
