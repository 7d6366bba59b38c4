"""A small AWS client on awscrt: SigV4 signing, pooled HTTP, credentials, S3, STS and IoT calls.

No boto3: on a Raspberry Pi the agent must stay small, and awscrt is already loaded for MQTT.
Modules import ``awscrt`` lazily, so importing this package costs nothing until a call is made.
Errors from awscrt and from AWS responses are translated into :class:`agent.errors.AwsError`
at this boundary.
"""
