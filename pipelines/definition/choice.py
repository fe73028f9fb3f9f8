"""What every cloud target is built for: a workload, a problem type and a dataset spec."""

from __future__ import annotations

from pathlib import Path

from pipelines.definition.contract import ProblemType, SearchSpace
from pipelines.definition.workloads import WORKLOADS, Workload, workload


class WorkloadChoice:
    """Mixed into the targets' frozen dataclasses, which declare the three fields."""

    workload: str
    problem_type: str  # "": the workload's default_problem
    spec: str  # relative to training_code/, where every target finds it

    def choice_problems(self, training_code: Path) -> list[str]:
        """What is wrong with the choice, each naming its field (empty: nothing)."""
        if self.workload not in WORKLOADS:
            return [f"workload: one of {', '.join(WORKLOADS)}, got {self.workload!r}"]
        w = workload(self.workload)
        if not self.problem_type:  # filled once, while the frozen target is being built
            object.__setattr__(self, "problem_type", w.default_problem)
        problems = []
        if self.problem_type not in w.problem_types:
            problems.append(f"problem_type: one of {', '.join(w.problem_types)} for the {w.name} workload, "
                            f"got {self.problem_type!r}")
        if w.data_files and not (training_code / self.spec).is_file():
            problems.append(f"spec: {self.spec!r} is not a file under training_code/")
        return problems

    @property
    def work(self) -> Workload:
        return workload(self.workload)

    @property
    def problem(self) -> ProblemType:
        problem: ProblemType = self.problem_type  # type: ignore[assignment]  # validated by choice_problems
        return problem

    @property
    def search(self) -> SearchSpace:
        return self.work.search_space(self.problem)
