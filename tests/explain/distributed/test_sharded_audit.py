"""A 2-process sharded audit (gloo, CPU) gives the single-process report."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

import explain
from explain._core import distributed as dist
from explain.auditing.sections import ExplanationsSection, PerformanceSection
from tests.explain.distributed._compare import differences
from tests.explain.distributed._launch import run_ranks


def _setup() -> tuple[nn.Module, tuple[torch.Tensor, torch.Tensor]]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.ReLU(), nn.Linear(16, 3))
    x = torch.randn(61, 6)                      # odd: the ranks get 31 and 30 rows
    y = model(x).argmax(1)
    y[::7] = (y[::7] + 1) % 3                   # some mistakes
    return model, (x, y)


def _audit() -> dict[str, Any]:
    model, data = _setup()
    report = explain.audit(model, data, samples=5, checks=["non-finite"],
                           trust_options={"sanity_checkpoints": 2})
    return {"rank": dist.rank(), "world": dist.world_size(), "report": report.to_dict()}


def test_two_process_audit_equals_one_process_audit() -> None:
    # Arrange
    single = _audit()
    # Act
    ranks = run_ranks(_audit, world=2)
    # Assert
    assert [(r["rank"], r["world"]) for r in ranks] == [(0, 2), (1, 2)]
    assert differences(ranks[0]["report"], single["report"]) == []
    assert differences(ranks[1]["report"], ranks[0]["report"]) == []
    report = explain.Report.from_dict(ranks[0]["report"])
    assert report.section(PerformanceSection).n == 61
    explained = report.section(ExplanationsSection)
    assert [s.index for s in explained.samples] == \
        [s.index for s in explain.Report.from_dict(single["report"]).section(
            ExplanationsSection).samples]
    assert len(explained.samples) == 5
    assert [(m.method, m.error, tuple(m.values.shape), m.quality is not None)
            for m in explained.methods] == [("integrated_gradients", None, (5, 6), True),
                                            ("saliency", None, (5, 6), True)]


def test_shard_covers_every_index_once_in_order() -> None:
    # Arrange / Act
    parts = [list(dist.shard(10, r, 3)) for r in range(3)]
    # Assert
    assert parts == [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9]]


def test_helpers_without_a_process_group_are_single_process() -> None:
    # Arrange / Act / Assert
    assert (dist.is_distributed(), dist.rank(), dist.world_size(), dist.is_main()) == \
        (False, 0, 1, True)
    assert dist.gather_objects("a") == ["a"] and dist.all_gather_objects(3) == [3]
    assert dist.broadcast_object({"k": 1}) == {"k": 1}
