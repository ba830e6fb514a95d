from extensions.memory.server import build_server

build_server().run("stdio")
