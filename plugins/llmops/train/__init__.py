"""Training: one run skeleton for every method (run.py), one file per method (lora.py: SFT; preference.py: DPO /
KTO), the launcher that runs any of them in process or under torchrun, and the machinery they share."""
