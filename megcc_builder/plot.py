"""Draw a memory plan: one rectangle per buffer, time (instruction) across, offset up."""


def plot_memory_plan(plan, path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mem = plan.memory
    fig, ax = plt.subplots(figsize=(10, 5), dpi=100)
    end = len(plan.instrs)
    for b in mem.buffers:
        first = max(b.first, -1)
        ax.add_patch(plt.Rectangle((first, b.offset / 1024), b.last - first + 1, b.size / 1024,
                                   edgecolor="black", linewidth=0.4, alpha=0.7))
        # name the buffers big enough to hold a label (the rest would be unreadable)
        if (b.last - first + 1) >= end / 12 and b.size >= mem.arena_size / 14:
            label = "+".join(b.members)
            ax.text(first + (b.last - first + 1) / 2, (b.offset + b.size / 2) / 1024,
                    label if len(label) <= 28 else label[:27] + "…", ha="center",
                    va="center", fontsize=7, clip_on=True)
    ax.axhline(mem.lower_bound / 1024, color="red", linestyle="--",
               label=f"liveness lower bound {mem.lower_bound / 1024:.1f} KiB")
    ax.set_xlim(-1, end + 1)
    ax.set_ylim(0, max(mem.arena_size, 1) / 1024 * 1.05)
    ax.set_xlabel("instruction")
    ax.set_ylabel("arena offset (KiB)")
    ax.set_title(f"memory plan {plan.name}: arena {mem.arena_size / 1024:.1f} KiB")
    ax.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
