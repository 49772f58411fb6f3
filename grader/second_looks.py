"""The second-look policy (trusted side): from one pass's verdicts to the next pass's plan, as pure
functions of results and the catalogue, tested without workers (tests/test_second_looks.py).

A submission is graded in a first pass; each item then gets the fairest second look its verdict
calls for, and a second look can only raise a score:
- every statement run: a lean first pass skipped statements, and an item did not pass for a reason
  a skipped statement could explain (`full_run`);
- the reference standing in for helpers that are wrong, so each mistake is scored once
  (`helper_passes`): a function while it is called, an object while the submission's own code
  computes it. A pass never grants a helper that it also grades before that helper's results are
  in (grader.answers), so when objects need a helper that is graded again, they get a pass of
  their own after it;
- the course's data size, for objects of code written for 5,000 examples (`course_size`).
Then whatever the trusted side answered for outside a grant was taken from the course's solutions
(`taken_from_course`).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from grader.catalogue import BY_ID, Exercise
from grader.results import UNKNOWN_MODEL, Condition, ExerciseResult

RETRY_STATUSES = ("failed", "error", "missing")  # a lean run's verdicts worth a full run's second look


@dataclass(frozen=True)
class Plan:
    """One way of running the submission: which items, how, on which data, with which stand-ins."""

    name: str  # its folders' prefix, and its set of statements to skip (see `skips`)
    exercises: tuple[Exercise, ...]
    mode: str  # "lean" | "fast" | "kernel"
    examples: str  # the data file the submission's own code loads
    helpers: dict[str, tuple[str, ...]] = field(default_factory=dict)  # item -> helpers stood in while grading it
    module_helpers: tuple[str, ...] = ()  # helpers stood in while the submission's own code runs
    object_helpers: dict[str, tuple[str, ...]] = field(default_factory=dict)  # object -> the stand-ins it is given on
    record_cell_errors: bool = False  # the first pass: its cells that raised are the submission's notes
    condition: Condition | None = None  # what a raised score from this pass was given on
    statement_scale: float = 1.0  # each statement's time limit, times this (its data is that much larger)

    @property
    def skips(self) -> str:
        """Which set of statements-to-skip it uses: the first (both its parts, when split) and full
        runs share one; a pass with stand-ins or other data starts afresh (what hung may have been
        the student's helper)."""
        return "own code" if self.name in ("first", "first-objects", "full") else self.name.split("-")[0]

    @property
    def ids(self) -> frozenset[str]:
        return frozenset(e.id for e in self.exercises)


def helper_closure(item: str) -> set[str]:
    """The function items `item` calls, directly or through others (declared in the catalogue)."""
    out: set[str] = set()
    todo = list(BY_ID[item].calls)
    while todo:
        h = todo.pop()
        if h not in out and h in BY_ID and BY_ID[h].kind == "function":
            out.add(h)
            todo += list(BY_ID[h].calls)
    return out


def without(plan: Plan | None, settled: set[str]) -> Plan | None:
    """The plan less the items no second look can change (grader.starters.beyond_a_second_look);
    None when none is left."""
    if plan is None:
        return None
    kept = tuple(e for e in plan.exercises if e.id not in settled)
    if not kept:
        return None
    return replace(plan, exercises=kept, helpers={i: h for i, h in plan.helpers.items() if i not in settled},
                   object_helpers={i: h for i, h in plan.object_helpers.items() if i not in settled})


def split(plan: Plan) -> tuple[Plan, Plan] | None:
    """The first pass in two parts that can run at once on two cores: the object items (the
    submission's demo code builds them: most of its statements) and the function items (its
    definitions, then every grading call). None when one part would be empty."""
    objects = tuple(e for e in plan.exercises if e.kind != "function")
    functions = tuple(e for e in plan.exercises if e.kind == "function")
    if not objects or not functions:
        return None
    return replace(plan, exercises=functions), replace(plan, name=f"{plan.name}-objects", exercises=objects)


def worth_a_full_run(r: ExerciseResult, source: str) -> bool:
    """Could a statement the lean run skipped explain this verdict? An exception (a name or an
    attribute that was never set), or a value not found whose name the source assigns; not a
    function or object that is there and wrong, or a function not written yet. (A wrong value from
    a skipped statement would need one that changes a value in place without naming it,
    `np.subtract(x, m, out=x)`: grade such work with --mode fast.)"""
    ex = BY_ID[r.id]
    if r.status not in RETRY_STATUSES:
        return False
    if ex.kind == "object":
        return r.status in ("missing", "error")
    if r.status == "missing":
        return any(name in source for name in (ex.names or (ex.id,)))
    return any(c.kind == "error" for c in r.cases)


def full_run(results: list[ExerciseResult], source: str, dropped: int, mode: str, examples: str) -> Plan | None:
    """Every statement run, for what a lean run's skipped statements could explain."""
    retry = tuple(BY_ID[r.id] for r in results if worth_a_full_run(r, source))
    if mode != "lean" or not dropped or not retry:
        return None
    return Plan("full", retry, "fast", examples)


def _not_passed_functions(results: list[ExerciseResult]) -> set[str]:
    return {r.id for r in results if r.status != "passed" and BY_ID[r.id].kind == "function"}


def changes_its_inputs(r: ExerciseResult) -> bool:
    """A function whose calls changed what they were given (a model's weights edited in place)."""
    return BY_ID[r.id].kind == "function" and any(c.kind == "side_effect" or c.also for c in r.cases)


def helper_passes(results: list[ExerciseResult], taken: set[str], mode: str, examples: str) -> list[Plan]:
    """Score each mistake once: an item that did not pass while items it calls did not pass either
    is graded again with the reference's answers standing in for those helpers. One pass for the
    functions (one per chain, where their grants do not nest: `nested_runs`), and the objects in the
    first of them, or after them in a pass of their own where their stand-ins are not granted to
    every function there or are themselves graded again.
    An object computed on a model the grader does not know, where a function changed its inputs in
    place, is computed again with the reference standing in for that function: on the model as
    it was (the change is charged to the function that made it)."""
    not_passed = _not_passed_functions(results)
    changers = {r.id for r in results if changes_its_inputs(r)} - taken
    timed_out = {r.id for r in results if r.status == "timeout"}
    chains: dict[str, tuple[str, ...]] = {}
    for r in results:
        is_object = BY_ID[r.id].kind == "object"
        through_a_hang = r.status == "timeout" and helper_closure(r.id) & timed_out  # it waited on a helper
        if r.status in ("failed", "partial", "error") or through_a_hang or (is_object and r.status == "missing"):
            chain = (helper_closure(r.id) & not_passed) - {r.id} - taken
            if is_object and r.status == "error" and r.category == UNKNOWN_MODEL:
                chain |= changers
            if chain:
                chains[r.id] = tuple(sorted(chain))
    functions = {i: c for i, c in chains.items() if BY_ID[i].kind == "function"}
    objects = [i for i in chains if BY_ID[i].kind == "object"]
    module_helpers = tuple(sorted({h for i in objects for h in chains[i]}))
    def plan(name: str, items: list[str], recomputed: bool) -> Plan:
        # fewest granted helpers first (see nested_runs): objects, built before any call, then functions
        exercises = tuple(BY_ID[i] for i in sorted(items, key=fewest_grants_first(functions)))
        return Plan(name, exercises, mode, examples, helpers={i: functions[i] for i in items if i in functions},
                    module_helpers=module_helpers if recomputed else (),
                    object_helpers={i: chains[i] for i in items if i not in functions} if recomputed else {})

    if not chains:
        return []
    runs = nested_runs(functions)
    names = ["helpers"] + [f"helpers-{n}" for n in range(2, len(runs) + 1)]
    # objects share the first run only where the stand-ins their statements get are granted to
    # every function of it, and none of those functions is itself a stand-in they need
    share = objects and not set(module_helpers) & set(functions) and \
        (not runs or all(set(module_helpers) <= set(functions[i]) for i in runs[0]))
    plans = [plan(name, items + (objects if share and n == 0 else []), share and n == 0)
             for n, (name, items) in enumerate(zip(names, runs))]
    if objects and not share:
        plans.append(plan("helpers-objects", objects, True))
    return plans or [plan("helpers", objects, True)]


ORDER = {e: n for n, e in enumerate(BY_ID)}  # the catalogue's


def fewest_grants_first(grants: dict[str, tuple[str, ...]]):
    """A sort key: items granted fewer helpers first (none: objects), then in the catalogue's order."""
    return lambda item: (len(grants.get(item, ())), ORDER[item])


def nested_runs(grants: dict[str, tuple[str, ...]]) -> list[list[str]]:
    """The function items of a second look, in runs whose items' grants nest: the items of a run
    share one process, where what one computes with its answers may be kept for the next, so each
    comes after every item granted no more than it, and items whose grants do not nest are in
    runs of their own (the warm worker forgets everything between runs). Along the course's chains
    of helpers there is one run."""
    runs: list[list[str]] = []
    for item in sorted(grants, key=fewest_grants_first(grants)):
        run = next((r for r in runs if set(grants[r[-1]]) <= set(grants[item])), None)
        if run is None:
            runs.append([item])
        else:
            run.append(item)
    return runs


def condition_of(plan: Plan, item: str) -> Condition:
    """What a raised score from `plan` was given on, for one of its items."""
    if plan.condition is not None:
        return plan.condition
    if BY_ID[item].kind == "object":
        chain = plan.object_helpers.get(item)
        return Condition(tuple(h for h in plan.module_helpers if h in chain) if chain is not None else
                         tuple(h for h in plan.module_helpers if h in helper_closure(item)), recomputed=True)
    return Condition(plan.helpers.get(item, ()))


def course_size(results: list[ExerciseResult], statement_errors: int, taken: set[str], mode: str, examples: str,
                n_examples: int, first_examples: int) -> Plan | None:
    """Submissions get 1,000 examples to run on, but students write the course's 5,000 into their
    code (`einops.repeat(mean, "comp -> comp b", b=5000)`). An object item that did not pass for a
    reason the size could explain (a statement raised, the object is missing or has the wrong
    shape) is computed again on the course's data size, each statement with as many times its time
    limit as the data is larger than the first pass's."""
    again = [r for r in results if BY_ID[r.id].kind == "object" and r.status not in ("passed", "not_attempted")
             and (statement_errors or r.status in ("missing", "error") or r.category == "shape")]
    if not again:
        return None
    stand_in = tuple(sorted({h for r in again for h in helper_closure(r.id) & _not_passed_functions(results)} - taken))
    return Plan("course-size", tuple(BY_ID[r.id] for r in again), mode, examples, module_helpers=stand_in,
                condition=Condition(stand_in, recomputed=True, course_examples=n_examples),
                statement_scale=max(1.0, n_examples / max(first_examples, 1)))


def lost(results: list[ExerciseResult], again: list[ExerciseResult]) -> set[str]:
    """Objects a second look could not produce a value for (missing, an error, a timeout) where
    the first verdict judged one: the submission's code made it before, so that run, not the code,
    failed it (a function's calls are its own verdict in every look)."""
    judged = {r.id for r in results if r.status in ("failed", "partial") and BY_ID[r.id].kind == "object"}
    return {r.id for r in again if r.id in judged and r.status in ("missing", "error", "timeout")}


def better(results: list[ExerciseResult], again: list[ExerciseResult], plan: Plan) -> list[ExerciseResult]:
    """Each result replaced by its second look when that scores more, with the condition it was
    given on."""
    by_id = {r.id: r for r in again}
    out = []
    for r in results:
        new = by_id.get(r.id)
        if new is None or new.score <= r.score:
            out.append(r)
        else:
            condition = condition_of(plan, r.id)
            out.append(replace(new, condition=condition) if condition.helpers or condition.course_examples else new)
    return out


def taken_from_course(results: list[ExerciseResult], taken: set[str]) -> list[ExerciseResult]:
    """A function the trusted process answered for outside a grant came from the course's
    solutions: it is not the student's work."""
    return [ExerciseResult(r.id, "missing", 0.0, r.max_score, taken_from_course=True) if r.id in taken else r
            for r in results]
