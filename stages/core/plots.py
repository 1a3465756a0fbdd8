"""PNG figures people look at: confusion matrices and side-by-side sample sheets (rendered offline)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from stages.core.common.classes import CLASS_NAMES  # noqa: E402
from stages.core.common.io import atomic_path, write_png  # noqa: E402


def save_confusion_matrix(cm: np.ndarray, path: str | Path, title: str) -> None:
    """Row-normalised confusion matrix (each true class sums to 1), annotated with percentages."""
    cm = np.asarray(cm, np.float64)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(8, 7), dpi=100)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(CLASS_NAMES)), CLASS_NAMES, rotation=45, ha="right")
    ax.set_yticks(range(len(CLASS_NAMES)), CLASS_NAMES)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    for i in range(norm.shape[0]):
        for j in range(norm.shape[1]):
            if norm[i, j] >= 0.005:
                ax.text(j, i, f"{100 * norm[i, j]:.0f}", ha="center", va="center", fontsize=7,
                        color="white" if norm[i, j] > 0.5 else "black")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def save_image_grid(rows: list[list[np.ndarray]], path: str | Path, gap: int = 2) -> None:
    """Tile ``rows`` of equally sized (H, W, 3) uint8 images into one PNG with white gaps."""
    h, w = rows[0][0].shape[:2]
    ncols = max(len(r) for r in rows)
    sheet = np.full((len(rows) * (h + gap) - gap, ncols * (w + gap) - gap, 3), 255, np.uint8)
    for i, row in enumerate(rows):
        for j, tile in enumerate(row):
            sheet[i * (h + gap):i * (h + gap) + h, j * (w + gap):j * (w + gap) + w] = tile
    write_png(path, sheet)


def save_learning_curves(history: list[dict], path: str | Path, title: str) -> None:
    """One panel per logged quantity (every key of ``history`` rows but ``epoch``), against the epoch."""
    keys = [k for k in history[0] if k != "epoch" and isinstance(history[0][k], (int, float))]
    fig, axes = plt.subplots(1, len(keys), figsize=(3.2 * len(keys), 3), dpi=100, squeeze=False)
    epochs = [row["epoch"] for row in history]
    for ax, key in zip(axes[0], keys):
        ax.plot(epochs, [row.get(key) for row in history], marker="o")
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def save_pareto_plot(points: list[tuple[str, float, float]], front: list[bool], path: str | Path, xlabel: str,
                     title: str, target: float | None = None) -> None:
    """Score against latency, one labelled point per ``(name, latency, score)``; points on the Pareto front
    (``front[i]`` True) are filled and joined by a step line; ``target``: a dashed vertical line there."""
    fig, ax = plt.subplots(figsize=(8, 5), dpi=100)
    for i, ((name, x, y), on_front) in enumerate(zip(points, front)):
        ax.scatter([x], [y], s=40, color="tab:red" if on_front else "white", edgecolors="tab:red", zorder=3)
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(6, 8 - 14 * (i % 2)), fontsize=8)
    if target is not None:
        ax.axvline(target, color="grey", linestyle="--", label=f"target {target:g}")
    frontier = sorted((x, y) for (_, x, y), on_front in zip(points, front) if on_front)
    if frontier:
        ax.step(*zip(*frontier), where="post", color="tab:red", alpha=0.6, label="Pareto front")
    if frontier or target is not None:
        ax.legend(loc="lower right")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test mean F1 (foreground)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
