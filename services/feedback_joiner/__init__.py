"""The feedback joiner: predictions and their feedback, joined as they stream."""
