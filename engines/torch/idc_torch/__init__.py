"""IDC Inspector's PyTorch training engine (run as: python3 -m idc_torch; spoken to by src/core/train/torch-trainer.ts)."""
