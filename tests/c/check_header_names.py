#!/usr/bin/env python3
"""Header hygiene: every name include/signalr.h declares (macros, types, enumerators, functions)
carries the signalr_ / SIGNALR_ prefix, so including it never clashes with the user's names."""
import re
import sys

text = open(sys.argv[1], encoding="utf-8").read()
text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
text = re.sub(r"//[^\n]*", "", text)
names = set()
code_lines = []
for line in text.splitlines():
    m = re.match(r"\s*#\s*define\s+(\w+)", line)
    if m:
        names.add(m.group(1))
    elif not line.lstrip().startswith("#"):
        code_lines.append(line)
code = "\n".join(code_lines)
names.update(re.findall(r"\b(?:enum|struct|union)\s+(\w+)", code))
names.update(re.findall(r"\(\s*\*\s*(\w+)\s*\)\s*\(", code))          # callback typedefs
names.update(re.findall(r"typedef[^;(]*?\b(\w+)\s*;", code))            # plain typedefs
names.update(re.findall(r"^\s*(\w+)\s*(?:=[^,]*)?,?\s*$", code, re.M))  # enumerators
names.update(re.findall(r"\b(\w+)\s*\([^*]", code))                     # functions
allowed = {"SIGNALR_H", "extern", "if", "defined", "sizeof"}
bad = sorted(n for n in names
             if not (n.startswith("signalr_") or n.startswith("SIGNALR_")) and n not in allowed
             and not re.fullmatch(r"u?int\d+_t|size_t|void|char|bool|const", n))
if bad:
    print("include/signalr.h declares names without the signalr_/SIGNALR_ prefix: " + ", ".join(bad))
    sys.exit(1)
print(f"header names: {len(names)} checked, all prefixed")
