"""The mcp_say extension: say(text) speaks with espeak-ng when it is installed.

Speaking runs in the background (the tool answers at once) and is bounded: a
speech still running after ``SPEAK_TIMEOUT`` seconds is stopped. The text is
always returned, so the tool is useful on a server without sound as well.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading

from mcp.server.mcpserver import MCPServer
from mcp_types import ToolAnnotations

log = logging.getLogger("mcp_say")
SPEAK_TIMEOUT = 120.0
MAX_TEXT = 5000

server = MCPServer("mcp_say", instructions="Use say(text) to speak a short message aloud to the user.")


@server.tool(structured_output=False, annotations=ToolAnnotations(
    title="Speak text aloud", read_only_hint=True, open_world_hint=False))
def say(text: str) -> str:
    """Speak the text aloud (with espeak-ng, when the machine has it) and return it."""
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        log.info("espeak-ng is not installed; returning the text only")
    else:
        _speak(espeak, text[:MAX_TEXT])
    return text


def _speak(espeak: str, text: str) -> None:
    # The text goes through stdin, so a text starting with "-" is never read as an option.
    proc = subprocess.Popen([espeak], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    threading.Thread(target=_feed_and_reap, args=(proc, text), daemon=True).start()


def _feed_and_reap(proc: subprocess.Popen[bytes], text: str) -> None:
    assert proc.stdin is not None
    try:
        with proc.stdin:
            proc.stdin.write(text.encode("utf-8"))
        proc.wait(SPEAK_TIMEOUT)
    except subprocess.TimeoutExpired:
        log.warning("espeak-ng still speaking after %g s; stopped", SPEAK_TIMEOUT)
        proc.kill()
        proc.wait()
    except BrokenPipeError:
        proc.wait(SPEAK_TIMEOUT)  # espeak-ng exited before reading everything
