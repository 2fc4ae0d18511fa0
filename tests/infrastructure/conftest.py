"""The infrastructure tests synthesize the CDK app in-process, which starts jsii on Node.

Set before any test module here imports aws_cdk: Node 20 is past its end of life for jsii, and
the banner it prints would bury the test output.
"""

import os

os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
