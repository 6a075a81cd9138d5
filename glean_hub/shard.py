"""Many processes, one upscale run: `accelerate launch -m glean_hub.cli upscale ...` (or `torchrun`).

    group = ProcessGroup.from_env()             # rank, size, local rank from RANK / WORLD_SIZE / LOCAL_RANK
    device = group.device(args.device)          # cuda:<local rank> per process when CUDA is used
    mine, skipped, existing = group.take(jobs, overwrite=..., skip_existing=...)
    ... upscale mine ...
    totals = group.gather(report, skipped)      # every process gets the totals; process 0 prints them

Rules, so that no file is done twice and none is lost:

* every process expands the same inputs into the same sorted, de-duplicated list and plans the
  same outputs (name clashes are decided on the whole list), then takes every `size`-th job
  starting at its rank: the shards are disjoint and their union is the whole list;
* whether an output already exists is checked only after sharding, by the process that owns the
  file (another process writing its own outputs meanwhile cannot change anyone's shard);
* `skip_existing` (`--skip-existing`) resumes an interrupted run: a job whose outputs all exist is
  skipped (outputs are written to a temporary name and renamed, so an existing output is complete);
* process 0 reports the problems found while expanding and planning (every process finds the
  same ones), each process its own files; at the end the reports are gathered over a gloo
  process group (`torch.distributed`, no accelerate API needed) and process 0 prints one summary.

Run by itself (no launcher), the group has one process and nothing of this changes the run.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import ConfigError, GleanError

# Waiting at the final gather: shards finish at different times (a million images take hours);
# the launcher ends the others when a process fails, so a long timeout does not hang a broken run.
GATHER_TIMEOUT = datetime.timedelta(days=7)


def _env_int(*names: str, default: int) -> int:
    for name in names:
        value = os.environ.get(name)
        if value not in (None, ""):
            try:
                return int(value)
            except ValueError:
                raise ConfigError(f"${name}={value!r} is not an integer (set by the launcher: accelerate, torchrun or mpirun)") from None
    return default


@dataclass
class ProcessGroup:
    rank: int = 0  # this process, 0 .. size - 1
    size: int = 1  # processes in the run
    local_rank: int = 0  # this process on its machine (picks its GPU)
    local_size: int = 1  # processes on this machine

    @classmethod
    def from_env(cls) -> ProcessGroup:
        """The launcher's variables (accelerate launch and torchrun set RANK, WORLD_SIZE, LOCAL_RANK; mpirun OMPI_*)."""
        size = _env_int("WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", default=1)
        rank = _env_int("RANK", "OMPI_COMM_WORLD_RANK", "PMI_RANK", default=0)
        local_rank = _env_int("LOCAL_RANK", "OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", default=rank if size > 1 else 0)
        local_size = _env_int("LOCAL_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", default=size)
        if size < 1 or not 0 <= rank < size or not 0 <= local_rank < max(local_size, 1):
            raise ConfigError(f"inconsistent launcher variables: rank {rank}, world size {size}, local rank {local_rank} "
                              f"of {local_size}")
        return cls(rank, size, local_rank, local_size)

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    def device(self, requested: str | None) -> str | None:
        """Each process on its own GPU: None or "cuda" -> cuda:<local rank> (when CUDA is there); others as given."""
        if not self.distributed:
            return requested
        if requested in (None, "cuda") and torch.cuda.is_available():
            return f"cuda:{self.local_rank % torch.cuda.device_count()}"
        return requested

    def set_cpu_threads(self) -> None:
        """Several processes on one machine's CPU: split the cores (unless OMP_NUM_THREADS says otherwise)."""
        if self.distributed and not os.environ.get("OMP_NUM_THREADS"):
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // max(1, self.local_size)))

    def take(self, jobs: list, *, overwrite: bool, skip_existing: bool) -> tuple[list, int, list[tuple[str, str]]]:
        """This process's share of `jobs` -> (jobs to run, number skipped as finished, [(input, problem)]).

        `jobs` must be the same list in every process (planned without the existence check when
        sharded or resuming). Existing outputs: kept and the job skipped with `skip_existing`,
        replaced with `overwrite`, otherwise a problem.
        """
        mine = jobs[self.rank :: self.size]
        if overwrite:
            return mine, 0, []
        todo, skipped, problems = [], 0, []
        for job in mine:
            targets = [t for t in (job.output, job.lr_output) if t is not None]
            existing = [t for t in targets if t.exists()]
            if not existing:
                todo.append(job)
            elif skip_existing and len(existing) == len(targets):
                skipped += 1
            elif skip_existing:  # interrupted between the output and its LR: do it again
                todo.append(job)
            else:
                message = f"{existing[0]} already exists; pass --overwrite to replace it or --skip-existing to keep it (resume)"
                problems.append((str(job.source), message))
        return todo, skipped, problems

    def gather(self, done: int, failed: list[tuple[str, str]], skipped: int, seconds: float) -> dict:
        """Totals over all processes (the same dict in each): done, failed, skipped, seconds (the slowest process)."""
        mine = {"done": done, "failed": failed, "skipped": skipped, "seconds": seconds}
        if not self.distributed:
            return {**mine, "processes": 1}
        import torch.distributed as dist

        started_here = not dist.is_initialized()
        if started_here:
            try:
                dist.init_process_group("gloo", timeout=GATHER_TIMEOUT, rank=self.rank, world_size=self.size)
            except Exception as e:  # noqa: BLE001 - no rendezvous (MASTER_ADDR/PORT) or a network error
                raise GleanError(f"process {self.rank} of {self.size} cannot reach the others to report its results "
                                 f"({type(e).__name__}: {e}); start it with accelerate launch or torchrun") from None
        parts: list = [None] * self.size
        try:
            dist.all_gather_object(parts, mine)
        finally:
            if started_here:
                dist.destroy_process_group()
        return {"done": sum(p["done"] for p in parts), "failed": [f for p in parts for f in p["failed"]],
                "skipped": sum(p["skipped"] for p in parts), "seconds": max(p["seconds"] for p in parts),
                "processes": self.size}


def summary(totals: dict, output_dir: Path) -> str:
    """One line for the whole run: done, failed, skipped (finished before), processes, time."""
    done, failed, skipped = totals["done"], len(totals["failed"]), totals["skipped"]
    total = done + failed
    if totals["processes"] > 1:  # seconds: the slowest process
        per = f", {done / totals['seconds']:.2f} images/s in all" if done and totals["seconds"] > 0 else ""
    else:
        per = f", {totals['seconds'] / done:.2f} s/image" if done else ""
    procs = f" by {totals['processes']} processes" if totals["processes"] > 1 else ""
    tail = f" ({failed} failed)" if failed else ""
    skip = f"; skipped {skipped} already done" if skipped else ""
    return f"upscaled {done} of {total} images into {output_dir}/{procs} in {totals['seconds']:.1f} s{per}{tail}{skip}"
