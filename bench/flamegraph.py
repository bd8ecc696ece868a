"""Reading py-spy's collapsed stacks: a text summary of the hot spots, and a flame graph.

A collapsed stack is one line, `outermost;...;innermost COUNT`, each frame
`function (file:line)`. Frames are merged by function and file, line numbers
dropped, so one function is one box however many lines of it were sampled.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle

Stacks = Counter[tuple[str, ...]]

_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")
_STDLIB = re.compile(r"/lib/python3\.\d+/")
TOP = 25
# Boxes narrower than this share of all samples are not drawn.
_MIN_WIDTH = 0.004


def read_collapsed(path: Path) -> Stacks:
    stacks: Stacks = Counter()
    for line in path.read_text(errors="replace").splitlines():
        frames, _, count = line.rpartition(" ")
        if frames and count.isdigit():
            stacks[tuple(frames.split(";"))] += int(count)
    return stacks


def short_file(file: str, tree: Path) -> str:
    """A frame's file, relative to the project tree, site-packages or the stdlib."""
    if "site-packages/" in file:
        return file.split("site-packages/", 1)[1]
    if match := _STDLIB.search(file):
        return file[match.end() :]
    path = Path(file)
    if path.is_absolute() and path.is_relative_to(tree):
        return str(path.relative_to(tree))
    return file


def package(file: str, tree: Path) -> str:
    """Who a frame's code belongs to: a project package, a library, or the stdlib."""
    if "site-packages/" in file:
        parts = short_file(file, tree).split("/")
        return "/".join(parts[:2]) if len(parts) > 2 else parts[0]
    if _STDLIB.search(file) or file.startswith("<frozen"):
        first = short_file(file, tree).split("/")[0]
        return "stdlib/asyncio" if first == "asyncio" else "stdlib"
    parts = short_file(file, tree).split("/")
    return "/".join(parts[:2]) if len(parts) > 2 else parts[0]


def is_project(file: str, tree: Path) -> bool:
    path = Path(file)
    return path.is_absolute() and path.is_relative_to(tree) and "site-packages" not in file


def frame_name(frame: str, tree: Path) -> tuple[str, str, bool]:
    """(`function (short file)`, package, whether it is the project's) of one frame."""
    match = _FRAME.match(frame)
    if not match:
        return frame, "other", False
    file = match["file"]
    name = f"{match['function']} ({short_file(file, tree)})"
    return name, package(file, tree), is_project(file, tree)


def _percent(part: int, whole: int) -> str:
    return f"{100 * part / whole:5.1f}%" if whole else "  0.0%"


def summarise(stacks: Stacks, tree: Path, title: str) -> str:
    """Where the samples are: by function (own time and with callees) and by package."""
    total = sum(stacks.values())
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    package_own: Counter[str] = Counter()
    package_inclusive: Counter[str] = Counter()
    project: Counter[str] = Counter()
    for stack, count in stacks.items():
        frames = [frame_name(frame, tree) for frame in stack]
        if frames:
            own[frames[-1][0]] += count
            package_own[frames[-1][1]] += count
        for name in {name for name, _, _ in frames}:
            inclusive[name] += count
        for pkg in {pkg for _, pkg, _ in frames}:
            package_inclusive[pkg] += count
        for name in {name for name, _, ours in frames if ours}:
            project[name] += count
    lines = [f"{title}: {total} samples (CPU time; idle waiting is not sampled)", ""]
    sections: list[tuple[str, Counter[str]]] = [
        ("own time by package (where the CPU was)", package_own),
        ("samples with the package anywhere on the stack", package_inclusive),
        ("own time by function", own),
        ("time with callees by function", inclusive),
        ("the project's own functions, time with callees", project),
    ]
    for heading, counter in sections:
        lines.append(heading)
        lines += [f"  {_percent(n, total)}  {name}" for name, n in counter.most_common(TOP)]
        lines.append("")
    return "\n".join(lines)


@dataclass
class _Node:
    name: str
    package: str
    count: int = 0
    children: dict[str, _Node] = field(default_factory=dict)


def _tree_of(stacks: Stacks, tree: Path) -> _Node:
    root = _Node("all", "all")
    for stack, count in stacks.items():
        root.count += count
        node = root
        for frame in stack:
            name, pkg, _ = frame_name(frame, tree)
            node = node.children.setdefault(name, _Node(name, pkg))
            node.count += count
    return root


def draw(stacks: Stacks, path: Path, tree: Path, title: str) -> None:
    """An icicle-style flame graph (callers above callees), coloured by package."""
    root = _tree_of(stacks, tree)
    total = max(root.count, 1)
    boxes: list[tuple[float, int, float, _Node]] = []

    def place(node: _Node, x: float, depth: int) -> None:
        width = node.count / total
        if width < _MIN_WIDTH:
            return
        boxes.append((x, depth, width, node))
        for child in sorted(node.children.values(), key=lambda c: -c.count):
            place(child, x, depth + 1)
            x += child.count / total

    place(root, 0.0, 0)
    depth = max((d for _, d, _, _ in boxes), default=0) + 1
    packages = sorted({node.package for *_, node in boxes})
    colours = plt.get_cmap("tab20")
    colour_of = {pkg: colours(i % 20) for i, pkg in enumerate(packages)}
    figure, axes = plt.subplots(figsize=(18, 1.5 + 0.22 * depth))
    for x, level, width, node in boxes:
        axes.add_patch(
            Rectangle(
                (x, level),
                width,
                0.95,
                facecolor=colour_of[node.package],
                edgecolor="white",
                lw=0.3,
            )
        )
        characters = int(width * 260)
        if characters >= 4:
            label = node.name if len(node.name) <= characters else node.name[: characters - 1] + "…"
            axes.text(x + 0.002, level + 0.5, label, va="center", fontsize=6, clip_on=True)
    axes.set_xlim(0, 1)
    axes.set_ylim(depth, 0)
    axes.set_yticks([])
    axes.set_xlabel("share of samples")
    axes.set_title(f"{title}: {root.count} samples", fontsize=10)
    handles = [Rectangle((0, 0), 1, 1, facecolor=colour_of[p]) for p in packages]
    axes.legend(handles, packages, fontsize=6, loc="lower right", ncol=4)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
