"""The scheduled scanner Lambda: finds opted-in secrets nearing expiry and enqueues them."""
