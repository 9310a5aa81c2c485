"""The model, shared by training, evaluation and serving: loading (safetensors and GGUF bases, LoRA adapters),
chat formatting and prompt encoding, and one batched decoder."""
