"""`momento-keys`: the operator's command line for Momento keys kept in Secrets Manager.

It imports downloaded keys as opted-in secrets, reports the fleet's expiry state, previews and
runs scans, rotates one secret on request, and lists and replays the dead-letter queue. Every
action goes through the same `keyrotation` code the two Lambda functions run.
"""
