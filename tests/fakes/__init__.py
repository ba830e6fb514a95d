"""Local fakes of every provider API, speaking the real wire formats over loopback.

    from tests.fakes import OpenAIFake, Reply, Fail, ToolCall

See ``tests.fakes.core`` for how a test scripts a fake.
"""

from tests.fakes.anthropic import AnthropicFake
from tests.fakes.compatible import DeepSeekFake, GroqFake, MistralFake, compatible_fake
from tests.fakes.core import Fail, Recorded, Reply, ScriptedAPI, ToolCall
from tests.fakes.google import GoogleFake
from tests.fakes.ollama import OllamaFake
from tests.fakes.openai import AzureOpenAIFake, CompatibleFake, OpenAIFake

__all__ = ["AnthropicFake", "AzureOpenAIFake", "CompatibleFake", "DeepSeekFake", "Fail", "GoogleFake", "GroqFake",
           "MistralFake", "OllamaFake", "OpenAIFake", "Recorded", "Reply", "ScriptedAPI", "ToolCall", "compatible_fake"]
