"""The AWS CDK app that deploys the scanner, the rotator, their queues and their alarms."""
