"""The model lifecycle: one state enum and one transition table. Imports nothing else.

    stopped → starting → ready ⇄ sleeping (via waking) → stopping → stopped
    plus failed (start failed, crashed, wake failed) and shutdown (the daemon went away).

Anything not in ``TRANSITIONS`` is a bug; ``next_state`` raises on it and a test walks every edge.
"""

from __future__ import annotations

from enum import StrEnum

from vllm_mcp.errors import InvalidTransition


class State(StrEnum):
    STOPPED = "stopped"
    STARTING = "starting"
    READY = "ready"
    SLEEPING = "sleeping"
    WAKING = "waking"
    STOPPING = "stopping"
    FAILED = "failed"
    SHUTDOWN = "shutdown"


class Event(StrEnum):
    START = "start"  # a load or restart was asked for
    BECAME_READY = "became_ready"  # /health 200 and the served name is listed
    START_FAILED = "start_failed"  # exited or timed out while starting
    SLEEP = "sleep"  # /sleep answered and /is_sleeping is true
    WAKE = "wake"  # a wake was asked for
    WOKE = "woke"  # /is_sleeping is false again
    WAKE_FAILED = "wake_failed"
    CRASHED = "crashed"  # the process of a ready/sleeping engine exited by itself
    STOP = "stop"  # an unload was asked for
    EXITED = "exited"  # the process group is gone and reaped
    SHUTDOWN = "shutdown"  # the daemon is going away and leaves this record behind


TRANSITIONS: dict[tuple[State, Event], State] = {
    (State.STOPPED, Event.START): State.STARTING,
    (State.STARTING, Event.BECAME_READY): State.READY,
    (State.STARTING, Event.START_FAILED): State.FAILED,
    (State.STARTING, Event.STOP): State.STOPPING,
    (State.READY, Event.SLEEP): State.SLEEPING,
    (State.READY, Event.CRASHED): State.FAILED,
    (State.READY, Event.STOP): State.STOPPING,
    (State.SLEEPING, Event.WAKE): State.WAKING,
    (State.SLEEPING, Event.CRASHED): State.FAILED,
    (State.SLEEPING, Event.STOP): State.STOPPING,
    (State.WAKING, Event.WOKE): State.READY,
    (State.WAKING, Event.WAKE_FAILED): State.FAILED,
    (State.WAKING, Event.CRASHED): State.FAILED,
    (State.WAKING, Event.STOP): State.STOPPING,
    (State.STOPPING, Event.EXITED): State.STOPPED,
    (State.FAILED, Event.START): State.STARTING,
    (State.FAILED, Event.STOP): State.STOPPING,
    (State.FAILED, Event.EXITED): State.STOPPED,
    (State.STOPPED, Event.SHUTDOWN): State.SHUTDOWN,
    (State.FAILED, Event.SHUTDOWN): State.SHUTDOWN,
}

#: States in which a vLLM process is (or should be) alive and owned by us.
LIVE_STATES = frozenset({State.STARTING, State.READY, State.SLEEPING, State.WAKING, State.STOPPING})
#: States in which nothing happens until someone asks: a wait for readiness ends here.
SETTLED_STATES = frozenset({State.READY, State.FAILED, State.STOPPED, State.SLEEPING})
#: States from which a request can be served without a cold start.
WARM_STATES = frozenset({State.READY, State.SLEEPING, State.WAKING})


def next_state(state: State, event: Event) -> State:
    """The state after ``event`` in ``state``; raises ``InvalidTransition`` off the table."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        allowed = sorted(e.value for (s, e) in TRANSITIONS if s is state)
        raise InvalidTransition(
            f"cannot {event.value} an instance that is {state.value}",
            hint=f"in state {state.value} the allowed events are: {', '.join(allowed) or 'none'}",
            state=state.value,
            event=event.value,
        ) from None
