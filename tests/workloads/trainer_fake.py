"""A stand-in trainer for train_to_target's bookkeeping tests (no model, no data)."""

from __future__ import annotations

import torch


class FakeTrainer:
    """What train_to_target asks of a trainer: validation accuracy is ``accuracy(steps taken)``,
    and every learning rate it is given is kept."""

    device = torch.device("cpu")

    def __init__(self, levers, lr, steps_per_epoch, accuracy):
        self.levers, self.lr, self._spe, self._accuracy = levers, lr, steps_per_epoch, accuracy
        self.steps, self.lrs = 0, []

    def steps_per_epoch(self):
        return self._spe

    def set_lr(self, lr):
        self.lrs.append(lr)

    def run_steps(self, n):
        self.steps += n
        return 4, torch.tensor(1.0)

    def evaluate(self, part):
        return {"accuracy": self._accuracy(self.steps), "loss": 1.0}
