"""A question-answering assistant over an article and its supporting sources, with citations."""

from assistant.config import Settings
from assistant.errors import AssistantError, InputError
from assistant.service import Assistant
from assistant.types import Answer, Citation, Passage

__all__ = ["Answer", "Assistant", "AssistantError", "Citation", "InputError", "Passage", "Settings"]
__version__ = "0.1.0"
