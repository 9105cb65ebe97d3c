"""Builds the services a request or a command needs from Settings."""
from __future__ import annotations

from lib.llm import LLM, OpenAITransport
from lib.simulator import SimulatedTransport


def make_llm(settings, latency_scale: float = 1.0) -> LLM:
    """The simulator when LLM_PROVIDER=simulated, else OpenAI (a missing key fails here)."""
    if settings.simulated:
        return LLM(SimulatedTransport(latency_scale), settings.model_prices)
    return LLM(OpenAITransport(settings.require_openai_key(), settings.openai_base_url), settings.model_prices)
