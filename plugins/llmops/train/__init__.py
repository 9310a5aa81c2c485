"""LoRA fine-tuning: model loading, supervised examples, the training loop and adapter files."""
