// Hostile zip and tar archives for reader tests, built by Python's zipfile/tarfile and byte patches, never by our writer.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { hasCommand } from "./cli.js";

const run = promisify(execFile);

/** True when python3 (which builds these archives) is on PATH. */
export const hasPython = hasCommand("python3");

/** A hostile archive and what a reader must say about it. */
export interface HostileCase {
  kind: string;
  /** File name the archive is written under (a split set: the name of its first volume). */
  file: string;
  /** What the refusal message must contain: the entry (or volume) at fault. */
  names: string;
}

/** Every case the builder knows; the reader must refuse each with InputRefusedError naming `names`. */
export const HOSTILE_CASES: readonly HostileCase[] = [
  { kind: "zip-dotdot", file: "dotdot.zip", names: '"../evil.txt"' },
  { kind: "zip-inner-dotdot", file: "inner-dotdot.zip", names: '"ok/../../evil.txt"' },
  { kind: "zip-absolute", file: "absolute.zip", names: '"/etc/evil.txt"' },
  { kind: "zip-drive", file: "drive.zip", names: '"C:/evil.txt"' },
  { kind: "zip-backslash", file: "backslash.zip", names: '"a\\\\..\\\\evil.txt"' },
  { kind: "zip-control", file: "control.zip", names: '"bell\\u0007.txt"' },
  { kind: "zip-symlink", file: "symlink.zip", names: '"link": is a symbolic link' },
  { kind: "zip-chardev", file: "chardev.zip", names: '"tty": is a character device' },
  { kind: "zip-blockdev", file: "blockdev.zip", names: '"sda": is a block device' },
  { kind: "zip-fifo", file: "fifo.zip", names: '"pipe": is a FIFO' },
  { kind: "zip-duplicate", file: "duplicate.zip", names: '"a.txt": listed twice' },
  { kind: "zip-case", file: "case.zip", names: '"README.txt": differs only in case from "Readme.txt"' },
  { kind: "zip-file-folder", file: "file-folder.zip", names: '"a/b.txt": its folder "a" is also listed as a file' },
  { kind: "zip-file-dir-entry", file: "file-dir-entry.zip", names: '"a": is both a file and a folder' },
  { kind: "zip-truncated", file: "truncated.zip", names: "truncated.zip" },
  { kind: "zip-method", file: "method.zip", names: '"packed.bin": uses compression method 12' },
  { kind: "zip-encrypted", file: "encrypted.zip", names: '"secret.txt": is encrypted' },
  { kind: "zip-name-mismatch", file: "name-mismatch.zip", names: '"good.txt": its local header names "../d.txt"' },
  { kind: "zip-size-past-end", file: "size-past-end.zip", names: '"big.bin": declares' },
  { kind: "zip-reserved-name", file: "reserved.zip", names: '"CON.txt"' },
  { kind: "tar-dotdot", file: "dotdot.tar", names: '"../evil.txt"' },
  { kind: "tar-absolute", file: "absolute.tar", names: '"/etc/evil.txt"' },
  { kind: "tar-symlink", file: "symlink.tar", names: '"link": is a symbolic link' },
  { kind: "tar-hardlink", file: "hardlink.tar", names: '"hard": is a hard link' },
  { kind: "tar-chardev", file: "chardev.tar", names: '"tty": is a character device' },
  { kind: "tar-blockdev", file: "blockdev.tar", names: '"sda": is a block device' },
  { kind: "tar-fifo", file: "fifo.tar", names: '"pipe": is a FIFO' },
  { kind: "tar-duplicate", file: "duplicate.tar", names: '"a.txt": listed twice' },
  { kind: "tar-case", file: "case.tar", names: '"README.txt": differs only in case from "Readme.txt"' },
  { kind: "tar-file-folder", file: "file-folder.tar", names: '"a/b.txt": its folder "a" is also listed as a file' },
  { kind: "tar-file-dir-entry", file: "file-dir-entry.tar", names: '"a": is both a file and a folder' },
  { kind: "tar-truncated", file: "truncated.tar", names: '"big.bin"' },
  { kind: "tar-truncated-header", file: "truncated-header.tar", names: "inside the header" },
  { kind: "tar-bad-checksum", file: "bad-checksum.tar", names: "bad checksum" },
  { kind: "tar-pax-dotdot", file: "pax-dotdot.tar", names: '"../pax-evil.txt"' },
  { kind: "tar-gnu-longname-dotdot", file: "gnu-longname.tar", names: "/../../../evil.txt" },
  { kind: "tar-size-past-end", file: "size-past-end.tar", names: '"big.bin": declares' },
  { kind: "tar-control", file: "control.tar", names: '"nul\\u0001.txt"' },
  { kind: "split-missing-middle", file: "split.tar.001", names: "split.tar.002 is missing" },
];

// One function per kind; each writes the archive to `out`. Archives hold a harmless file too, so a
// reader cannot pass by refusing empty input.
const BUILDER = String.raw`
import io, struct, sys, tarfile, warnings, zipfile
warnings.simplefilter("ignore")
kind, out = sys.argv[1], sys.argv[2]

def zinfo(name, mode=0o100644):
    info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
    info.create_system = 3
    info.external_attr = mode << 16
    return info

def make_zip(entries, method=zipfile.ZIP_STORED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", method) as z:
        z.writestr(zinfo("ok.txt"), b"fine")
        for name, data, mode in entries:
            z.writestr(zinfo(name, mode), data)
    return bytearray(buf.getvalue())

def tinfo(name, type=tarfile.REGTYPE, size=0, linkname=""):
    info = tarfile.TarInfo(name)
    info.type = type
    info.size = size
    info.linkname = linkname
    info.mtime = 1700000000
    return info

def make_tar(entries, fmt=tarfile.USTAR_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as t:
        t.addfile(tinfo("ok.txt", size=4), io.BytesIO(b"fine"))
        for info, data in entries:
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    return bytearray(buf.getvalue())

def tar_file(name, data=b"data"):
    return (tinfo(name, size=len(data)), data)

def patch_all(data, old, new):
    assert old in data, old
    return bytearray(bytes(data).replace(old, new))

def checksum(block):
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)

Z = {
    "zip-dotdot": lambda: make_zip([("../evil.txt", b"x", 0o100644)]),
    "zip-inner-dotdot": lambda: make_zip([("ok/../../evil.txt", b"x", 0o100644)]),
    "zip-absolute": lambda: make_zip([("/etc/evil.txt", b"x", 0o100644)]),
    "zip-drive": lambda: make_zip([("C:/evil.txt", b"x", 0o100644)]),
    "zip-backslash": lambda: make_zip([("a\\..\\evil.txt", b"x", 0o100644)]),
    "zip-control": lambda: make_zip([("bell\x07.txt", b"x", 0o100644)]),
    "zip-symlink": lambda: make_zip([("link", b"/etc/passwd", 0o120777)]),
    "zip-chardev": lambda: make_zip([("tty", b"", 0o020644)]),
    "zip-blockdev": lambda: make_zip([("sda", b"", 0o060644)]),
    "zip-fifo": lambda: make_zip([("pipe", b"", 0o010644)]),
    "zip-duplicate": lambda: make_zip([("a.txt", b"1", 0o100644), ("a.txt", b"2", 0o100644)]),
    "zip-case": lambda: make_zip([("Readme.txt", b"1", 0o100644), ("README.txt", b"2", 0o100644)]),
    "zip-file-folder": lambda: make_zip([("a", b"1", 0o100644), ("a/b.txt", b"2", 0o100644)]),
    "zip-file-dir-entry": lambda: make_zip([("a", b"1", 0o100644), ("a/", b"", 0o040755)]),
    "zip-reserved-name": lambda: make_zip([("dir/CON.txt", b"1", 0o100644)]),
}

def zip_truncated():
    data = make_zip([("big.bin", bytes(range(256)) * 64, 0o100644)])
    return data[: len(data) // 2]

def zip_method():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(zinfo("ok.txt"), b"fine")
        z.writestr(zinfo("packed.bin"), b"abc" * 100, compress_type=zipfile.ZIP_BZIP2)
    return bytearray(buf.getvalue())

def zip_encrypted():
    data = make_zip([("secret.txt", b"x" * 10, 0o100644)])
    # Set the "encrypted" flag (bit 0) in the entry's local and central headers.
    name = b"secret.txt"
    i = data.find(name)
    data[i - 24] |= 1  # local header flag sits 24 bytes before the name (offset 6 of 30)
    j = data.find(name, i + 1)
    data[j - 38] |= 1  # central header flag sits 38 bytes before the name (offset 8 of 46)
    return data

def zip_name_mismatch():
    data = make_zip([("good.txt", b"x", 0o100644)])
    i = data.find(b"good.txt")
    data[i : i + 3] = b"../"  # local copy only; the central directory still says good.txt
    return data

def zip_size_past_end():
    data = make_zip([("big.bin", b"x" * 100, 0o100644)])
    name = b"big.bin"
    j = data.find(name, data.find(name) + 1)
    # Central header: compressed size at offset 20, uncompressed at 24 (46-byte fixed part).
    struct.pack_into("<II", data, j - 46 + 20, 10_000_000, 10_000_000)
    return data

Z.update({"zip-truncated": zip_truncated, "zip-method": zip_method, "zip-encrypted": zip_encrypted,
          "zip-name-mismatch": zip_name_mismatch, "zip-size-past-end": zip_size_past_end})

def dir_entry(name):
    return (tinfo(name, tarfile.DIRTYPE), None)

T = {
    "tar-dotdot": lambda: make_tar([tar_file("../evil.txt")]),
    "tar-absolute": lambda: make_tar([tar_file("/etc/evil.txt")]),
    "tar-symlink": lambda: make_tar([(tinfo("link", tarfile.SYMTYPE, linkname="/etc/passwd"), None)]),
    "tar-hardlink": lambda: make_tar([(tinfo("hard", tarfile.LNKTYPE, linkname="/etc/shadow"), None)]),
    "tar-chardev": lambda: make_tar([(tinfo("tty", tarfile.CHRTYPE), None)]),
    "tar-blockdev": lambda: make_tar([(tinfo("sda", tarfile.BLKTYPE), None)]),
    "tar-fifo": lambda: make_tar([(tinfo("pipe", tarfile.FIFOTYPE), None)]),
    "tar-duplicate": lambda: make_tar([tar_file("a.txt"), tar_file("a.txt")]),
    "tar-case": lambda: make_tar([tar_file("Readme.txt"), tar_file("README.txt")]),
    "tar-file-folder": lambda: make_tar([tar_file("a"), tar_file("a/b.txt")]),
    "tar-file-dir-entry": lambda: make_tar([tar_file("a"), dir_entry("a")]),
    "tar-control": lambda: make_tar([tar_file("nul\x01.txt")]),
    "tar-gnu-longname-dotdot": lambda: make_tar([tar_file("x" * 120 + "/../../../evil.txt")], tarfile.GNU_FORMAT),
}

def tar_truncated():
    data = make_tar([tar_file("big.bin", b"y" * 5000)])
    return data[: 512 * 4]

def tar_truncated_header():
    data = make_tar([tar_file("big.bin", b"y" * 500)])
    return data[: 512 * 2 + 100]

def tar_bad_checksum():
    data = make_tar([tar_file("second.txt")])
    i = data.find(b"second.txt")
    data[i] = ord("S")
    return data

def tar_pax_dotdot():
    info, data = tar_file("innocent.txt")
    info.pax_headers = {"path": "../pax-evil.txt"}
    return make_tar([(info, data)], tarfile.PAX_FORMAT)

def tar_size_past_end():
    data = make_tar([tar_file("big.bin", b"z" * 100)])
    i = data.find(b"big.bin")
    header = data[i : i + 512]
    header[124:136] = b"%011o\0" % 10_000_000
    checksum(header)
    data[i : i + 512] = header
    return data

T.update({"tar-truncated": tar_truncated, "tar-truncated-header": tar_truncated_header, "tar-bad-checksum": tar_bad_checksum,
          "tar-pax-dotdot": tar_pax_dotdot, "tar-size-past-end": tar_size_past_end})

if kind == "split-missing-middle":
    data = make_tar([tar_file("payload.bin", bytes(range(256)) * 1024)])
    third = -(-len(data) // 3)
    base = out[: -len(".001")]
    for n in (1, 3):
        with open("%s.%03d" % (base, n), "wb") as f:
            f.write(data[(n - 1) * third : n * third])
else:
    data = (Z.get(kind) or T[kind])()
    with open(out, "wb") as f:
        f.write(data)
`;

/** Builds the archive for `kind` in `dir`; returns its path (for a split set, its first volume). */
export async function buildHostile(dir: string, hostile: HostileCase): Promise<string> {
  const out = join(dir, hostile.file);
  await run("python3", ["-c", BUILDER, hostile.kind, out]);
  return out;
}

/** Builds a harmless archive with Python from `files` (name -> bytes), for reading archives we did not write. */
export async function buildWithPython(out: string, format: "zip" | "zip-deflate" | "tar" | "tar-gnu" | "tar-pax", files: Record<string, Buffer>): Promise<void> {
  const script = `
import io, json, sys, tarfile, zipfile
fmt, out, spec = sys.argv[1], sys.argv[2], json.loads(sys.stdin.read())
files = [(name, bytes.fromhex(hexdata)) for name, hexdata in spec]
if fmt.startswith("zip"):
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED if fmt == "zip-deflate" else zipfile.ZIP_STORED) as z:
        for name, data in files:
            z.writestr(name, data)
else:
    mode = {"tar": tarfile.USTAR_FORMAT, "tar-gnu": tarfile.GNU_FORMAT, "tar-pax": tarfile.PAX_FORMAT}[fmt]
    # The pax variant also carries a global ('g') header, which readers must skip.
    with tarfile.open(out, "w", format=mode, pax_headers={"comment": "global"} if fmt == "tar-pax" else None) as t:
        for name, data in files:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
`;
  const spec = JSON.stringify(Object.entries(files).map(([name, data]) => [name, data.toString("hex")]));
  await new Promise<void>((resolve, reject) => {
    const child = execFile("python3", ["-c", script, format, out], { maxBuffer: 64 << 20 }, (err) => (err ? reject(err) : resolve()));
    child.stdin?.end(spec);
  });
}
