"""examples/python/chat.py --demo runs against the test hub with both protocols."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import ROOT


@pytest.mark.parametrize("protocol", [[], ["--messagepack"]], ids=["json", "messagepack"])
def test_chat_demo(hub, protocol):
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "python" / "chat.py"), "--demo", "--name", "tester", *protocol, hub.url + "/hub"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "tester: hello from signalr-native (Python)",
        "tester: two hub protocols, one client",
        "tester: bye",
    ]
