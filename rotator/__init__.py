"""The rotator Lambda: consumes the rotation queue, or rotates one secret on direct invocation."""
