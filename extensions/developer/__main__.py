import signal
import sys

from extensions.developer import shell
from extensions.developer.server import server

# Stopping (the client closes stdin, then sends SIGTERM): unsandboxed commands have no pid namespace to
# end with this process, so they are killed on the way out.
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
try:
    server.run("stdio")
finally:
    shell.stop_all()
