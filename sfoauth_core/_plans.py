"""The plan kernel: the one loop that drives sans-IO generators, sync and async.

A *plan* is a generator that yields *steps* (an HTTP request, a wait, a store operation,
"fetch a token"...), gets each step's result back through ``send()`` and returns its
value. Errors of a step are thrown back in at its ``yield`` when the plan is prepared for
them, so the plan decides (retry, re-read, give up). Flows (``flows/``), the token
manager's lifecycle plans, the Redis store's compare-and-swap and
:class:`~sfoauth_core.auth.SalesforceAuth` are all plans; only the *perform* callable
differs between their runners. The loop that feeds a plan exists here only, once
synchronous (:func:`relay`) and once asynchronous (:func:`arelay`):

* :func:`drive` / :func:`adrive` run a plan to its end, performing every step with a
  plain (sync) or awaitable (async) callable.
* :func:`relay` performs each step with a *sub-plan* (``yield from perform(step)``), so
  a step can be passed on to whoever drives the relay (a filter over a flow, an
  ``httpx.Auth`` flow handing requests to httpx).
* :func:`arelay` is an async generator: steps of the ``outward`` types go out to its
  consumer (``asend``), the others are awaited. Async generators cannot delegate with
  ``yield from``, hence the type filter instead of sub-plans.

Every runner closes the plan when it stops (returned, raised, cancelled or closed), so a
plan's ``finally`` runs at once rather than whenever the generator is collected.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Generator
from typing import Any, TypeVar

__all__ = ["Throws", "adrive", "arelay", "drive", "relay"]

S = TypeVar("S")  # the steps a plan yields
O = TypeVar("O")  # noqa: E741 - the steps passed on to the relay's own driver
T = TypeVar("T")  # what the plan returns

#: The errors of a step that are thrown back into the plan; others propagate to the
#: caller of the runner (the plan is closed).
Throws = type[Exception] | tuple[type[Exception], ...]


def relay(
    plan: Generator[S, Any, T],
    perform: Callable[[S], Generator[O, Any, Any]],
    *,
    throws: Throws = (),
) -> Generator[O, Any, T]:
    """Run ``plan``, performing each step with the sub-plan ``perform(step)``.

    Whatever the sub-plans yield goes out of the relay; what is sent back goes to them.
    The sub-plan's value is sent into ``plan``; an error of a ``throws`` type raised
    by it (or thrown into the relay while it waits) is thrown into ``plan`` instead.
    """
    value: Any = None
    error: Exception | None = None
    try:
        while True:
            try:
                step = plan.throw(error) if error is not None else plan.send(value)
            except StopIteration as stop:
                return stop.value  # type: ignore[no-any-return]
            value, error = None, None
            try:
                value = yield from perform(step)
            except throws as exc:
                error = exc  # thrown in outside this handler: no implicit chaining
    finally:
        plan.close()


def drive(
    plan: Generator[S, Any, T],
    perform: Callable[[S], Any],
    *,
    throws: Throws = (),
) -> T:
    """Run ``plan`` to its end, performing each step with ``perform(step)`` (blocking).

    Returns:
        The plan's return value.
    """
    try:
        # The sub-plans never yield, so one step of the relay runs the whole plan.
        next(relay(plan, _at_once(perform), throws=throws))
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]
    raise AssertionError("unreachable: a plain perform passes no step on")


def _at_once(perform: Callable[[S], Any]) -> Callable[[S], Generator[Any, Any, Any]]:
    """A plain perform callable as a sub-plan that returns at once (yields nothing)."""

    def sub_plan(step: S) -> Generator[Any, Any, Any]:
        return perform(step)
        yield  # pragma: no cover - unreachable; makes this function a generator

    return sub_plan


def arelay(
    plan: Generator[S, Any, Any],
    perform: Callable[[S], Awaitable[Any]],
    *,
    outward: type[O] | tuple[type[O], ...],
    throws: Throws = (),
) -> AsyncGenerator[O, Any]:
    """Run ``plan`` as an async generator: steps of the ``outward`` types are yielded to
    its consumer (whose ``asend`` value goes back into the plan), the others are
    awaited with ``perform(step)``. Errors as in :func:`relay`; the plan's return value
    is dropped (an async generator has none: use :func:`adrive` for it).
    """
    return _aloop(plan, perform, outward, throws, [])


async def adrive(
    plan: Generator[S, Any, T],
    perform: Callable[[S], Awaitable[Any]],
    *,
    throws: Throws = (),
) -> T:
    """Async twin of :func:`drive`: each step is awaited with ``perform(step)``.

    Returns:
        The plan's return value.
    """
    result: list[T] = []
    async for _ in _aloop(plan, perform, (), throws, result):
        raise AssertionError("unreachable: no step goes outward")
    return result[0]


async def _aloop(
    plan: Generator[S, Any, T],
    perform: Callable[[S], Awaitable[Any]],
    outward: type[O] | tuple[type[O], ...],
    throws: Throws,
    result: list[T],
) -> AsyncGenerator[O, Any]:
    # The async loop; the plan's return value is appended to ``result``.
    value: Any = None
    error: Exception | None = None
    try:
        while True:
            try:
                step = plan.throw(error) if error is not None else plan.send(value)
            except StopIteration as stop:
                result.append(stop.value)
                return
            value, error = None, None
            try:
                if isinstance(step, outward):
                    value = yield step
                else:
                    value = await perform(step)
            except throws as exc:
                error = exc
    finally:
        plan.close()
