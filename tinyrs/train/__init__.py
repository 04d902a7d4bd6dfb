"""Training stages on TRL (P, S, C: SFTTrainer; R: GRPOTrainer)."""
