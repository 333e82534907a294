#!/usr/bin/env python3
"""Which crates' code a running process holds in memory.

    scripts/resident-code.py <pid> [top]

Reads the process's pages of its own executable that are resident
(/proc/<pid>/pagemap, bit 63) and shares each page between the functions
and data whose symbols overlap it (`nm`, demangled), summed by the crate
that names the symbol (the first path segment; `<T as Trait>` counts for
the crate of T). Prints KiB per crate, largest first, and the total.

It says where an idle server's file-backed resident memory comes from:
the kernel maps pages around each one touched (fault-around), so code
spread thinly over the binary costs far more than its own size.
"""

import bisect
import collections
import os
import re
import struct
import subprocess
import sys

PAGE = os.sysconf("SC_PAGE_SIZE")


def segments(binary):
    """LOAD segments as (file offset, virtual address, file size)."""
    out = subprocess.run(["readelf", "-lW", binary], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] == "LOAD":
            found.append((int(parts[1], 16), int(parts[2], 16), int(parts[4], 16)))
    return found


def symbols(binary):
    """Sorted (address, size, crate) of every sized symbol."""
    out = subprocess.run(
        ["nm", "-C", "--defined-only", "-S", "-n", binary], capture_output=True, text=True, check=True
    ).stdout
    found = []
    for line in out.splitlines():
        parts = line.split(" ", 3)
        if len(parts) < 4:
            continue
        try:
            address, size = int(parts[0], 16), int(parts[1], 16)
        except ValueError:
            continue
        if size:
            found.append((address, size, crate_of(parts[3])))
    return found


def crate_of(name):
    # Glue the compiler makes for a type counts for the type's crate.
    for glue in ("core::ptr::drop_in_place<", "core::ptr::drop_glue<"):
        if name.startswith(glue):
            name = name[len(glue):]
    name = name.lstrip("<&*").removeprefix("mut ").removeprefix("dyn ").lstrip("(<&")
    match = re.match(r"[A-Za-z_][A-Za-z0-9_]*", name)
    if not match:
        return "(other)"
    first = match.group(0)
    return first if "::" in name[: match.end() + 2] else "(C and unnamed)"


def sections(binary):
    """Sorted (address, end, name) of the allocated sections."""
    out = subprocess.run(["readelf", "-SW", binary], capture_output=True, text=True, check=True).stdout
    found = []
    for line in out.splitlines():
        match = re.match(r"\s*\[\s*\d+\]\s+(\S+)\s+\S+\s+([0-9a-f]+)\s+[0-9a-f]+\s+([0-9a-f]+)\s+\S+\s+(\S*A\S*)", line)
        if match and int(match.group(2), 16):
            start = int(match.group(2), 16)
            found.append((start, start + int(match.group(3), 16), match.group(1)))
    return sorted(found)


def resident_pages(pid, binary):
    """ELF virtual addresses of the binary's resident pages."""
    real = os.path.realpath(binary)
    loads = segments(real)
    pages = []
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/pagemap", "rb") as pagemap:
        for line in maps:
            parts = line.split()
            if len(parts) < 6 or os.path.realpath(parts[5]) != real:
                continue
            start, end = (int(x, 16) for x in parts[0].split("-"))
            offset = int(parts[2], 16)
            seg = next((s for s in loads if s[0] <= offset < s[0] + max(s[2], PAGE)), None)
            if seg is None:
                continue
            pagemap.seek(start // PAGE * 8)
            entries = pagemap.read((end - start) // PAGE * 8)
            for i in range((end - start) // PAGE):
                (entry,) = struct.unpack_from("<Q", entries, i * 8)
                if entry >> 63:
                    pages.append(offset + i * PAGE - seg[0] + seg[1])
    return pages


def main():
    pid, binary = sys.argv[1], f"/proc/{sys.argv[1]}/exe"
    top = int(sys.argv[2]) if len(sys.argv) > 2 else 25
    binary = os.readlink(binary)
    syms = symbols(binary)
    starts = [s[0] for s in syms]
    by_crate = collections.Counter()
    pages = resident_pages(pid, binary)
    by_section = collections.Counter()
    secs = sections(binary)
    for page in pages:
        name = next((n for a, e, n in secs if a <= page < e), "(other)")
        by_section[name] += PAGE
        if name not in (".text", ".rodata"):
            continue
        covered = 0
        i = max(bisect.bisect_right(starts, page) - 1, 0)
        # Symbols may start before the page and reach into it.
        while i > 0 and syms[i - 1][0] + syms[i - 1][1] > page and page - syms[i - 1][0] < 1 << 20:
            i -= 1
        while i < len(syms) and syms[i][0] < page + PAGE:
            address, size, crate = syms[i]
            overlap = min(address + size, page + PAGE) - max(address, page)
            if overlap > 0:
                by_crate[crate] += overlap
                covered += overlap
            i += 1
        if covered < PAGE:
            by_crate["(between symbols)"] += PAGE - covered
    total = len(pages) * PAGE
    print(f"resident pages of {binary}: {total / 1024:.0f} KiB")
    print("by section: " + ", ".join(f"{n} {v / 1024:.0f} KiB" for n, v in by_section.most_common()))
    for crate, size in by_crate.most_common(top):
        print(f"{size / 1024:10.0f} KiB  {100 * size / total:5.1f} %  {crate}")


if __name__ == "__main__":
    main()
