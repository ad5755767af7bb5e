"""A synthetic ranking problem with a planted truth, shared by the tests.

Each model m has a hidden skill vector u_m; a task's class prototypes are noisy draws around a task direction
v_t; the true performance of m on t is u_m · v_t. A selector can only rank held-out tasks well by learning tokens
that encode u and a network that reads v from the prototypes.
"""

from __future__ import annotations

import torch

from hf_spider.training import TrainingTask


def planted_tasks(num_tasks: int, *, num_models: int = 8, task_dim: int = 16, seed: int = 0,
                  skills_seed: int = 123) -> list[TrainingTask]:
    skills = torch.randn(num_models, 4, generator=torch.Generator().manual_seed(skills_seed))  # (M, k)
    mixing = torch.randn(4, task_dim, generator=torch.Generator().manual_seed(skills_seed + 1))  # (k, d)
    gen = torch.Generator().manual_seed(seed)
    tasks = []
    for t in range(num_tasks):
        v = torch.randn(4, generator=gen)  # task direction (k,)
        C = int(torch.randint(2, 7, (1,), generator=gen))
        protos = v @ mixing + 0.1 * torch.randn(C, task_dim, generator=gen)  # (C, d)
        tasks.append(TrainingTask(name=f"task-{seed}-{t}", prototypes=protos, performance=skills @ v))
    return tasks


def planted_tasks_with_ptm(num_tasks: int, *, num_models: int = 8, task_dim: int = 16, seed: int = 0,
                           surprise: float = 1.5) -> list[TrainingTask]:
    """Like `planted_tasks`, plus a per-(model, task) surprise that no token can know but each model's own
    features reveal: PTM prototypes of model m on task t carry its surprise (widths 6 or 10 by model parity)."""
    tasks = planted_tasks(num_tasks, num_models=num_models, task_dim=task_dim, seed=seed)
    gen = torch.Generator().manual_seed(seed + 1000)
    for task in tasks:
        C = task.prototypes.shape[0]
        bonus = surprise * torch.randn(num_models, generator=gen)  # (M,)
        task.performance = task.performance + bonus
        task.ptm_prototypes = {}
        for m in range(num_models):
            width = 6 if m % 2 == 0 else 10
            protos = 0.1 * torch.randn(C, width, generator=gen)
            protos[:, 0] += bonus[m]  # the model's own features "know" how well it fits
            protos[:, 1] += 1.0
            task.ptm_prototypes[m] = protos
    return tasks
