"""The plan kernel (``sfoauth_core._plans``): the one loop that drives sans-IO plans.

Plans here are tiny hand-written generators; the kernel's users (HTTP drivers, managers,
Redis stores, ``SalesforceAuth``) are covered by their own tests.
"""

from __future__ import annotations

import ast
from collections.abc import Generator
from pathlib import Path
from typing import Any

import pytest

import sfoauth_core
from sfoauth_core._plans import adrive, arelay, drive, relay


@pytest.fixture
def anyio_backend():
    return "asyncio"


class Boom(Exception):
    pass


class Other(Exception):
    pass


def echo_plan(log: list[str]) -> Generator[int, Any, int]:
    """Doubles each answer; records what was thrown in and whether it was closed."""
    total = 0
    try:
        for step in (1, 2, 3):
            try:
                total += yield step
            except Boom:
                log.append(f"caught Boom at {step}")
        return total
    finally:
        log.append("closed")


def doubled(step: int) -> int:
    if step == 2:
        raise Boom("two")
    return step * 2


async def adoubled(step: int) -> int:
    return doubled(step)


def test_drive_sends_each_result_back_and_returns_the_plans_value():
    log: list[str] = []
    assert drive(echo_plan(log), lambda step: step * 2) == 12
    assert log == ["closed"]


def test_drive_throws_only_the_listed_errors_into_the_plan():
    log: list[str] = []
    assert drive(echo_plan(log), doubled, throws=Boom) == 8
    assert log == ["caught Boom at 2", "closed"]


def test_an_unlisted_error_propagates_and_the_plan_is_closed_at_once():
    log: list[str] = []
    with pytest.raises(Boom):
        drive(echo_plan(log), doubled)  # throws=(): nothing goes back in
    assert log == ["closed"]  # the plan's finally ran before drive returned
    with pytest.raises(Boom):
        drive(echo_plan(log), doubled, throws=Other)


def test_an_error_thrown_in_is_not_chained_to_the_kernels_handler():
    seen: list[BaseException] = []

    def plan() -> Generator[str, Any, None]:
        try:
            yield "fail"
        except Boom as exc:
            seen.append(exc)

    def fail(step: str) -> None:
        raise Boom(step)

    drive(plan(), fail, throws=Boom)
    assert seen[0].__context__ is None


def test_relay_passes_what_sub_plans_yield_out_and_their_answers_back():
    log: list[str] = []

    def ask_outside(step: int) -> Generator[str, Any, int]:
        answer = yield f"step {step}"
        return int(answer)

    steps = relay(echo_plan(log), ask_outside)
    assert next(steps) == "step 1"
    assert steps.send("10") == "step 2"
    assert steps.send("20") == "step 3"
    with pytest.raises(StopIteration) as stop:
        steps.send("30")
    assert stop.value.value == 60
    assert log == ["closed"]


def test_relay_throws_an_error_thrown_into_it_back_into_the_plan():
    log: list[str] = []

    def ask_outside(step: int) -> Generator[int, Any, int]:
        return (yield step)

    steps = relay(echo_plan(log), ask_outside, throws=Boom)
    assert next(steps) == 1
    assert steps.throw(Boom()) == 2  # the plan caught it and went on
    assert log == ["caught Boom at 1"]
    steps.close()  # the driver gives up: the plan is closed too
    assert log == ["caught Boom at 1", "closed"]


@pytest.mark.anyio
async def test_adrive_is_the_async_twin_of_drive():
    log: list[str] = []
    assert await adrive(echo_plan(log), adoubled, throws=Boom) == 8
    assert log == ["caught Boom at 2", "closed"]
    with pytest.raises(Boom):
        await adrive(echo_plan(log), adoubled)
    assert log[-1] == "closed"


@pytest.mark.anyio
async def test_arelay_yields_outward_steps_and_awaits_the_others():
    log: list[str] = []

    def mixed() -> Generator[int | str, Any, None]:
        inside = yield 5
        outside = yield "out"
        log.append(f"{inside} {outside}")

    async def perform(step: int | str) -> int:
        assert isinstance(step, int)
        return step + 1

    steps = arelay(mixed(), perform, outward=str)
    assert await steps.asend(None) == "out"
    with pytest.raises(StopAsyncIteration):
        await steps.asend("answer")
    assert log == ["6 answer"]


def test_the_kernel_holds_the_only_send_throw_loops():
    # Issue 11.5: every runner of a plan performs steps; the loop exists once per mode.
    package = Path(sfoauth_core.__file__).parent.parent
    loops: list[str] = []
    for name in ("sfoauth_core", "sfoauth_django", "sfoauth_fastapi"):
        for path in sorted((package / name).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "throw"
                ):
                    loops.append(f"{path.relative_to(package)}:{node.lineno}")
    assert [loop.split(":")[0] for loop in loops] == [
        "sfoauth_core/_plans.py",
        "sfoauth_core/_plans.py",
    ]
