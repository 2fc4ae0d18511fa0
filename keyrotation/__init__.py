"""Domain code shared by the scanner and the rotator: secrets, keys, expiry and rotation."""
