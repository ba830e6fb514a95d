"""Placeholder until the MCP branch lands: no extensions, no tools."""



class ExtensionRegistry:
    def __init__(self, settings):
        self.settings = settings

    def tools(self):
        return []

    def instructions(self):
        return {}

    def call_tool(self, name, arguments, timeout=None, *, working_dir=None, on_notification=None,
                  cancel_event=None):
        from goose_api.errors import ExtensionError
        raise ExtensionError(f"Unknown tool {name}")

    def close(self):
        pass
