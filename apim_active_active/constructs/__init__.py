"""CDKTF constructs, one concern each. Each takes a frozen Props dataclass and exposes what it built."""
