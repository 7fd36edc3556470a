"""Chat providers: the local llama.cpp model, OpenAI-compatible servers and Anthropic."""
