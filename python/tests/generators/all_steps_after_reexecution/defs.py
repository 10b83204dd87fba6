"""Code location for runretry's conformance cases "ALL_STEPS after a re-execution of a dynamic
job": op jobs with a dynamic fan-out where the mapped instance for key "d" always fails."""

from dagster import Definitions, DynamicOut, DynamicOutput, in_process_executor, job, op

KEYS = ("a", "b", "d")
TAGS = {"dagster/retry_strategy": "ALL_STEPS", "dagster/max_retries": "2"}


def _fail_on_d(key: str) -> str:
    if key == "d":
        raise Exception(f"mapped instance {key} fails on purpose")
    return key


# Job A: the fan-out is in the middle: n0 -> n1 (DynamicOut a,b,d) -> n2[k] (fails for d)
# -> n3[k] -> n4 (collect); n5 is a plain op on its own.
@op
def n0():
    return 1


@op(out=DynamicOut())
def n1(x):
    for key in KEYS:
        yield DynamicOutput(key, mapping_key=key)


@op
def n2(key):
    return _fail_on_d(key)


@op
def n3(key):
    return key * 2


@op
def n4(values):
    return len(values)


@op
def n5():
    return 5


@job(tags=TAGS, executor_def=in_process_executor)
def dyn_middle():
    n4(n1(n0()).map(n2).map(n3).collect())
    n5()


# Job B: the fan-out is at the first op: m0 (DynamicOut a,b,d) -> n1-like mapped op m1[k]
# (fails for d) -> m2 (collect); m3 plain.
@op(out=DynamicOut())
def m0():
    for key in KEYS:
        yield DynamicOutput(key, mapping_key=key)


@op
def m1(key):
    return _fail_on_d(key)


@op
def m2(values):
    return len(values)


@op
def m3():
    return 3


@job(tags=TAGS, executor_def=in_process_executor)
def dyn_first():
    m2(m0().map(m1).collect())
    m3()


# Job A with the strategy among the job's definition tags but not its run tags (`run_tags` set
# separately): runs launched from it carry no strategy (FROM_FAILURE by default), while
# `create_reexecuted_run` merges the definition tags (`remote_job.tags`) into every retry.
@job(
    tags={"dagster/retry_strategy": "ALL_STEPS"},
    run_tags={"dagster/max_retries": "2"},
    executor_def=in_process_executor,
)
def dyn_middle_split_tags():
    n4(n1(n0()).map(n2).map(n3).collect())
    n5()


defs = Definitions(jobs=[dyn_middle, dyn_first, dyn_middle_split_tags])
