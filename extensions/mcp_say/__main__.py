from extensions.mcp_say.server import server

server.run("stdio")
