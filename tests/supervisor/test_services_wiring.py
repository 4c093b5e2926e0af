"""The daemon's composition root builds the supervisor and runs it in its lifecycle."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import group_alive
from tests.supervisor.conftest import fake_model, make_settings
from vllm_mcp.core.engine_spec import EngineSpec
from vllm_mcp.core.lifecycle import State
from vllm_mcp.daemon.services import Services
from vllm_mcp.store import Database
from vllm_mcp.store.instances import InstanceStore

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(60)]


async def test_services_start_and_stop_the_supervisor(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    services = Services.build(settings)
    await services.start()
    try:
        view = await services.supervisor.load(EngineSpec(str(fake_model(tmp_path)), served_name="fake"))
        assert (await services.supervisor.wait_ready("fake", 30)).state is State.READY
    finally:
        await services.stop()  # daemon shutdown: every owned instance is stopped
    assert view.pid is not None
    assert group_alive(view.pid) == []
    [record] = InstanceStore(Database(settings.db_path)).load_all()
    assert record.state is State.SHUTDOWN
