"""Writes archives for the end-to-end tests: hostile ones (one per refusal rule) and ones by other writers.

Usage:
  archives.py hostile DIR          one archive per case, named <case>.tar.gz whatever its compression
  archives.py damaged DIR          archives whose only fault is a damaged compression check, with our
                                    manifest and (<name>-plain.tar.gz) without
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
import itertools
import json
import lzma
import os
import stat
import struct
import subprocess
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


def tar_bytes(members, fmt=tarfile.PAX_FORMAT):
    """A whole tar by Python's tarfile. members: (TarInfo, bytes or None) in order."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt, encoding="utf-8", errors="surrogateescape") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def write(path, members, compress=True, fmt=tarfile.PAX_FORMAT):
    """members: (TarInfo, bytes or None) in order."""
    raw = tar_bytes(members, fmt)
    with open(path, "wb") as out:
        out.write(gzip.compress(raw, mtime=0) if compress else raw)


GOOD = [("settings.yaml", b"level: info\n", "0644"), ("entities/customer.json", b'{"name": "text"}\n', "0644")]


def good_members(extra=(), files=GOOD, **overrides):
    members = [regular("confvault.json", manifest_for(files, **overrides))]
    members += [regular("config/" + p, d, 0o755 if m == "0755" else 0o644) for p, d, m in files]
    return members + list(extra)


# Hand-made tar headers, for what tarfile will not write: NULs in names, sparse maps, volume headers.

BLOCK = 512


def padded(data):
    """data followed by zeros up to a whole number of 512-byte blocks."""
    return data + b"\0" * (-len(data) % BLOCK)


def octal(value, width):
    """A tar number field: zero-padded octal digits and a NUL."""
    return b"%0*o\0" % (width - 1, value)


def ustar_header(name, typeflag, size, mode=0o644, gnu=False, fields=None):
    """One 512-byte header with a correct checksum. name: str or bytes, up to 100 bytes.

    gnu: GNU's magic ("ustar  ") instead of POSIX's. fields: {offset: bytes} for the rest, e.g. GNU's sparse map.
    """
    name = name.encode() if isinstance(name, str) else name
    assert len(name) <= 100, name
    header = bytearray(BLOCK)
    header[0 : len(name)] = name
    header[100:108] = octal(mode, 8)
    header[108:116] = octal(0, 8)  # uid
    header[116:124] = octal(0, 8)  # gid
    header[124:136] = octal(size, 12)
    header[136:148] = octal(1_700_000_000, 12)
    header[156:157] = typeflag
    header[257:265] = b"ustar  \0" if gnu else b"ustar\x0000"
    for offset, value in (fields or {}).items():
        header[offset : offset + len(value)] = value
    header[148:156] = b" " * 8  # the checksum counts its own field as spaces
    header[148:156] = b"%06o\0 " % sum(header)
    return bytes(header)


def tar_entry(header, data=b""):
    """A header and its data, padded."""
    return header + padded(data)


def pax_record(key, value):
    """One pax record, "<length> <key>=<value>\\n", the length counting its own digits."""
    body = b" " + key + b"=" + value + b"\n"
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length += 1
    return str(length).encode() + body


def pax_header(records, typeflag=b"x", name="././@PaxHeader"):
    """A pax extended (x) or global (g) header entry holding records: (key bytes, value bytes)."""
    data = b"".join(pax_record(key, value) for key, value in records)
    return tar_entry(ustar_header(name, typeflag, len(data)), data)


def member_blocks(members, fmt=tarfile.PAX_FORMAT):
    """The blocks tarfile writes for members, without the end of the archive."""
    return b"".join(
        info.tobuf(fmt, "utf-8", "surrogateescape") + padded(data or b"") for info, data in members
    )


def tar_end(blocks):
    """blocks, then the two zero blocks that end an archive, padded to a 10 KiB record as tar does."""
    raw = blocks + b"\0" * (2 * BLOCK)
    return raw + b"\0" * (-len(raw) % tarfile.RECORDSIZE)


# Compression, and damage to its integrity checks alone.


def gzip_bytes(raw):
    return gzip.compress(raw, mtime=0)


def xz_bytes(raw):
    return lzma.compress(raw, format=lzma.FORMAT_XZ, check=lzma.CHECK_CRC64)


def zstd_bytes(raw):
    return subprocess.run(["zstd", "-q", "--check", "-c"], input=raw, capture_output=True, check=True).stdout


def flipped(data, start, end):
    """data with every bit of data[start:end] inverted."""
    data = bytearray(data)
    data[start:end] = bytes(byte ^ 0xFF for byte in data[start:end])
    return bytes(data)


def xz_check_offset(data):
    """Where the CRC64 check of the only block of an xz stream begins.

    A stream is: header (12 bytes), blocks, index, footer (12 bytes). The footer gives the index's size; a block
    is its header and compressed data, zero padding to a multiple of 4, then the check, so the check is the 8
    bytes just before the index. The index's record (unpadded size) must agree.
    """
    assert data[:6] == b"\xfd7zXZ\0" and data[7] == lzma.CHECK_CRC64 and data[-2:] == b"YZ"
    index = len(data) - 12 - (int.from_bytes(data[-8:-4], "little") + 1) * 4
    assert data[index : index + 2] == b"\x00\x01", "index indicator, one record"
    unpadded, shift, position = 0, 0, index + 2
    while True:  # a multibyte integer: 7 bits a byte, low first
        unpadded |= (data[position] & 0x7F) << shift
        shift, position = shift + 7, position + 1
        if data[position - 1] < 0x80:
            break
    block_without_check = unpadded - 8
    assert 12 + block_without_check + (-block_without_check % 4) + 8 == index
    return index - 8


def bad_checksums(raw):
    """raw compressed by gzip, xz and zstd, each with only its integrity check damaged."""
    xz = xz_bytes(raw)
    zstd = zstd_bytes(raw)
    assert zstd[:4] == b"\x28\xb5\x2f\xfd" and zstd[4] & 0x04, "one zstd frame with a content checksum"
    check = xz_check_offset(xz)
    return {
        "gzip-bad-crc": flipped(gzip_bytes(raw), -8, -4),  # CRC32 of the trailer
        "gzip-bad-length": flipped(gzip_bytes(raw), -4, None),  # ISIZE of the trailer
        "xz-bad-check": flipped(xz, check, check + 1),
        "zstd-bad-checksum": flipped(zstd, -4, None),  # the frame's content checksum
    }


# A gzip quine: a .gz file that decompresses to exactly itself (Russ Cox, "Zip Files All The Way Down").
#
# Deflate has two instructions we need: a stored block copies the next n bytes of the stream to the output
# ("literal n", written Ln), and a back-reference repeats the last n bytes of the output ("repeat n", Rn).
# With every instruction in 5 bytes (the final repeat in what it needs), the program in `quine_deflate`
# prints its own text, header P before and trailer S after included. The trailer holds the CRC32 of the
# output, that is of the file itself: CRC32 is affine over GF(2), so the CRC that reproduces itself is found
# by solving 32 equations.

LENGTH_BASE = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195]
LENGTH_BASE += [227, 258]
LENGTH_EXTRA = [0] * 8 + [1] * 4 + [2] * 4 + [3] * 4 + [4] * 4 + [5] * 4 + [0]
DISTANCE_BASE = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049]
DISTANCE_BASE += [3073, 4097, 6145, 8193, 12289, 16385, 24577]
DISTANCE_EXTRA = [0, 0] + [bits // 2 for bits in range(28)]


class Bits:
    """Deflate's bit order: fields from the low bit up, Huffman codes from their top bit."""

    def __init__(self):
        self.value, self.count = 0, 0

    def put(self, value, width):
        self.value |= value << self.count
        self.count += width

    def huffman(self, code, width):
        self.put(int(format(code, f"0{width}b")[::-1], 2), width)

    def symbol(self, symbol):
        """A length or end-of-block symbol (256 to 287) in the fixed Huffman code."""
        if symbol < 280:
            self.huffman(symbol - 256, 7)
        else:
            self.huffman(0xC0 + symbol - 280, 8)

    def copy(self, length, distance):
        code = max(i for i, base in enumerate(LENGTH_BASE) if base <= length)
        self.symbol(257 + code)
        self.put(length - LENGTH_BASE[code], LENGTH_EXTRA[code])
        code = max(i for i, base in enumerate(DISTANCE_BASE) if base <= distance)
        self.huffman(code, 5)
        self.put(distance - DISTANCE_BASE[code], DISTANCE_EXTRA[code])

    def fixed_block(self, lengths, distance):
        """A block in the fixed Huffman code (not final) of copies of `lengths` at `distance`."""
        self.put(0, 1)
        self.put(1, 2)
        for length in lengths:
            self.copy(length, distance)
        self.symbol(256)

    def bytes(self):
        return self.value.to_bytes((self.count + 7) // 8, "little")


def literal_op(n):
    """Ln in 5 bytes: a stored block's header (not final, type 00, padded to the byte) and its length."""
    return b"\x00" + struct.pack("<HH", n, n ^ 0xFFFF)


def splits(total, parts):
    """Every way to write total as `parts` copy lengths (3 to 258 each)."""
    if parts == 1:
        if 3 <= total <= 258:
            yield (total,)
        return
    for first in range(3, total - 3 * (parts - 1) + 1):
        for rest in splits(total - first, parts - 1):
            yield (first,) + rest


def repeat_op(n, size=5, final=False):
    """Rn in exactly `size` bytes, or None: fixed-Huffman blocks of copies at distance n that add up to n.

    A block costs 10 bits (header, end-of-block) and a copy 12 bits or more: the search tries up to four copies,
    split over blocks in every way, and fills what is left with empty blocks.
    """
    for parts in range(1, 5):
        for lengths in splits(n, parts):
            for cuts in itertools.product((False, True), repeat=parts - 1):
                blocks = [[lengths[0]]]
                for cut, length in zip(cuts, lengths[1:]):
                    if cut:
                        blocks.append([])
                    blocks[-1].append(length)
                bits, starts = Bits(), []
                for block in blocks:
                    starts.append(bits.count)
                    bits.fixed_block(block, n)
                spare = size * 8 - bits.count
                if spare < 0 or spare % 10:
                    continue
                for _ in range(spare // 10):
                    starts.append(bits.count)
                    bits.fixed_block([], n)
                if final:
                    bits.value |= 1 << starts[-1]  # BFINAL of the last block
                return bits.bytes()
    return None


def quine_deflate(header, trailer):
    """Deflate data that prints header, itself, then trailer. Cox's program, each op 5 bytes but the last."""
    L, R, p, k = literal_op, repeat_op, len(header), 5
    last = next(op for size in range(5, 12) if (op := repeat_op(size + len(trailer), size, final=True)))
    s = len(last) + len(trailer)
    program = [
        L(p + k), header, L(p + k),
        R(p + k),
        L(k), R(p + k),
        L(k), L(k),
        L(4 * k), R(p + k), L(k), L(k), L(4 * k),
        R(4 * k),
        L(4 * k), R(4 * k), L(4 * k), R(4 * k), L(4 * k),
        R(4 * k),
        L(4 * k), R(4 * k), L(0), L(0), L(s),
        R(4 * k),
        L(0), L(0),
        L(s), last, trailer,
        last,
    ]  # fmt: skip
    assert None not in program, "an op did not fit in its size"
    return b"".join(program)


def solve_gf2(columns, target):
    """x such that the XOR of columns[i] over the bits i set in x is target (32-bit integers), or None."""
    rows = []  # (top bit, row, which columns make it)
    for i, column in enumerate(columns):
        made = 1 << i
        for top, row, row_made in rows:
            if column >> top & 1:
                column, made = column ^ row, made ^ row_made
        if column:
            rows.append((column.bit_length() - 1, column, made))
    x = 0
    for top, row, row_made in rows:
        if target >> top & 1:
            target, x = target ^ row, x ^ row_made
    return x if target == 0 else None


def gzip_quine():
    """A gzip file whose decompressed content is the file itself.

    The header carries a file name only to reach a length whose repeat fits in 5 bytes. The file is
    image(crc) for the crc that solves crc32(image(crc)) == crc, one mtime after another until one solves.
    """
    name = next(b"q" * n for n in range(20) if repeat_op(10 + n + 1 + 5))
    for mtime in range(1000):
        header = b"\x1f\x8b\x08\x08" + struct.pack("<I", mtime) + b"\x00\xff" + name + b"\x00"  # FNAME, OS unknown
        size = len(header) + len(quine_deflate(header, bytes(8))) + 8

        def image(crc):
            trailer = struct.pack("<II", crc, size)
            return header + quine_deflate(header, trailer) + trailer

        zero = zlib.crc32(image(0))
        columns = [zlib.crc32(image(1 << bit)) ^ zero ^ (1 << bit) for bit in range(32)]
        crc = solve_gf2(columns, zero)
        if crc is not None:
            data = image(crc)
            assert zlib.decompress(data, 31) == data
            return data
    raise AssertionError("no mtime gave a solvable CRC")


def manifest_blocks(files, fmt=tarfile.PAX_FORMAT):
    """Our manifest for files as the first entry, without the end of the archive."""
    return member_blocks([regular("confvault.json", manifest_for(files))], fmt)


def listed(*paths):
    """A good archive with more files below config/, listed in the manifest too."""
    return good_members(files=GOOD + [(path, b"x", "0644") for path in paths])


def manifest_text(text):
    """A good archive whose manifest is `text` as given."""
    return [regular("confvault.json", text)] + good_members()[1:]


def duplicate_key_manifest():
    """The good manifest with "app" twice: a parser that keeps the last value sees nothing wrong."""
    text = manifest_for(GOOD)
    line = b'  "app": "inventory",\n'
    assert text.count(line) == 1
    return text.replace(line, b'  "app": "payroll",\n' + line)


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
        "c1-control": listed("a\u0085b.json"),
        "bidi-override": listed("evil\u202egnp.json"),
        "backslash": listed("a\\b.json"),
        "path-over-1024": listed("abcdefghi/" * 110 + "x.json"),  # 1,113 bytes with config/
        "case-fold-duplicate": listed("README.md", "readme.md"),
        "manifest-utf16": manifest_text(manifest_for(GOOD).decode().encode("utf-16")),  # with its BOM
        "manifest-bom": manifest_text(b"\xef\xbb\xbf" + manifest_for(GOOD)),
        "manifest-duplicate-keys": manifest_text(duplicate_key_manifest()),
        "manifest-bad-app-name": good_members(app="../../etc"),
        "manifest-bad-environment-name": good_members(environment="Prod\u001b[2J"),
    }
    for name, members in cases.items():
        fmt = tarfile.GNU_FORMAT if name == "not-utf8" else tarfile.PAX_FORMAT
        write(os.path.join(folder, name + ".tar.gz"), members, fmt=fmt)
    # Headers tarfile does not write, made by hand. The manifest lists what the entry holds, so that (but for
    # sparse-pax, whose stored name differs) a reader that missed the trick would accept the archive.
    gnu = tarfile.GNU_FORMAT
    long_name = "a" * 120
    long_link = b"config/" + long_name.encode() + b"\0evil\0"  # a C string reader sees config/aaa...a
    sparse_data = b"\0" * 3584 + b"z" * 512
    crafted = {
        "nul-in-pax-path": manifest_blocks(one)
        + pax_header([(b"path", b"config/a.json\0../../evil")])
        + tar_entry(ustar_header("config/a.json", b"0", 3), b"{}\n"),
        "nul-in-gnu-longname": manifest_blocks([(long_name, b"{}\n", "0644")], gnu)
        + tar_entry(ustar_header("././@LongLink", b"L", len(long_link), mode=0, gnu=True), long_link)
        + tar_entry(ustar_header(("config/" + long_name)[:100], b"0", 3, gnu=True), b"{}\n"),
        # GNU's old sparse format: 4096 bytes, all hole (one region: offset 4096, 0 bytes), nothing stored.
        "sparse-all-hole": manifest_blocks([("a.json", b"\0" * 4096, "0644")], gnu)
        + ustar_header(
            "config/a.json", b"S", 0, gnu=True, fields={386: octal(4096, 12) + octal(0, 12), 483: octal(4096, 12)}
        ),
        # GNU's pax sparse format 1.0: the map ("1 region: offset 3584, 512 bytes") leads the data.
        "sparse-pax": manifest_blocks([("a.json", sparse_data, "0644")])
        + pax_header(
            [
                (b"GNU.sparse.major", b"1"),
                (b"GNU.sparse.minor", b"0"),
                (b"GNU.sparse.name", b"config/a.json"),
                (b"GNU.sparse.realsize", b"4096"),
            ]
        )
        + tar_entry(ustar_header("config/GNUSparseFile.0/a.json", b"0", 1024), padded(b"1\n3584\n512\n") + b"z" * 512),
        # GNU tar applies a global path to every entry that follows: all three become config/evil.json.
        "pax-global-header": pax_header([(b"path", b"config/evil.json")], typeflag=b"g")
        + member_blocks(good_members()),
        "gnu-volume-header": tar_entry(ustar_header("Volume 1", b"V", 0, gnu=True))
        + member_blocks(good_members(), gnu),
        # A continuation of config/a.json from a previous volume: from byte 0 of 3, so all of it.
        "gnu-multivolume": manifest_blocks(one, gnu)
        + tar_entry(
            ustar_header("config/a.json", b"M", 3, gnu=True, fields={369: octal(0, 12), 483: octal(3, 12)}), b"{}\n"
        ),
    }
    for name, blocks in crafted.items():
        open(os.path.join(folder, name + ".tar.gz"), "wb").write(gzip_bytes(tar_end(blocks)))
    # More after the end of a good archive, and compression around compression.
    good = tar_bytes(good_members())
    compressed = {
        "second-tar-after-end": gzip_bytes(good + tar_bytes([regular("config/evil.json", b"{}\n")])),
        "garbage-after-end": gzip_bytes(good + b"X" * 100),
        "double-gzip": gzip_bytes(gzip_bytes(good)),
        "gzip-in-xz": xz_bytes(gzip_bytes(good)),
        "gzip-quine": gzip_quine(),
        **bad_checksums(good),
    }
    for name, data in compressed.items():
        open(os.path.join(folder, name + ".tar.gz"), "wb").write(data)
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


def damaged(folder):
    """Archives whose only fault is the integrity check of their compression: with our manifest, and
    `-plain` ones of two files and no manifest."""
    os.makedirs(folder, exist_ok=True)
    manifest = bad_checksums(tar_bytes(good_members()))
    plain = bad_checksums(tar_bytes([regular(path, data) for path, data, _ in GOOD]))
    files = {name: manifest[name] for name in ("xz-bad-check", "zstd-bad-checksum", "gzip-bad-length")}
    files.update({name + "-plain": plain[name] for name in ("gzip-bad-crc", "xz-bad-check", "zstd-bad-checksum")})
    for name, data in files.items():
        open(os.path.join(folder, name + ".tar.gz"), "wb").write(data)


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
    elif command == "damaged":
        damaged(args[0])
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
