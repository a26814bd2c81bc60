"""Stacks that compose the constructs."""
