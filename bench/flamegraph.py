#!/usr/bin/env python3
"""Flame graph of a `perf script` dump: folds each sample's stack, then draws one SVG (root at the
bottom, each frame as wide as the share of samples it was on the stack for).

    perf record -F 999 --call-graph dwarf -p PID -o perf.data -- sleep 5
    perf script -i perf.data | bench/flamegraph.py --title "HTTP/1.1" > flame.svg

`bench/profile.sh` runs the whole thing against the bench's upstream. Names are shortened for
reading: template arguments, parameter lists and clone suffixes are dropped.
"""
import argparse
import html
import re
import sys
from collections import defaultdict


def short_name(sym):
    sym = re.sub(r"\s*\[clone [^\]]*\]", "", sym)
    out, depth = [], 0
    for ch in sym:  # drop <...> and (...) nests
        if ch in "<(":
            depth += 1
        elif ch in ">)":
            depth = max(0, depth - 1)
        elif depth == 0:
            out.append(ch)
    name = "".join(out).strip()
    return re.sub(r"^(portico|boost)::", "", name) or sym[:60]


def folded_stacks(lines):
    """{tuple of frames, root first: samples}."""
    stacks = defaultdict(int)
    frames = []
    in_sample = False
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            if frames:
                stacks[tuple(reversed(frames))] += 1
            frames, in_sample = [], False
            continue
        if not line.startswith((" ", "\t")):
            in_sample = True  # the sample's header: comm pid time event
            continue
        if in_sample:
            parts = line.strip().split(None, 1)
            if len(parts) < 2:
                continue
            sym_dso = parts[1].rsplit(" (", 1)
            sym = re.sub(r"\+0x[0-9a-f]+$", "", sym_dso[0])
            name = "[unknown]" if sym == "[unknown]" else short_name(sym)
            if len(sym_dso) > 1 and "kernel" in sym_dso[1]:
                name = "k:" + name  # the kernel's frames, told apart for the self-time list
            frames.append(name)
    if frames:
        stacks[tuple(reversed(frames))] += 1
    return stacks


def build_tree(stacks):
    root = {"name": "all", "value": 0, "children": {}}
    for stack, n in stacks.items():
        root["value"] += n
        node = root
        for frame in stack:
            node = node["children"].setdefault(frame, {"name": frame, "value": 0, "children": {}})
            node["value"] += n
    return root


def colour(name):
    h = sum(map(ord, name)) % 60
    if name.startswith("k:"):
        return f"rgb(230,{120 + h},{60})"
    if name.startswith("asio::"):
        return f"rgb({200 + h // 2},{170 + h},90)"
    return f"rgb(240,{90 + h},{50 + h // 2})"


def render(root, title, width=1400, row=16, min_px=0.4):
    total = root["value"] or 1
    rects = []

    def depth_of(node):
        return 1 + max((depth_of(c) for c in node["children"].values()), default=0)

    depth = depth_of(root)
    height = depth * row + 50

    def walk(node, x, level):
        w = node["value"] / total * (width - 20)
        if w < min_px:
            return
        y = height - 20 - (level + 1) * row
        pct = 100.0 * node["value"] / total
        label = html.escape(node["name"].removeprefix("k:"))
        text = label if w > 40 else ""
        rects.append(f'<g><title>{label} ({node["value"]} samples, {pct:.2f}%)</title>'
                     f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row - 1}" '
                     f'fill="{colour(node["name"])}"/>'
                     f'<text x="{x + 3:.1f}" y="{y + row - 4}"'
                     f'>{text[: int(w / 7)]}</text></g>')
        cx = x
        for child in sorted(node["children"].values(), key=lambda c: c["name"]):
            walk(child, cx, level + 1)
            cx += child["value"] / total * (width - 20)

    walk(root, 10, 0)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
            f'font-family="monospace" font-size="11">'
            f'<rect width="100%" height="100%" fill="#fdfdf8"/>'
            f'<text x="10" y="20" font-size="14">{html.escape(title)} ({total} samples; '
            f'hover a frame for its share)</text>' + "".join(rects) + "</svg>\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", nargs="?", help="perf script output (default: stdin)")
    ap.add_argument("--title", default="flame graph")
    ap.add_argument("--top", type=int, default=0,
                    help="also print to stderr the kernel's share and the N user-space frames "
                         "with the most samples of their own (self time)")
    args = ap.parse_args()
    src = open(args.input, errors="replace") if args.input else sys.stdin
    stacks = folded_stacks(src)
    if not stacks:
        sys.exit("flamegraph: no samples with stacks in the input")
    root = build_tree(stacks)
    sys.stdout.write(render(root, args.title))
    if args.top:
        own = defaultdict(int)
        for stack, n in stacks.items():
            own[stack[-1]] += n
        kernel = sum(n for name, n in own.items() if name.startswith("k:"))
        total = root["value"]
        print(f"{100.0 * kernel / total:6.2f}%  (kernel, all frames)", file=sys.stderr)
        users = [(name, n) for name, n in own.items() if not name.startswith("k:")]
        for name, n in sorted(users, key=lambda kv: -kv[1])[: args.top]:
            print(f"{100.0 * n / total:6.2f}%  {name}", file=sys.stderr)

if __name__ == "__main__":
    main()
