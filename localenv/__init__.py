"""The local environment: an AWS emulator with corrections and a Momento auth stand-in."""
