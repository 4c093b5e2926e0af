"""Auto-discovery: models on disk, running vLLM servers, and what each can do (docs/discovery.md).

``service.Discovery`` is what the daemon holds (``Services.discovery``); ``scanner`` walks the
roots (``folder`` reads one directory, ``gguf`` reads GGUF headers, ``templates`` reads chat
templates; safetensors headers are read by ``engine.model_files``, shared with the optimizer);
``registry`` asks the installed vLLM; ``endpoints`` probes servers; ``hub`` fetches hub metadata;
``assess`` puts it together; ``store`` is migration 0003's tables.
"""
