from __future__ import annotations

import itertools

import pytest

from vllm_mcp.core.lifecycle import TRANSITIONS, Event, State, next_state
from vllm_mcp.errors import InvalidTransition


@pytest.mark.parametrize(("edge", "target"), list(TRANSITIONS.items()))
def test_every_edge_of_the_table_is_taken(edge: tuple[State, Event], target: State) -> None:
    assert next_state(*edge) is target


def test_everything_off_the_table_is_refused_with_the_allowed_events() -> None:
    off_table = [(s, e) for s, e in itertools.product(State, Event) if (s, e) not in TRANSITIONS]
    assert off_table
    for state, event in off_table:
        with pytest.raises(InvalidTransition) as info:
            next_state(state, event)
        assert state.value in info.value.message
        assert info.value.context == {"state": state.value, "event": event.value}


def test_happy_path_and_sleep_cycle() -> None:
    state = State.STOPPED
    for event in (
        Event.START,
        Event.BECAME_READY,
        Event.SLEEP,
        Event.WAKE,
        Event.WOKE,
        Event.STOP,
        Event.EXITED,
    ):
        state = next_state(state, event)
    assert state is State.STOPPED


def test_every_state_is_reachable_from_stopped() -> None:
    seen, frontier = {State.STOPPED}, [State.STOPPED]
    while frontier:
        current = frontier.pop()
        for (src, _), dst in TRANSITIONS.items():
            if src is current and dst not in seen:
                seen.add(dst)
                frontier.append(dst)
    assert seen == set(State)
