from extensions.developer.server import server

server.run("stdio")
